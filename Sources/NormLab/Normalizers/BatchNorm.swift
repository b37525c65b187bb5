/// Batch normalization (Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167): each channel is
/// standardized with its mean and variance over the batch and spatial positions.
///
/// Training uses the biased batch variance and updates the running statistics PyTorch's way,
/// `running = (1 - momentum) · running + momentum · batch`, with the unbiased batch variance
/// (so the running value estimates the population variance). Inference uses the running
/// statistics and changes nothing.
public final class BatchNorm: BatchStatisticsNormalizer {
    public var kind: NormalizerKind { .batch }
    public let channelCount: Int
    /// ε, added to the variance inside the square root.
    public let epsilon: Float
    /// The weight of the current batch in the running statistics.
    public let momentum: Float
    /// The per-channel scale, also known as gamma, and shift, beta.
    public let gamma: Parameter, beta: Parameter
    /// gamma and beta, in that order (kept, so that a training step asks without allocating).
    public let parameters: [Parameter]
    public var running: RunningStatistics
    /// The running per-channel mean, used in inference.
    public var runningMean: [Float] { running.mean }
    /// The running per-channel (unbiased) variance, used in inference.
    public var runningVariance: [Float] { running.spread }
    public var saved = ChannelNormalizationPass()
    /// During a population re-estimation, the number of batches averaged so far.
    private var estimatedBatches: Int?

    /// - Throws: `NormalizerError` for a non-positive channel count or epsilon, or a momentum
    ///   outside [0, 1].
    public init(
        channelCount: Int, epsilon: Float = NormalizerSettings.defaultEpsilon, momentum: Float = NormalizerSettings.defaultMomentum
    ) throws {
        (gamma, beta, running) = try Self.start(
            channelCount: channelCount, epsilon: epsilon, momentum: momentum, spreadKey: "running_var", spreadName: "running variance")
        (self.channelCount, self.epsilon, self.momentum, parameters) = (channelCount, epsilon, momentum, [gamma, beta])
    }

    /// Replaces the running statistics (for instance with re-estimated population statistics).
    public func setRunningStatistics(mean: [Float], variance: [Float]) throws {
        try running.set(mean: mean, spread: variance)
    }

    public func inferenceStatistics() -> (mean: [Float], invStd: [Float]) {
        (runningMean, runningVariance.map { ChannelStatistics.inverseStandardDeviation($0, epsilon: epsilon) })
    }

    public func withTrainingCoefficients<Result>(
        valuesPerChannel count: Int,
        _ body: (_ coefficients: (_ channel: Int, _ mean: Float, _ variance: Float) -> (scale: Float, shift: Float)) -> Result
    ) -> Result {
        let count = Float(count)
        let unbiasing = count / (count - 1)
        let (gamma, beta) = (gamma.value, beta.value)
        var momentum = self.momentum
        if let batches = estimatedBatches {
            // An equal-weight average of the batches seen since the estimation began.
            momentum = 1 / Float(batches + 1)
            estimatedBatches = batches + 1
        }
        return running.withUnsafeMutableBuffers { runningMean, runningVariance in
            body { c, mean, variance in
                runningMean[c] += momentum * (mean - runningMean[c])
                runningVariance[c] += momentum * (variance * unbiasing - runningVariance[c])
                return (gamma[c], beta[c])
            }
        }
    }

    /// From now on, training-mode forwards replace the running statistics with the plain average
    /// of their batch statistics (PreciseBN, Wu & Johnson 2021), until `endPopulationEstimate`.
    public func beginPopulationEstimate() { estimatedBatches = 0 }

    /// Returns to the exponential running average.
    public func endPopulationEstimate() { estimatedBatches = nil }

    public func gammaGradient(sumDy: [Float], sumDyNormalized: [Float]) -> [Float] { sumDyNormalized }
}

extension NormalizerKind {
    public static let batch = NormalizerKind(registering: "batch")
}

extension NormalizerSetting {
    /// Batch norm's and batch renorm's running-statistics rate.
    static let momentum = NormalizerSetting(
        "momentum", recordKey: "norm_momentum", default: NormalizerSettings.defaultMomentum,
        help: "the weight of the current batch in the running statistics", places: [.experiment, .record, .fixture],
        describe: { $0.map { "momentum \(formatSetting(Double($0)))" } })
}

extension BatchNorm {
    /// Its entry in the lab (`NormalizerRegistry`).
    static let registration = NormalizerRegistration(
        kind: .batch, displayName: "batch norm", summary: "per channel, over the batch and H, W; running statistics for inference",
        settings: [.momentum]
    ) { settings, channels in
        try BatchNorm(channelCount: channels, epsilon: settings.epsilon, momentum: settings.value("momentum") ?? NormalizerSettings.defaultMomentum)
    }
}
