/// Batch renormalization (Ioffe 2017, https://arxiv.org/abs/1702.03275, Algorithm 1): batch
/// norm whose training output is corrected towards the running statistics,
/// `y = gamma · (x̂ · r + d) + beta` with `r = clip(σ_B / σ, 1/rmax, rmax)` and
/// `d = clip((μ_B - μ) / σ, -dmax, dmax)` held constant in backpropagation.
///
/// It keeps a running mean and a running standard deviation σ (not a variance), both updated
/// with `momentum` (the paper's α) after the batch is normalized. Inference is
/// `gamma · (x - μ) / σ + beta`. With rmax = 1 and dmax = 0 training equals batch norm.
public final class BatchRenorm: BatchStatisticsNormalizer, PopulationStatisticsNormalizer, ClippedNormalizer {
    public var kind: NormalizerKind { .batchrenorm }
    public let channelCount: Int
    public let epsilon: Float
    /// The weight of the current batch in the running statistics (the paper's α).
    public let momentum: Float
    /// The largest correction factor r; experiments ramp it from 1 during training.
    public private(set) var rmax: Float = 1
    /// The largest correction shift d; experiments ramp it from 0 during training.
    public private(set) var dmax: Float = 0
    public var parameters: AffineParameters
    public private(set) var gradients: AffineParameters
    /// The running per-channel mean μ.
    public private(set) var runningMean: [Float]
    /// The running per-channel standard deviation σ.
    public private(set) var runningStd: [Float]
    /// r and d from the last training forward, needed for dL/dgamma.
    private var r: [Float]
    private var d: [Float]
    private var pass = ChannelNormalizationPass()
    /// During a population re-estimation, the number of batches averaged so far.
    private var estimatedBatches: Int?

    /// - Throws: `NormalizerError` for a non-positive channel count or epsilon, a momentum
    ///   outside [0, 1], rmax < 1 or dmax < 0.
    public init(
        channelCount: Int, epsilon: Float = NormalizerSettings.defaultEpsilon,
        momentum: Float = NormalizerSettings.defaultMomentum, rmax: Float = 1, dmax: Float = 0
    ) throws {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        try NormalizerError.checkEpsilon(epsilon)
        try NormalizerError.checkMomentum(momentum)
        self.channelCount = channelCount
        self.epsilon = epsilon
        self.momentum = momentum
        parameters = AffineParameters(channelCount: channelCount)
        gradients = .zeros(channelCount: channelCount)
        runningMean = [Float](repeating: 0, count: channelCount)
        runningStd = [Float](repeating: 1, count: channelCount)
        r = runningStd
        d = runningMean
        try setClipping(rmax: rmax, dmax: dmax)
    }

    /// Sets the clipping bounds for the next training steps.
    /// - Throws: `NormalizerError` when rmax < 1 or dmax < 0.
    public func setClipping(rmax: Float, dmax: Float) throws {
        guard rmax >= 1, rmax.isFinite else { throw NormalizerError.invalidRmax(rmax) }
        guard dmax >= 0, dmax.isFinite else { throw NormalizerError.invalidDmax(dmax) }
        self.rmax = rmax
        self.dmax = dmax
    }

    /// Replaces the running statistics.
    public func setRunningStatistics(mean: [Float], std: [Float]) throws {
        try NormalizerError.checkLength(mean, "running mean", channelCount)
        try NormalizerError.checkLength(std, "running std", channelCount)
        runningMean = mean
        runningStd = std
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        let layout = try pass.begin(input, channelCount: channelCount, kind: kind, mode: mode)
        switch mode {
        case .training:
            withTrainingCoefficients(valuesPerChannel: layout.batch * layout.spatial) { coefficients in
                pass.forwardTraining(
                    input, layout, epsilon: epsilon, into: &output, rectifying: rectifying, coefficients: coefficients)
            }
        case .inference:
            pass.forwardWithStatistics(
                input, layout, mean: runningMean, invStd: runningStd.map { 1 / $0 },
                scale: parameters.gamma, shift: parameters.beta, into: &output, rectifying: rectifying)
            for c in 0..<channelCount {
                r[c] = 1
                d[c] = 0
            }
        }
    }

    func withTrainingCoefficients<Result>(
        valuesPerChannel _: Int,
        _ body: (_ coefficients: (_ channel: Int, _ mean: Float, _ variance: Float) -> (scale: Float, shift: Float)) -> Result
    ) -> Result {
        let (gamma, beta, epsilon) = (parameters.gamma, parameters.beta, epsilon)
        var (momentum, rmax, dmax) = (self.momentum, self.rmax, self.dmax)
        if let batches = estimatedBatches {
            // Plain batch normalization, averaging the batch statistics with equal weights.
            (momentum, rmax, dmax) = (1 / Float(batches + 1), 1, 0)
            estimatedBatches = batches + 1
        }
        return runningMean.withUnsafeMutableBufferPointer { runningMean in
            runningStd.withUnsafeMutableBufferPointer { runningStd in
                r.withUnsafeMutableBufferPointer { r in
                    d.withUnsafeMutableBufferPointer { d in
                        body { c, mean, variance in
                            let batchStd = (variance + epsilon).squareRoot()
                            r[c] = min(max(batchStd / runningStd[c], 1 / rmax), rmax)
                            d[c] = min(max((mean - runningMean[c]) / runningStd[c], -dmax), dmax)
                            runningMean[c] += momentum * (mean - runningMean[c])
                            runningStd[c] += momentum * (batchStd - runningStd[c])
                            return (gamma[c] * r[c], gamma[c] * d[c] + beta[c])
                        }
                    }
                }
            }
        }
    }

    /// From now on, training-mode forwards apply no correction (r = 1, d = 0) and replace the
    /// running mean and std with the plain average of their batch values (PreciseBN), until
    /// `endPopulationEstimate`.
    public func beginPopulationEstimate() { estimatedBatches = 0 }

    /// Returns to the exponential running average and the clipping bounds in force.
    public func endPopulationEstimate() { estimatedBatches = nil }

    public func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        let sums = try pass.backward(gradOutput, into: &gradInput)
        setGradients(sumDy: sums.sumDy, sumDyNormalized: sums.sumDyNormalized)
    }

    func setGradients(sumDy: [Float], sumDyNormalized: [Float]) {
        // y = gamma · (x̂·r + d) + beta, so dL/dgamma = r·Σdy·x̂ + d·Σdy.
        var gradGamma = sumDyNormalized
        for c in 0..<channelCount {
            gradGamma[c] = r[c] * sumDyNormalized[c] + d[c] * sumDy[c]
        }
        gradients = AffineParameters(gamma: gradGamma, beta: sumDy)
    }

    public func releaseSavedInput() {
        pass.releaseInput()
    }
}

extension BatchRenorm {
    /// Its entry in the lab (`NormalizerKind.registration`).
    static let registration = NormalizerRegistration(displayName: "batch renorm", settingKeys: ["eps", "momentum", "renorm_schedule"]) { settings, channels in
        try BatchRenorm(
                channelCount: channels, epsilon: settings.epsilon, momentum: settings.momentum, rmax: settings.rmax,
                dmax: settings.dmax)
    }
}
