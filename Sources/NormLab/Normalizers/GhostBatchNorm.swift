/// Ghost batch normalization (Hoffer, Hubara & Soudry 2017, https://arxiv.org/abs/1705.08741):
/// batch norm whose training statistics are those of virtual batches of V consecutive samples
/// inside the batch (the last may be smaller), each normalized exactly as batch norm would
/// normalize it alone. It is what data-parallel training without synchronized batch norm does on
/// B/V devices, as batch norm over the whole batch is synchronized batch norm.
///
/// The running mean and unbiased running variance are updated once per virtual batch, in order,
/// with batch norm's momentum; inference uses them. With V ≥ N it is batch norm exactly. A
/// virtual batch with one value per channel is an error, as for batch norm. PreciseBN averages
/// the statistics of the virtual batches of its re-estimation batches, each with equal weight.
public final class GhostBatchNorm: RectifyingNormalizer, InputReleasingNormalizer, PopulationStatisticsNormalizer, StatefulNormalizer {
    public var kind: NormalizerKind { .ghostbatch }
    public var channelCount: Int { core.channelCount }
    /// V, the samples per virtual batch.
    public let virtualBatchSize: Int
    /// Batch norm, run on one virtual batch at a time: γ, β and the running statistics.
    private let core: BatchNorm
    public var parameters: [Parameter] { core.parameters }
    /// Each virtual batch of the last training forward: its samples, its input, output and
    /// gradients, and what its forward pass kept for its backward pass.
    private var groups: [Range<Int>] = []
    private var inputShape: [Int] = []
    private var groupInputs: [Tensor] = []
    private var groupOutput = Tensor(shape: [0])
    private var groupGradient = Tensor(shape: [0])
    private var groupInputGradient = Tensor(shape: [0])
    private var saved: [ChannelNormalizationPass] = []

    /// - Throws: `NormalizerError` for a non-positive channel count, virtual batch size or
    ///   epsilon, or a momentum outside [0, 1].
    public init(
        channelCount: Int, virtualBatchSize: Int, epsilon: Float = NormalizerSettings.defaultEpsilon,
        momentum: Float = NormalizerSettings.defaultMomentum
    ) throws {
        guard virtualBatchSize > 0 else {
            throw NormalizerError.invalidSetting(key: "virtual_batch_size", reason: "must be positive, got \(virtualBatchSize)")
        }
        core = try BatchNorm(channelCount: channelCount, epsilon: epsilon, momentum: momentum)
        self.virtualBatchSize = virtualBatchSize
    }

    public var state: [String: [Float]] { core.state }
    public func setState(_ state: [String: [Float]]) throws { try core.setState(state) }
    public func beginPopulationEstimate() { core.beginPopulationEstimate() }
    public func endPopulationEstimate() { core.endPopulationEstimate() }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        let layout = try NormalizationLayout(shape: input.shape, channelCount: channelCount, kind: kind)
        guard mode == .training, layout.batch > virtualBatchSize else {
            groups = []
            return try core.forward(input, mode: mode, into: &output, rectifying: rectifying)
        }
        groups = stride(from: 0, to: layout.batch, by: virtualBatchSize).map { $0..<min($0 + virtualBatchSize, layout.batch) }
        // Checked before any virtual batch moves the running statistics.
        if let last = groups.last, last.count * layout.spatial < 2 {
            groups = []
            throw NormalizerError.singleValuePerChannel(kind: kind, shape: [last.count] + input.shape.dropFirst())
        }
        while groupInputs.count < groups.count { groupInputs.append(Tensor(shape: [0])) }
        while saved.count < groups.count { saved.append(ChannelNormalizationPass()) }
        inputShape = input.shape
        output.reshape(to: input.shape)
        for (index, samples) in groups.enumerated() {
            copySamples(samples, of: input, into: &groupInputs[index])
            // Each virtual batch keeps its own pass (swapped in and out, not copied).
            swap(&core.saved, &saved[index])
            defer { swap(&core.saved, &saved[index]) }
            try core.forward(groupInputs[index], mode: .training, into: &groupOutput, rectifying: rectifying)
            Self.copy(groupOutput, into: &output, at: samples)
        }
    }

    public func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        guard !groups.isEmpty else { return try core.backward(gradOutput, into: &gradInput) }
        guard saved.count >= groups.count else { throw NormalizerError.backwardWithoutForward }
        guard gradOutput.shape == inputShape else {
            throw NormalizerError.gradientShapeMismatch(expected: inputShape, got: gradOutput.shape)
        }
        var gammaGradient = [Float](repeating: 0, count: channelCount), betaGradient = gammaGradient
        gradInput.reshape(to: gradOutput.shape)
        for (index, samples) in groups.enumerated() {
            copySamples(samples, of: gradOutput, into: &groupGradient)
            swap(&core.saved, &saved[index])
            defer { swap(&core.saved, &saved[index]) }
            try core.backward(groupGradient, into: &groupInputGradient)
            for c in 0..<channelCount {
                gammaGradient[c] += core.gamma.gradient[c]
                betaGradient[c] += core.beta.gradient[c]
            }
            Self.copy(groupInputGradient, into: &gradInput, at: samples)
        }
        (core.gamma.gradient, core.beta.gradient) = (gammaGradient, betaGradient)
    }

    public func releaseSavedInput() {
        core.releaseSavedInput()
        for index in saved.indices { saved[index].releaseInput() }
    }

    /// Writes `part` into samples `samples` of `whole`, which has its shape but for axis 0.
    private static func copy(_ part: Tensor, into whole: inout Tensor, at samples: Range<Int>) {
        let size = part.count / max(1, samples.count)
        part.scalars.withUnsafeBufferPointer { part in
            whole.scalars.withUnsafeMutableBufferPointer { whole in
                (whole.baseAddress! + samples.lowerBound * size).update(from: part.baseAddress!, count: samples.count * size)
            }
        }
    }
}

extension NormalizerKind {
    public static let ghostbatch = NormalizerKind(registering: "ghostbatch")
}

extension GhostBatchNorm {
    /// Its entry in the lab (`NormalizerRegistry`).
    static let registration = NormalizerRegistration(
        kind: .ghostbatch, displayName: "ghost batch norm",
        summary: "as batch norm, with statistics over virtual batches of V consecutive samples in training",
        settings: [
            .momentum,
            NormalizerSetting(
                "virtual_batch_size", default: 32,
                help: "V, the samples per virtual batch (the last may be smaller); V at least the batch is batch norm",
                places: [.experiment, .record, .fixture, .commandLine],
                problem: { $0 > 0 ? nil : "the virtual batch size must be positive, got \($0)" },
                describe: { $0.map { "virtual batches of \($0)" } }),
        ],
        benchmark: .init(settings: ["virtual_batch_size": 4])
    ) { settings, channels in
        try GhostBatchNorm(
            channelCount: channels, virtualBatchSize: settings.value("virtual_batch_size") ?? 32, epsilon: settings.epsilon,
            momentum: settings.value("momentum") ?? NormalizerSettings.defaultMomentum)
    }
}
