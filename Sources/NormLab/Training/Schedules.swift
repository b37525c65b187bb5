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
