import Foundation
import NormLab
import Synchronization

/// `normlab sweep --jobs J`: J trainings at once, each in a child process that runs one task
/// (`normlab sweep FILE --task I --threads T`) and leaves its record in the task folder.
///
/// This process is the results file's only writer: as each child exits it moves the child's
/// record into the results file, so the file is never torn and resumes like a sequential sweep's.
/// Children still running when this process is killed finish their run; the next sweep (or
/// `normlab merge`) gathers their records.
enum ParallelSweep {
    /// How many threads a training gets.
    enum Threads {
        /// This many, always.
        case fixed(Int)
        /// The processors shared out between the trainings that can run at once: one each while
        /// every job is busy, more for the last runs (the same bits either way).
        case share(processors: Int)
    }

    static func run(
        _ experiment: Experiment, file: String, outputDirectory: String, jobs: Int, threads: Threads
    ) throws -> Sweep.Summary {
        let plan = try Sweep.Plan(experiment)
        let log = try plan.openResults(in: outputDirectory)
        try Sweep.gatherTasks(of: plan, into: log, outputDirectory: outputDirectory)
        let folder = TaskFolder(outputDirectory: outputDirectory)
        let recorded = log.records.map(\.spec)
        let pending = plan.runs.indices.filter { !recorded.contains(plan.runs[$0]) }
        guard let path = programPath() else {
            throw ExperimentError.results("cannot find the normlab program to start the sweep's jobs with")
        }
        let executable = URL(fileURLWithPath: path)
        var environment = ProcessInfo.processInfo.environment
        environment[Provenance.environmentKey] = Provenance.commit()
        let exits = ExitQueue()
        let clock = ContinuousClock()
        let start = clock.now
        let totalImages = pending.reduce(0) { $0 + Sweep.Plan.images(of: plan.runs[$1]) }
        var imagesDone = 0.0
        var waiting = pending[...]
        var running: [Int32: Int] = [:]
        var failures: [String] = []
        var ran = 0, diverged = 0
        while !running.isEmpty || (failures.isEmpty && !waiting.isEmpty) {
            while failures.isEmpty, running.count < jobs, let index = waiting.popFirst() {
                let childThreads: Int
                switch threads {
                case .fixed(let count): childThreads = count
                case .share(let processors): childThreads = max(1, processors / min(jobs, running.count + 1 + waiting.count))
                }
                let process = Process()
                process.executableURL = executable
                process.arguments = ["sweep", file, "--out", outputDirectory, "--task", "\(index)", "--threads", "\(childThreads)"]
                process.environment = environment
                process.standardOutput = FileHandle.nullDevice
                process.terminationHandler = { exits.push(Exit(process: $0)) }
                try process.run()
                running[process.processIdentifier] = index
                printNow("run \(pending.count - waiting.count)/\(pending.count) started: \(plan.runs[index].summary)")
            }
            let exit = exits.pop()
            guard let index = running.removeValue(forKey: exit.pid) else { continue }
            let spec = plan.runs[index]
            guard exit.succeeded, let record = try folder.record(of: plan, at: index) else {
                failures.append("run \(index) (\(spec.summary)) \(exit.succeeded ? "wrote no record" : exit.description)")
                continue
            }
            try log.append(record)
            try FileManager.default.removeItem(atPath: folder.recordPath(experiment: experiment.name, index: index))
            ran += 1
            if record.result.diverged { diverged += 1 }
            imagesDone += Sweep.Plan.images(of: spec)
            let elapsed = Sweep.seconds(clock.now - start)
            let remaining = imagesDone > 0 ? elapsed / imagesDone * (totalImages - imagesDone) : nil
            printNow("  done \(ran)/\(pending.count): \(SweepCommand.describe(record))"
                + (remaining.map { "  sweep ETA \(formatClock($0))" } ?? ""))
        }
        folder.removeIfFinished(experiment: experiment.name)
        guard failures.isEmpty else {
            throw ExperimentError.results(
                failures.joined(separator: "; ")
                    + ". The runs that finished are recorded; running the sweep again runs the rest.")
        }
        return Sweep.Summary(
            totalRuns: plan.runs.count, alreadyRecorded: plan.runs.count - pending.count, ran: ran, diverged: diverged,
            seconds: Sweep.seconds(clock.now - start), resultsPath: log.path)
    }
}

/// How a child process ended.
private struct Exit: Sendable {
    var pid: Int32
    var status: Int32
    var signaled: Bool

    init(process: Process) {
        pid = process.processIdentifier
        status = process.terminationStatus
        signaled = process.terminationReason == .uncaughtSignal
    }

    var succeeded: Bool { !signaled && status == 0 }
    var description: String { signaled ? "was killed by signal \(status)" : "failed with exit status \(status)" }
}

/// Child exits, handed from the termination handlers' threads to the sweep's loop.
private final class ExitQueue: Sendable {
    private let exits = Mutex<[Exit]>([])
    private let available = DispatchSemaphore(value: 0)

    func push(_ exit: Exit) {
        exits.withLock { $0.append(exit) }
        available.signal()
    }

    /// Waits for the next exit.
    func pop() -> Exit {
        available.wait()
        return exits.withLock { $0.removeFirst() }
    }
}
