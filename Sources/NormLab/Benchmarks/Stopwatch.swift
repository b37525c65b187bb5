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
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            samples.append(seconds)
            total += seconds
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}
