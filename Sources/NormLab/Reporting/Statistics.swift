import Foundation

/// The statistics the reports use: means and spreads over seeds, and Welch's t-test, which says
/// whether two cells' means differ by more than their seeds' noise.
public enum Statistics {
    /// The level of the reports' tests: a difference counts when a two-sided Welch's t-test over
    /// seeds gives p below it.
    public static let significanceLevel = 0.05

    public static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// The sample standard deviation (n - 1); nil for fewer than two values.
    public static func standardDeviation(_ values: [Double]) -> Double? {
        guard values.count > 1, let mean = mean(values) else { return nil }
        return (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
    }

    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted(), middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The two-sided p-value of Welch's t-test for a difference between the means of `a` and `b`
    /// (unequal variances; Welch–Satterthwaite degrees of freedom). Nil when either has fewer
    /// than two values. Two samples without spread give 0 when their means differ, 1 when not.
    public static func welchPValue(_ a: [Double], _ b: [Double]) -> Double? {
        guard a.count > 1, b.count > 1, let meanA = mean(a), let meanB = mean(b),
              let sdA = standardDeviation(a), let sdB = standardDeviation(b) else { return nil }
        let (varA, varB) = (sdA * sdA / Double(a.count), sdB * sdB / Double(b.count))
        let variance = varA + varB
        guard variance > 0 else { return meanA == meanB ? 1 : 0 }
        let t = (meanA - meanB) / variance.squareRoot()
        let df = variance * variance
            / (varA * varA / Double(a.count - 1) + varB * varB / Double(b.count - 1))
        return studentTTwoSidedP(t: t, degreesOfFreedom: df)
    }

    /// P(|T| ≥ |t|) for Student's t with `degreesOfFreedom` (any positive real):
    /// I_{ν/(ν+t²)}(ν/2, 1/2), the regularized incomplete beta function.
    public static func studentTTwoSidedP(t: Double, degreesOfFreedom ν: Double) -> Double {
        guard t.isFinite else { return 0 }
        return regularizedIncompleteBeta(x: ν / (ν + t * t), a: ν / 2, b: 0.5)
    }

    /// I_x(a, b), by the continued fraction of Numerical Recipes (§6.4), evaluated on the side of
    /// x where it converges fast.
    static func regularizedIncompleteBeta(x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let logFront = logBeta + logPowers
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * betaContinuedFraction(x: x, a: a, b: b) / a
        }
        return 1 - exp(logFront) * betaContinuedFraction(x: 1 - x, a: b, b: a) / b
    }

    private static func betaContinuedFraction(x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var result = d
        for m in 1...300 {
            let m = Double(m)
            let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d
            if abs(d) < tiny { d = tiny }
            c = 1 + even / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            result *= d * c
            let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d
            if abs(d) < tiny { d = tiny }
            c = 1 + odd / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            result *= step
            if abs(step - 1) < 1e-14 { break }
        }
        return result
    }

    /// 0.05 → "0.05", 32 → "32", 0.0125 → "0.0125".
    public static func format(_ value: Double) -> String { formatSetting(value) }

    /// 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st.
    static func ordinal(_ n: Int) -> String {
        let suffix = (11...13).contains(n % 100) ? "th" : [1: "st", 2: "nd", 3: "rd"][n % 10] ?? "th"
        return "\(n)\(suffix)"
    }
}
