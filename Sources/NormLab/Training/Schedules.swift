#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cosine decay from the initial rate to zero over the run (Loshchilov & Hutter 2017, without
/// restarts): `rate(t) = initial · (1 + cos(π t / T)) / 2` for steps t = 0 … T - 1.
public struct CosineSchedule: Sendable {
    public var initialRate: Float
    public var totalSteps: Int

    public func rate(atStep step: Int) -> Float {
        guard totalSteps > 0 else { return initialRate }
        return initialRate * Float((1 + cos(Double.pi * Double(step) / Double(totalSteps))) / 2)
    }
}

/// Batch renormalization's clipping schedule as fractions of the run's steps: the paper's
/// 5k/40k/25k steps (of 130k+) scaled to short runs. rmax = 1 and dmax = 0 until `warmup`,
/// then rmax rises linearly to `rmaxFinal` by `rmaxRampEnd` and dmax to `dmaxFinal` by
/// `dmaxRampEnd`.
public struct RenormSchedule: Codable, Equatable, Sendable {
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
