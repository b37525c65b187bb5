/// A normalizer whose training statistics are each channel's mean and biased variance over the
/// batch and H, W (batch norm, batch renorm).
///
/// Such a normalizer declares its math, not its passes: what a channel's batch statistics
/// become (the scale and shift x̂ is mapped with, updating its running state on the way), the
/// statistics inference uses, and dL/dγ from the backward pass's per-channel sums. The forward
/// and backward passes are this protocol's (below), and the same
/// declarations drive a training step that splits the batch between threads
/// (`Engine/`), so the two ways cannot compute different things. A
/// method whose statistics are not the whole batch's (statistics over groups of samples) is not
/// one of these.
public protocol BatchStatisticsNormalizer: RectifyingNormalizer, InputReleasingNormalizer, PopulationStatisticsNormalizer, StatefulNormalizer {
    /// ε, added to the variance inside the square root.
    var epsilon: Float { get }
    /// The per-channel scale and shift that inference applies to x̂.
    var gamma: Parameter { get }
    var beta: Parameter { get }

    /// Calls `body` with the training forward pass's coefficients: for a channel's batch mean
    /// and (biased) variance over `valuesPerChannel` values, the scale and shift that x̂ is
    /// mapped with. Called once for each channel, from any thread, it updates that channel's
    /// running statistics (and batch renorm's r and d).
    func withTrainingCoefficients<Result>(
        valuesPerChannel: Int,
        _ body: (_ coefficients: (_ channel: Int, _ mean: Float, _ variance: Float) -> (scale: Float, shift: Float)) -> Result
    ) -> Result

    /// The per-channel mean and 1/σ an inference forward pass normalizes with (it asks once
    /// per pass).
    func inferenceStatistics() -> (mean: [Float], invStd: [Float])

    /// dL/dγ from a backward pass's per-channel Σdy and Σdy·x̂ (dL/dβ is Σdy).
    func gammaGradient(sumDy: [Float], sumDyNormalized: [Float]) -> [Float]

    /// The running mean and spread, for inference.
    var running: RunningStatistics { get set }

    /// What the last forward pass keeps for its backward pass.
    var saved: ChannelNormalizationPass { get set }
}

/// A batch-statistics normalizer's running state: per channel, a mean and a measure of spread
/// (batch norm's variance, batch renorm's standard deviation).
public struct RunningStatistics: Sendable {
    /// The spread's name in fixtures (`running_var`, `running_std`) and in messages.
    let spreadKey: String, spreadName: String
    public internal(set) var mean: [Float]
    public internal(set) var spread: [Float]

    /// A mean of 0 and a spread of 1 in every channel.
    init(channelCount: Int, spreadKey: String, spreadName: String) {
        (self.spreadKey, self.spreadName) = (spreadKey, spreadName)
        mean = [Float](repeating: 0, count: channelCount)
        spread = [Float](repeating: 1, count: channelCount)
    }

    /// Replaces both, each with one value per channel.
    /// - Throws: `NormalizerError.parameterLength` for any other length.
    mutating func set(mean: [Float], spread: [Float]) throws {
        try NormalizerError.checkLength(mean, "running mean", self.mean.count)
        try NormalizerError.checkLength(spread, spreadName, self.spread.count)
        (self.mean, self.spread) = (mean, spread)
    }

    /// Calls `body` with the mean's and the spread's storage, to update them in place.
    mutating func withUnsafeMutableBuffers<Result>(
        _ body: (_ mean: UnsafeMutableBufferPointer<Float>, _ spread: UnsafeMutableBufferPointer<Float>) -> Result
    ) -> Result {
        mean.withUnsafeMutableBufferPointer { mean in spread.withUnsafeMutableBufferPointer { spread in body(mean, spread) } }
    }
}

extension BatchStatisticsNormalizer {
    /// The forward pass: batch statistics in training, `inferenceStatistics()` in inference.
    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        let layout = try saved.begin(input, channelCount: channelCount, kind: kind, mode: mode)
        switch mode {
        case .training:
            withTrainingCoefficients(valuesPerChannel: layout.batch * layout.spatial) { coefficients in
                saved.forwardTraining(
                    input, layout, epsilon: epsilon, into: &output, rectifying: rectifying, coefficients: coefficients)
            }
        case .inference:
            let (mean, invStd) = inferenceStatistics()
            saved.forwardWithStatistics(
                input, layout, mean: mean, invStd: invStd, scale: gamma.value, shift: beta.value,
                into: &output, rectifying: rectifying)
        }
    }

    /// The backward pass of the last forward: dL/dx, and γ's and β's gradients.
    public func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        let sums = try saved.backward(gradOutput, into: &gradInput)
        setGradients(sumDy: sums.sumDy, sumDyNormalized: sums.sumDyNormalized)
    }

    public func releaseSavedInput() {
        saved.releaseInput()
    }

    /// Sets γ's and β's gradients from the per-channel Σdy and Σdy·x̂.
    func setGradients(sumDy: [Float], sumDyNormalized: [Float]) {
        gamma.gradient = gammaGradient(sumDy: sumDy, sumDyNormalized: sumDyNormalized)
        beta.gradient = sumDy
    }

    /// The running statistics by the names fixtures use (`StatefulNormalizer`).
    public var state: [String: [Float]] { ["running_mean": running.mean, running.spreadKey: running.spread] }

    public func setState(_ state: [String: [Float]]) throws {
        for name in state.keys where self.state[name] == nil { throw NormalizerError.unknownState(kind: kind, name: name) }
        try running.set(mean: state["running_mean"] ?? running.mean, spread: state[running.spreadKey] ?? running.spread)
    }
}

extension BatchStatisticsNormalizer {
    /// Checks the settings every such normalizer has, and returns its starting parameters and
    /// running statistics (γ = 1, β = 0; a mean of 0 and a spread of 1).
    /// - Throws: `NormalizerError` for a non-positive channel count or epsilon, or a momentum
    ///   outside [0, 1].
    static func start(
        channelCount: Int, epsilon: Float, momentum: Float, spreadKey: String, spreadName: String
    ) throws -> (gamma: Parameter, beta: Parameter, running: RunningStatistics) {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        try NormalizerError.checkEpsilon(epsilon)
        try NormalizerError.checkMomentum(momentum)
        return (.gamma(channelCount: channelCount), .beta(channelCount: channelCount),
                RunningStatistics(channelCount: channelCount, spreadKey: spreadKey, spreadName: spreadName))
    }
}
