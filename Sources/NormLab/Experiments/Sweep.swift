import Foundation

/// Runs an experiment's grid, appending each finished run to its results file at once and
/// skipping runs already recorded there.
///
/// A grid can also be run as independent tasks, one run each (`runTasks`), by several
/// processes or a cluster's job array; their records wait in the task folder (`TaskFolder`) until
/// `Merge` or the next sweep gathers them.
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

        public init(totalRuns: Int, alreadyRecorded: Int, ran: Int, diverged: Int, seconds: Double, resultsPath: String) {
            self.totalRuns = totalRuns
            self.alreadyRecorded = alreadyRecorded
            self.ran = ran
            self.diverged = diverged
            self.seconds = seconds
            self.resultsPath = resultsPath
        }
    }

    /// An experiment ready to run: its data loaded and its grid laid out.
    public struct Plan: Sendable {
        public let experiment: Experiment
        public let train: Dataset
        public let test: Dataset
        /// The grid in its fixed order; a run's index here is its task index.
        public let runs: [RunSpec]

        /// - Throws: `DataError` when the data cannot be loaded, `ExperimentError` when
        ///   `test_size` asks for more images than there are.
        public init(_ experiment: Experiment) throws {
            let directory = experiment.data == "embedded" ? try FashionMNIST.embeddedDirectory() : experiment.data
            let data = try Dataset.load(directory: directory, trainSize: experiment.trainSize)
            var test = data.test
            if let testSize = experiment.testSize {
                guard testSize <= test.count else {
                    throw ExperimentError.invalid("\"test_size\" is \(testSize), but \(directory) has \(test.count) test images")
                }
                test = test.prefix(testSize)
            }
            self.experiment = experiment
            train = data.train
            self.test = test
            runs = experiment.runs(trainSize: data.train.count)
        }

        /// The experiment's results file in `outputDirectory`.
        public func resultsPath(in outputDirectory: String) -> String {
            (outputDirectory as NSString).appendingPathComponent(experiment.outputs.jsonl)
        }

        /// Opens the results file (making its folder), refusing one that holds runs of another
        /// configuration.
        /// - Parameter repairing: false to read without cutting off a torn last line (see
        ///   `ResultsLog`).
        public func openResults(in outputDirectory: String, repairing: Bool = true) throws -> ResultsLog {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
            let log = try ResultsLog(path: resultsPath(in: outputDirectory), repairing: repairing)
            if let stranger = log.records.first(where: { !runs.contains($0.spec) }) {
                throw ExperimentError.results(
                    "\(log.path) holds runs that are not in this experiment's grid (e.g. \(stranger.spec.summary), \(stranger.spec.epochs) epochs, experiment \"\(stranger.spec.experiment)\"): the experiment file changed since they were run. Move the file away, or write elsewhere with --out.")
            }
            return log
        }

        /// Trains one run of the grid, with PreciseBN where the experiment asks for it.
        /// - Parameter commit: the code version, recorded with the run.
        public func train(
            _ spec: RunSpec, commit: String, progress: ((TrainingProgress) -> Void)? = nil
        ) throws -> RunRecord {
            let outcome = try Trainer.train(spec.trainingSettings(), train: train, test: test, progress: progress)
            var preciseAccuracy: Double?
            if !outcome.diverged, let plan = experiment.preciseBN, PreciseBN.applies(to: outcome.model) {
                try PreciseBN.recompute(
                    outcome.model, data: train, imageCount: plan.images, batchSize: plan.batchSize, seed: spec.seed)
                preciseAccuracy = try Trainer.accuracy(of: outcome.model, on: test)
            }
            return RunRecord(spec: spec, result: RunResult(
                testAccuracy: outcome.testAccuracy, preciseBNAccuracy: preciseAccuracy,
                finalLoss: outcome.finalLoss.isFinite ? outcome.finalLoss : nil, diverged: outcome.diverged,
                divergedAtStep: outcome.divergedAtStep, steps: outcome.steps, seconds: outcome.seconds,
                imagesPerSecond: outcome.imagesPerSecond, threads: Execution.current.threads, commit: commit,
                finishedAt: ISO8601DateFormatter().string(from: Date()), recordings: outcome.recordings))
        }

        /// The images a run trains on, for time estimates.
        public static func images(of spec: RunSpec) -> Double {
            Double(spec.trainSize / spec.batchSize * spec.batchSize * spec.epochs)
        }
    }

    /// Runs every run of the grid that the results file does not hold yet, in the grid's order.
    /// Records that tasks left in the task folder are moved into the results file first.
    ///
    /// - Parameters:
    ///   - commit: the code version, recorded with each run.
    ///   - finished: called with each finished record.
    /// - Throws: `ExperimentError` or `DataError` before any run when the data cannot be loaded
    ///   or the results file holds runs of another configuration.
    public static func run(
        _ experiment: Experiment, outputDirectory: String, commit: String,
        progress: @escaping (Progress) -> Void, finished: (RunRecord) -> Void = { _ in }
    ) throws -> Summary {
        let plan = try Plan(experiment)
        let log = try plan.openResults(in: outputDirectory)
        try gatherTasks(of: plan, into: log, outputDirectory: outputDirectory)
        let recorded = log.records.map(\.spec)
        let pending = plan.runs.filter { !recorded.contains($0) }
        let clock = ContinuousClock()
        let start = clock.now
        let totalImages = pending.reduce(0) { $0 + Plan.images(of: $1) }
        var imagesDone = 0.0
        var diverged = 0
        for (index, spec) in pending.enumerated() {
            func remaining(_ imagesInRun: Double) -> Double? {
                let done = imagesDone + imagesInRun
                let elapsed = (clock.now - start).inSeconds
                guard done > 0, elapsed > 1 else { return nil }
                return elapsed / done * (totalImages - done)
            }
            progress(Progress(run: index + 1, runs: pending.count, spec: spec, training: nil, secondsRemaining: remaining(0)))
            let record = try plan.train(spec, commit: commit) { training in
                progress(Progress(
                    run: index + 1, runs: pending.count, spec: spec, training: training,
                    secondsRemaining: remaining(Double(training.step * spec.batchSize))))
            }
            if record.result.diverged { diverged += 1 }
            try log.append(record)
            finished(record)
            imagesDone += Plan.images(of: spec)
        }
        return Summary(
            totalRuns: plan.runs.count, alreadyRecorded: plan.runs.count - pending.count, ran: pending.count,
            diverged: diverged, seconds: (clock.now - start).inSeconds, resultsPath: log.path)
    }

    /// What `runTasks` did with each index it was given.
    public enum TaskOutcome: Equatable, Sendable {
        case ran(RunRecord)
        /// The task folder or the results file already held this run.
        case alreadyRecorded
    }

    /// Runs the grid's runs at `indices`, each as an independent task: its record goes to a file
    /// of its own in the task folder, written whole or not at all. A run already recorded, in the
    /// task folder or in the results file, is skipped.
    ///
    /// - Parameter experimentFile: the file `plan.experiment` was loaded from; the task folder
    ///   keeps a copy, for `Merge`.
    /// - Throws: `ExperimentError` for an index outside the grid (before any run), or when the
    ///   task folder holds tasks of another configuration.
    public static func runTasks(
        _ indices: [Int], of plan: Plan, experimentFile: String, outputDirectory: String, commit: String,
        started: (Int, RunSpec) -> Void = { _, _ in }, finished: (Int, TaskOutcome) -> Void = { _, _ in }
    ) throws {
        if let outside = indices.first(where: { !plan.runs.indices.contains($0) }) {
            throw ExperimentError.invalid(
                "task \(outside) is out of range: \(plan.experiment.name) has \(plan.runs.count) runs, tasks 0 to \(plan.runs.count - 1)")
        }
        let folder = TaskFolder(outputDirectory: outputDirectory)
        try folder.adopt(plan.experiment, file: experimentFile)
        // Read only: a sweep running the grid with --jobs may be appending to the results file.
        let recorded = try plan.openResults(in: outputDirectory, repairing: false).records.map(\.spec)
        for index in indices {
            let spec = plan.runs[index]
            if try recorded.contains(spec) || folder.record(of: plan, at: index) != nil {
                finished(index, .alreadyRecorded)
                continue
            }
            started(index, spec)
            let record = try plan.train(spec, commit: commit)
            try folder.write(record, experiment: plan.experiment.name, index: index)
            finished(index, .ran(record))
        }
    }

    /// Moves every record in the task folder that the results file does not hold yet into it, in
    /// the grid's order; the task files of records it holds are removed.
    /// - Returns: the grid indices of the records gathered.
    @discardableResult
    public static func gatherTasks(of plan: Plan, into log: ResultsLog, outputDirectory: String) throws -> [Int] {
        let folder = TaskFolder(outputDirectory: outputDirectory)
        var gathered: [Int] = []
        for (index, record) in try folder.records(of: plan) {
            if !log.records.contains(where: { $0.spec == record.spec }) {
                try log.append(record)
                gathered.append(index)
            }
            try FileManager.default.removeItem(atPath: folder.recordPath(experiment: plan.experiment.name, index: index))
        }
        folder.removeIfFinished(experiment: plan.experiment.name)
        return gathered
    }
}
