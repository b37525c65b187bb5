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
    /// Batch norm: γ, β, the running statistics and their update, and every pass when one
    /// virtual batch is the whole batch.
    private let core: BatchNorm
    public var parameters: [Parameter] { core.parameters }
    /// The virtual batches of the last training forward (none when it was batch norm's), its
    /// input, and per (virtual batch, channel) the statistics and scale it normalized with.
    private var groups: [Range<Int>] = []
    private var input: Tensor?
    private var layout: NormalizationLayout?
    private var mean: [Float] = [], variance: [Float] = [], invStd: [Float] = [], scale: [Float] = []
    private var a: [Float] = [], b: [Float] = []

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
            (groups, self.input) = ([], nil)
            return try core.forward(input, mode: mode, into: &output, rectifying: rectifying)
        }
        let groups = ChannelStatistics.virtualBatches(of: layout, size: virtualBatchSize)
        // Checked before any virtual batch moves the running statistics.
        if let last = groups.last, last.count * layout.spatial < 2 {
            self.groups = []
            throw NormalizerError.singleValuePerChannel(kind: kind, shape: [last.count] + input.shape.dropFirst())
        }
        let count = groups.count * channelCount
        if mean.count != count {
            let zeros = [Float](repeating: 0, count: count)
            (mean, variance, invStd, scale, a, b) = (zeros, zeros, zeros, zeros, zeros, zeros)
        }
        input.scalars.withUnsafeBufferPointer { x in
            ChannelStatistics.virtualBatchMoments(x.baseAddress!, layout, groups: groups, mean: &mean, variance: &variance)
        }
        // Each virtual batch in turn is batch norm's batch: its coefficients, and its update of
        // the running statistics.
        for (group, samples) in groups.enumerated() {
            core.withTrainingCoefficients(valuesPerChannel: samples.count * layout.spatial) { coefficients in
                for channel in 0..<channelCount {
                    let index = group * channelCount + channel
                    let (scale, shift) = coefficients(channel, mean[index], variance[index])
                    invStd[index] = ChannelStatistics.inverseStandardDeviation(variance[index], epsilon: core.epsilon)
                    self.scale[index] = scale
                    (a[index], b[index]) = ChannelStatistics.affineCoefficients(mean: mean[index], inverse: invStd[index], scale: scale, shift: shift)
                }
            }
        }
        output.reshape(to: input.shape)
        input.scalars.withUnsafeBufferPointer { x in
            output.scalars.withUnsafeMutableBufferPointer { y in
                ChannelStatistics.virtualBatchAffine(x.baseAddress!, y.baseAddress!, layout, groups: groups, a: a, b: b, rectifying: rectifying)
            }
        }
        (self.groups, self.input, self.layout) = (groups, input, layout)
    }

    public func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        guard !groups.isEmpty else { return try core.backward(gradOutput, into: &gradInput) }
        guard let input, let layout else { throw NormalizerError.backwardWithoutForward }
        guard gradOutput.shape == input.shape else {
            throw NormalizerError.gradientShapeMismatch(expected: input.shape, got: gradOutput.shape)
        }
        self.input = nil
        var sumDy = [Float](repeating: 0, count: mean.count), sumDyNormalized = sumDy
        gradInput.reshape(to: input.shape)
        gradOutput.scalars.withUnsafeBufferPointer { dy in
            input.scalars.withUnsafeBufferPointer { x in
                gradInput.scalars.withUnsafeMutableBufferPointer { dx in
                    ChannelStatistics.virtualBatchBackward(
                        dy.baseAddress!, x.baseAddress!, dx.baseAddress!, layout, groups: groups, mean: mean, invStd: invStd,
                        scale: scale, sumDy: &sumDy, sumDyNormalized: &sumDyNormalized)
                }
            }
        }
        // γ's and β's gradients: each virtual batch's, as batch norm forms them, added in order.
        var gammaGradient = [Float](repeating: 0, count: channelCount), betaGradient = gammaGradient
        for group in groups.indices {
            let channels = group * channelCount..<(group + 1) * channelCount
            let gamma = core.gammaGradient(sumDy: Array(sumDy[channels]), sumDyNormalized: Array(sumDyNormalized[channels]))
            for channel in 0..<channelCount {
                gammaGradient[channel] += gamma[channel]
                betaGradient[channel] += sumDy[group * channelCount + channel]
            }
        }
        (core.gamma.gradient, core.beta.gradient) = (gammaGradient, betaGradient)
    }

    public func releaseSavedInput() {
        core.releaseSavedInput()
        input = nil
    }
}

/// Its inference is batch norm's: folded as batch norm is.
extension GhostBatchNorm: FoldableNormalizer {
    public var gamma: Parameter { core.gamma }
    public var beta: Parameter { core.beta }
    public func inferenceStatistics() -> (mean: [Float], invStd: [Float]) { core.inferenceStatistics() }
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
