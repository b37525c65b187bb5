/// Batch renormalization (Ioffe 2017, https://arxiv.org/abs/1702.03275, Algorithm 1): batch
/// norm whose training output is corrected towards the running statistics,
/// `y = gamma · (x̂ · r + d) + beta` with `r = clip(σ_B / σ, 1/rmax, rmax)` and
/// `d = clip((μ_B - μ) / σ, -dmax, dmax)` held constant in backpropagation.
///
/// It keeps a running mean and a running standard deviation σ (not a variance), both updated
/// with `momentum` (the paper's α) after the batch is normalized. Inference is
/// `gamma · (x - μ) / σ + beta`. With rmax = 1 and dmax = 0 training equals batch norm.
public final class BatchRenorm: BatchStatisticsNormalizer, ScheduledNormalizer {
    public var kind: NormalizerKind { .batchrenorm }
    public let channelCount: Int
    public let epsilon: Float
    /// The weight of the current batch in the running statistics (the paper's α).
    public let momentum: Float
    /// The largest correction factor r; experiments ramp it from 1 during training.
    public private(set) var rmax: Float = 1
    /// The largest correction shift d; experiments ramp it from 0 during training.
    public private(set) var dmax: Float = 0
    /// How rmax and dmax change over training; nil keeps them as set.
    public let schedule: RenormSchedule?
    /// The per-channel scale, also known as gamma, and shift, beta.
    public let gamma: Parameter, beta: Parameter
    /// gamma and beta, in that order (kept, so that a training step asks without allocating).
    public let parameters: [Parameter]
    public var running: RunningStatistics
    /// The running per-channel mean μ.
    public var runningMean: [Float] { running.mean }
    /// The running per-channel standard deviation σ.
    public var runningStd: [Float] { running.spread }
    /// r and d from the last training forward, needed for dL/dgamma.
    private var r: [Float]
    private var d: [Float]
    public var saved = ChannelNormalizationPass()
    /// During a population re-estimation, the number of batches averaged so far.
    private var estimatedBatches: Int?

