import Foundation

/// Runs an experiment's grid, appending each finished run to its results file at once and
/// skipping runs already recorded there.
public enum Sweep {
    /// Where a sweep stands, for progress displays.
    public struct Progress: Sendable {
        /// 1-based index of the run in progress among those this invocation runs.
        public var run: Int
        public var runs: Int
        public var spec: RunSpec
        public var training: TrainingProgress?
        /// Estimated seconds until the whole sweep is done.
        public var secondsRemaining: Double?
    }

    public struct Summary: Sendable {
        public var totalRuns: Int
        public var alreadyRecorded: Int
        public var ran: Int
        public var diverged: Int
        public var seconds: Double
        public var resultsPath: String
    }

    /// - Parameters:
    ///   - commit: the code version, recorded with each run.
    ///   - report: called with each finished record.
    /// - Throws: `ExperimentError` or `DataError` before any run when the data cannot be loaded
    ///   or the results file holds runs of another configuration.
    public static func run(
        _ experiment: Experiment, outputDirectory: String, commit: String,
        progress: @escaping (Progress) -> Void, finished: (RunRecord) -> Void = { _ in }
    ) throws -> Summary {
        let directory = experiment.data == "embedded" ? try FashionMNIST.embeddedDirectory() : experiment.data
        var data = try Dataset.load(directory: directory, trainSize: experiment.trainSize)
        if let testSize = experiment.testSize {
            guard testSize <= data.test.count else {
                throw ExperimentError.invalid("\"test_size\" is \(testSize), but \(directory) has \(data.test.count) test images")
            }
            data.test = data.test.prefix(testSize)
        }
        let runs = experiment.runs(trainSize: data.train.count)
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        let log = try ResultsLog(path: (outputDirectory as NSString).appendingPathComponent(experiment.outputs.jsonl))
        if let stranger = log.records.first(where: { !runs.contains($0.spec) }) {
            throw ExperimentError.results(
                "\(log.path) holds runs that are not in this experiment's grid (e.g. \(stranger.spec.summary), \(stranger.spec.epochs) epochs, experiment \"\(stranger.spec.experiment)\"): the experiment file changed since they were run. Move the file away, or write elsewhere with --out.")
        }
        let recorded = log.records.map(\.spec)
        let pending = runs.filter { !recorded.contains($0) }
        let clock = ContinuousClock()
        let start = clock.now
        let imagesPerRun = { (spec: RunSpec) in Double(spec.trainSize / spec.batchSize * spec.batchSize * spec.epochs) }
        let totalImages = pending.reduce(0) { $0 + imagesPerRun($1) }
        var imagesDone = 0.0
        var diverged = 0
        for (index, spec) in pending.enumerated() {
            func remaining(_ imagesInRun: Double) -> Double? {
                let done = imagesDone + imagesInRun
                let elapsed = seconds(clock.now - start)
                guard done > 0, elapsed > 1 else { return nil }
                return elapsed / done * (totalImages - done)
            }
            progress(Progress(run: index + 1, runs: pending.count, spec: spec, training: nil, secondsRemaining: remaining(0)))
            let outcome = try Trainer.train(spec.trainingSettings(), train: data.train, test: data.test) { training in
                let imagesInRun = Double(training.step * spec.batchSize)
                progress(Progress(
                    run: index + 1, runs: pending.count, spec: spec, training: training,
                    secondsRemaining: remaining(imagesInRun)))
            }
            var preciseAccuracy: Double?
            if !outcome.diverged, let plan = experiment.preciseBN, PreciseBN.applies(to: outcome.model) {
                try PreciseBN.recompute(
                    outcome.model, data: data.train, imageCount: plan.images, batchSize: plan.batchSize, seed: spec.seed)
                preciseAccuracy = try Trainer.accuracy(of: outcome.model, on: data.test)
            }
            if outcome.diverged { diverged += 1 }
            let record = RunRecord(spec: spec, result: RunResult(
                testAccuracy: outcome.testAccuracy, preciseBNAccuracy: preciseAccuracy,
                finalLoss: outcome.finalLoss.isFinite ? outcome.finalLoss : nil, diverged: outcome.diverged,
                divergedAtStep: outcome.divergedAtStep, steps: outcome.steps, seconds: outcome.seconds,
                imagesPerSecond: outcome.imagesPerSecond, threads: Parallelism.threadCount, commit: commit,
                finishedAt: ISO8601DateFormatter().string(from: Date())))
            try log.append(record)
            finished(record)
            imagesDone += imagesPerRun(spec)
        }
        return Summary(
            totalRuns: runs.count, alreadyRecorded: runs.count - pending.count, ran: pending.count, diverged: diverged,
            seconds: seconds(clock.now - start), resultsPath: log.path)
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}
