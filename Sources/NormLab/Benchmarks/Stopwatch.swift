/// Times repeated calls and reports the median: robust to the noise of a shared machine.
public enum Stopwatch {
    /// Runs `prepare` (untimed) then `body` (timed) until at least `minimumRepeats` timings and
    /// `minimumSeconds` of timed work, and returns the median seconds per call.
    public static func median(
        minimumRepeats: Int = 7, minimumSeconds: Double = 0.2, maximumRepeats: Int = 2_000,
        prepare: () throws -> Void = {}, _ body: () throws -> Void
    ) rethrows -> Double {
        let clock = ContinuousClock()
        try prepare()
        try body()  // warm-up: first-touch page faults, caches
        var samples: [Double] = []
        var total = 0.0
        while samples.count < minimumRepeats || (total < minimumSeconds && samples.count < maximumRepeats) {
            try prepare()
            let start = clock.now
            try body()
            let seconds = (clock.now - start).inSeconds
            samples.append(seconds)
            total += seconds
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