    /// - Throws: `NormalizerError` for a non-positive channel count or epsilon, a momentum
    ///   outside [0, 1], rmax < 1 or dmax < 0.
    public init(
        channelCount: Int, epsilon: Float = NormalizerSettings.defaultEpsilon,
        momentum: Float = NormalizerSettings.defaultMomentum, rmax: Float = 1, dmax: Float = 0, schedule: RenormSchedule? = nil
    ) throws {
        (gamma, beta, running) = try Self.start(
            channelCount: channelCount, epsilon: epsilon, momentum: momentum, spreadKey: "running_std", spreadName: "running std")
        (self.channelCount, self.epsilon, self.momentum, parameters) = (channelCount, epsilon, momentum, [gamma, beta])
        (r, d) = (running.spread, running.mean)
        self.schedule = schedule
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

    /// Sets the clipping bounds that `schedule` gives for the step, if it has one.
    public func prepare(step: Int, of totalSteps: Int) throws {
        guard let schedule else { return }
        let bounds = schedule.bounds(atStep: step, of: totalSteps)
        try setClipping(rmax: bounds.rmax, dmax: bounds.dmax)
    }

    /// Replaces the running statistics.
    public func setRunningStatistics(mean: [Float], std: [Float]) throws {
        try running.set(mean: mean, spread: std)
    }

    /// `gamma · (x - μ) / σ + beta`: no correction, so r = 1 and d = 0 for a backward pass that
    /// follows.
    public func inferenceStatistics() -> (mean: [Float], invStd: [Float]) {
        for c in 0..<channelCount {
            r[c] = 1
            d[c] = 0
        }
        return (runningMean, runningStd.map { 1 / $0 })
    }

    public func withTrainingCoefficients<Result>(
        valuesPerChannel _: Int,
        _ body: (_ coefficients: (_ channel: Int, _ mean: Float, _ variance: Float) -> (scale: Float, shift: Float)) -> Result
    ) -> Result {
        let (gamma, beta, epsilon) = (gamma.value, beta.value, epsilon)
        var (momentum, rmax, dmax) = (self.momentum, self.rmax, self.dmax)
        if let batches = estimatedBatches {
            // Plain batch normalization, averaging the batch statistics with equal weights.
            (momentum, rmax, dmax) = (1 / Float(batches + 1), 1, 0)
            estimatedBatches = batches + 1
        }
        return running.withUnsafeMutableBuffers { runningMean, runningStd in
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

    /// From now on, training-mode forwards apply no correction (r = 1, d = 0) and replace the
    /// running mean and std with the plain average of their batch values (PreciseBN), until
    /// `endPopulationEstimate`.
    public func beginPopulationEstimate() { estimatedBatches = 0 }

    /// Returns to the exponential running average and the clipping bounds in force.
    public func endPopulationEstimate() { estimatedBatches = nil }

    /// y = gamma · (x̂·r + d) + beta, so dL/dgamma = r·Σdy·x̂ + d·Σdy.
    public func gammaGradient(sumDy: [Float], sumDyNormalized: [Float]) -> [Float] {
        (0..<channelCount).map { c in r[c] * sumDyNormalized[c] + d[c] * sumDy[c] }
    }
}

extension NormalizerKind {
    public static let batchrenorm = NormalizerKind(registering: "batchrenorm")
}

extension BatchRenorm {
    /// Its entry in the lab (`NormalizerRegistry`).
    static let registration = NormalizerRegistration(
        kind: .batchrenorm, displayName: "batch renorm",
        summary: "as batch norm, its output corrected towards the running statistics by r and d (clipped to rmax, dmax)",
        settings: [
            .momentum,
            NormalizerSetting(
                object: "renorm_schedule", default: RenormSchedule(),
                help: "how rmax and dmax ramp up over training, as fractions of the steps", places: [.experiment, .record],
                problem: { $0.problem }, describe: { $0?.description }),
            NormalizerSetting(
                "rmax", default: Float(1), help: "the current bound on r (fixtures; training follows the schedule)",
                places: [.fixture]),
            NormalizerSetting(
                "dmax", default: Float(0), help: "the current bound on d (fixtures; training follows the schedule)",
                places: [.fixture]),
        ],
        benchmark: .init(settings: ["rmax": Float(3), "dmax": Float(5)])
    ) { settings, channels in
        try BatchRenorm(
            channelCount: channels, epsilon: settings.epsilon, momentum: settings.value("momentum") ?? NormalizerSettings.defaultMomentum,
            rmax: settings.value("rmax") ?? 1, dmax: settings.value("dmax") ?? 0, schedule: settings.value("renorm_schedule"))
    }
}

/// Batch renormalization's clipping schedule as fractions of the run's steps: the paper's
/// 5k/40k/25k steps (of 130k+) scaled to short runs. rmax = 1 and dmax = 0 until `warmup`,
/// then rmax rises linearly to `rmaxFinal` by `rmaxRampEnd` and dmax to `dmaxFinal` by
/// `dmaxRampEnd`.
public struct RenormSchedule: SettingValue, Equatable, CustomStringConvertible {
    public var warmup: Double = 0.05
    public var rmaxFinal: Float = 3
    public var rmaxRampEnd: Double = 0.5
    public var dmaxFinal: Float = 5
    public var dmaxRampEnd: Double = 0.3

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case warmup, rmaxFinal = "rmax", rmaxRampEnd = "rmax_ramp_end", dmaxFinal = "dmax", dmaxRampEnd = "dmax_ramp_end"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.rawValue)), context: "\"renorm_schedule\"")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        warmup = try container.decodeIfPresent(Double.self, forKey: .warmup) ?? warmup
        rmaxFinal = try container.decodeIfPresent(Float.self, forKey: .rmaxFinal) ?? rmaxFinal
        rmaxRampEnd = try container.decodeIfPresent(Double.self, forKey: .rmaxRampEnd) ?? rmaxRampEnd
        dmaxFinal = try container.decodeIfPresent(Float.self, forKey: .dmaxFinal) ?? dmaxFinal
        dmaxRampEnd = try container.decodeIfPresent(Double.self, forKey: .dmaxRampEnd) ?? dmaxRampEnd
    }

    /// Why the schedule cannot be followed, or nil.
    var problem: String? {
        for (name, fraction) in [("warmup", warmup), ("rmax_ramp_end", rmaxRampEnd), ("dmax_ramp_end", dmaxRampEnd)]
        where !(0...1).contains(fraction) {
            return "\(name) \(fraction) is not a fraction of the steps"
        }
        guard warmup < 1, rmaxRampEnd >= warmup, dmaxRampEnd >= warmup else { return "need 0 ≤ warmup ≤ ramp ends ≤ 1" }
        guard rmaxFinal >= 1, dmaxFinal >= 0 else { return "rmax must be at least 1 and dmax at least 0" }
        return nil
    }

    /// "rmax 1→3 over 5–50% of steps, dmax 0→5 over 5–30%", as pages state it.
    public var description: String {
        "rmax 1→\(formatSetting(Double(rmaxFinal))) over \(Int(warmup * 100))–\(Int(rmaxRampEnd * 100))% of steps, dmax 0→\(formatSetting(Double(dmaxFinal))) over \(Int(warmup * 100))–\(Int(dmaxRampEnd * 100))%"
    }

    /// The bounds for step `step` of `totalSteps`.
    public func bounds(atStep step: Int, of totalSteps: Int) -> (rmax: Float, dmax: Float) {
        let progress = totalSteps > 0 ? Double(step) / Double(totalSteps) : 1
        func ramp(_ final: Float, start: Float, end: Double) -> Float {
            guard progress > warmup else { return start }
            guard end > warmup else { return final }
            let fraction = min(1, (progress - warmup) / (end - warmup))
            return start + (final - start) * Float(fraction)
        }
        return (ramp(rmaxFinal, start: 1, end: rmaxRampEnd), ramp(dmaxFinal, start: 0, end: dmaxRampEnd))
    }
}
