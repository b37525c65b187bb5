import Foundation

/// Batch norm with noise after it, on purpose (Santurkar et al. 2018, "How does batch
/// normalization help optimization?", §2, https://arxiv.org/abs/1805.11604): in training,
/// `y' = y · exp(σ·z₁) + σ·z₂` with batch norm's output y and z₁, z₂ ~ N(0, 1) drawn per channel
/// at each training step, so that the distribution the next layer sees shifts from step to step
/// far more than batch norm's own; none at inference. σ is the `noise` setting. It asks whether
/// batch norm's benefit comes from reducing that shift (the internal covariate shift): with the
/// shift made worse, does batch norm still help?
///
/// The draws come from the normalizer's own generator, seeded by the model (`SeededNormalizer`),
/// so a run is reproducible; PreciseBN's re-estimation forwards draw none.
public final class NoisyBatchNorm: RectifyingNormalizer, PopulationStatisticsNormalizer, StatefulNormalizer, SeededNormalizer {
    public var kind: NormalizerKind { .noisybatch }
    public var channelCount: Int { core.channelCount }
    /// σ.
    public let noise: Float
    /// Batch norm: γ, β, the statistics and every pass but the noise.
    private let core: BatchNorm
    public var parameters: [Parameter] { core.parameters }
    private var generator = SeededGenerator(seed: 0)
    private var estimating = false
    /// The last training forward's per-channel exp(σ·z₁), for the backward pass; empty when it
    /// drew no noise.
    private var scale: [Float] = []

    /// - Throws: `NormalizerError` for a non-positive channel count or epsilon, a momentum
    ///   outside [0, 1], or a negative or non-finite σ.
    public init(
        channelCount: Int, noise: Float, epsilon: Float = NormalizerSettings.defaultEpsilon,
        momentum: Float = NormalizerSettings.defaultMomentum
    ) throws {
        guard noise >= 0, noise.isFinite else {
            throw NormalizerError.invalidSetting(key: "noise", reason: "must be a number of at least 0, got \(noise)")
        }
        core = try BatchNorm(channelCount: channelCount, epsilon: epsilon, momentum: momentum)
        self.noise = noise
    }

    public func seed(_ seed: UInt64) { generator = SeededGenerator(seed: seed) }

    public var state: [String: [Float]] { core.state }
    public func setState(_ state: [String: [Float]]) throws { try core.setState(state) }
    public func beginPopulationEstimate() {
        estimating = true
        core.beginPopulationEstimate()
    }
    public func endPopulationEstimate() {
        estimating = false
        core.endPopulationEstimate()
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        scale = []
        guard mode == .training, !estimating else { return try core.forward(input, mode: mode, into: &output, rectifying: rectifying) }
        try core.forward(input, mode: mode, into: &output, rectifying: false)
        let channels = channelCount
        scale = (0..<channels).map { _ in Float(exp(Double(noise) * generator.nextNormal())) }
        let shift = (0..<channels).map { _ in noise * Float(generator.nextNormal()) }
        let spatial = output.count / (output.shape[0] * channels)
        let scale = scale
        output.scalars.withUnsafeMutableBufferPointer { y in
            for plane in 0..<output.shape[0] * channels {
                let channel = plane % channels
                for i in plane * spatial..<(plane + 1) * spatial { y[i] = y[i] * scale[channel] + shift[channel] }
            }
            if rectifying { for i in y.indices { y[i] = max(y[i], 0) } }
        }
    }

    public func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        // (Batch norm's backward refuses a gradient of another shape than the forward's input.)
        guard !scale.isEmpty, gradOutput.shape.count >= 2 else { return try core.backward(gradOutput, into: &gradInput) }
        // dL/dy = dL/dy' · exp(σ·z₁), channel by channel.
        var scaled = gradOutput
        let (channels, spatial, scale) = (channelCount, gradOutput.count / max(1, gradOutput.shape[0] * channelCount), scale)
        scaled.scalars.withUnsafeMutableBufferPointer { dy in
            for plane in 0..<gradOutput.shape[0] * channels {
                for i in plane * spatial..<(plane + 1) * spatial { dy[i] *= scale[plane % channels] }
            }
        }
        try core.backward(scaled, into: &gradInput)
    }
}

/// Its inference is batch norm's (no noise): folded as batch norm is.
extension NoisyBatchNorm: FoldableNormalizer {
    public var gamma: Parameter { core.gamma }
    public var beta: Parameter { core.beta }
    public func inferenceStatistics() -> (mean: [Float], invStd: [Float]) { core.inferenceStatistics() }
}

extension NormalizerKind {
    public static let noisybatch = NormalizerKind(registering: "noisybatch")
}

extension NoisyBatchNorm {
    /// Its entry in the lab (`NormalizerRegistry`).
    static let registration = NormalizerRegistration(
        kind: .noisybatch, displayName: "noisy batch norm",
        summary: "batch norm, then y·exp(σ·z₁) + σ·z₂ in training, z drawn per channel and step (Santurkar et al. 2018)",
        settings: [
            .momentum,
            NormalizerSetting(
                "noise", default: Float(0.5), help: "σ, the noise's scale",
                places: [.experiment, .record, .commandLine],
                problem: { $0 >= 0 && $0.isFinite ? nil : "the noise must be a number of at least 0, got \($0)" },
                describe: { $0.map { "noise σ \(formatSetting(Double($0)))" } }),
        ],
        drawsNoise: true, benchmark: nil
    ) { settings, channels in
        try NoisyBatchNorm(
            channelCount: channels, noise: settings.value("noise") ?? 0.5, epsilon: settings.epsilon,
            momentum: settings.value("momentum") ?? NormalizerSettings.defaultMomentum)
    }
}
