import Foundation
import NormLab
import Synchronization

/// `normlab sweep --jobs J`: J trainings at once, each in a child process that runs one task
/// (`normlab sweep FILE --task I --threads T`) and leaves its record in the task folder.
///
/// This process is the results file's only writer: as each child exits it moves the child's
/// record into the results file, so the file is never torn and resumes like a sequential sweep's;
/// once every run is in, it rewrites the file in the grid's order.
///
/// Stopped by SIGINT, SIGTERM or SIGHUP, or by its output closing (`sweep … | head`), it stops
/// its children (SIGTERM; after a second signal, SIGKILL), records what finished, and exits: the
/// runs in progress are lost, no others. Killed outright (SIGKILL), it cannot: its children
/// finish their runs into the task folder, and the next sweep (or `normlab merge`) gathers them.
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
        let events = EventQueue()
        let signals = StopSignals(events)
        defer { signals.restore() }
        var stoppedBy: String?
        var outputClosed = false
        /// A progress line. An output that has closed (`sweep … | head`) stops the sweep.
        func say(_ line: String) {
            guard !outputClosed else { return }
            do { try FileHandle.standardOutput.write(contentsOf: Data((line + "\n").utf8)) } catch {
                outputClosed = true
                events.push(.stop("its output closing"))
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        var timeLeft = TimeLeft(images: pending.reduce(0) { $0 + Sweep.Plan.images(of: plan.runs[$1]) })
        var waiting = pending[...]
        var running: [Int32: (index: Int, started: ContinuousClock.Instant)] = [:]
        var failures: [String] = []
        var ran = 0, diverged = 0
        while !running.isEmpty || (failures.isEmpty && stoppedBy == nil && !waiting.isEmpty) {
            while failures.isEmpty, stoppedBy == nil, running.count < jobs, let index = waiting.popFirst() {
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
                process.terminationHandler = { events.push(.exited(Exit(process: $0))) }
                do { try process.run() } catch {
                    failures.append("run \(index) (\(plan.runs[index].summary)) could not start: \(error)")
                    break
                }
                running[process.processIdentifier] = (index, clock.now)
                say("run \(pending.count - waiting.count)/\(pending.count) started: \(plan.runs[index].summary)")
            }
            guard !running.isEmpty else { continue }
            let exit: Exit
            switch events.pop() {
            case .exited(let exited):
                exit = exited
            case .stop(let reason):
                // The first stop asks the children to stop; another insists.
                say("stopping: \(running.count) runs in progress are stopped and not recorded")
                for pid in running.keys { kill(pid, stoppedBy == nil ? SIGTERM : SIGKILL) }
                stoppedBy = stoppedBy ?? reason
                continue
            }
            guard let (index, started) = running.removeValue(forKey: exit.pid) else { continue }
            let spec = plan.runs[index]
            guard exit.succeeded, let record = try folder.record(of: plan, at: index) else {
                if stoppedBy == nil {
                    failures.append("run \(index) (\(spec.summary)) \(exit.succeeded ? "wrote no record" : exit.description)")
                }
                continue
            }
            try log.append(record)
            try FileManager.default.removeItem(atPath: folder.recordPath(experiment: experiment.name, index: index))
            ran += 1
            if record.result.diverged { diverged += 1 }
            timeLeft.finished(images: Sweep.Plan.images(of: spec), seconds: (clock.now - started).inSeconds)
            let remaining = timeLeft.seconds(
                inProgress: running.values.map { (Sweep.Plan.images(of: plan.runs[$0.index]), (clock.now - $0.started).inSeconds) },
                jobs: min(jobs, running.count + waiting.count))
            say("  done \(ran)/\(pending.count): \(SweepCommand.describe(record))"
                + (remaining.map { "  sweep ETA \(formatClock($0))" } ?? ""))
        }
        folder.removeIfFinished(experiment: experiment.name)
        if let stoppedBy {
            throw ExperimentError.results(
                "stopped by \(stoppedBy) after \(ran) of \(pending.count) runs. The runs that finished are recorded; running the sweep again runs the rest.")
        }
        guard failures.isEmpty else {
            throw ExperimentError.results(
                failures.joined(separator: "; ")
                    + ". The runs that finished are recorded; running the sweep again runs the rest.")
        }
        // The runs finished in whatever order they took; the complete file lists them in the
        // grid's order, as a sequential sweep's does (so pages list the rows as the file does).
        _ = try Merge.merge(plan, outputDirectory: outputDirectory, partial: false)
        return Sweep.Summary(
            totalRuns: plan.runs.count, alreadyRecorded: plan.runs.count - pending.count, ran: ran, diverged: diverged,
            seconds: (clock.now - start).inSeconds, resultsPath: log.path)
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

/// What the sweep's loop waits for: a child's exit, or a reason to stop ("SIGTERM").
private enum Event: Sendable {
    case exited(Exit)
    case stop(String)
}

/// Events, handed from the termination handlers' and signal handlers' threads to the sweep's loop.
private final class EventQueue: Sendable {
    private let events = Mutex<[Event]>([])
    private let available = DispatchSemaphore(value: 0)

    func push(_ event: Event) {
        events.withLock { $0.append(event) }
        available.signal()
    }

    /// Waits for the next event.
    func pop() -> Event {
        available.wait()
        return events.withLock { $0.removeFirst() }
    }
}

/// SIGINT, SIGTERM and SIGHUP, while a sweep runs its children: delivered as events instead of
/// ending the process, so that it can stop its children first. A signal the sweep was started
/// with ignored (SIGHUP under `nohup`, SIGINT in a script's background job) stays ignored.
/// Dispatch catches them with a handler of its own, not by ignoring them, so the children (which
/// an exec gives the default actions) still stop when they are signalled.
///
/// SIGPIPE is ignored instead: a closed output shows as a failed write (`say`).
private final class StopSignals {
    private static let names = [SIGINT: "SIGINT", SIGTERM: "SIGTERM", SIGHUP: "SIGHUP"]
    private var sources: [(number: Int32, source: any DispatchSourceSignal)] = []
    private let pipeAction: (@convention(c) (Int32) -> Void)?

    init(_ events: EventQueue) {
        for (number, name) in StopSignals.names where !StopSignals.isIgnored(number) {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { events.push(.stop(name)) }
            source.resume()
            sources.append((number, source))
        }
        pipeAction = signal(SIGPIPE, SIG_IGN)
    }

    /// The signals' default actions again (the program sets no others).
    func restore() {
        for (number, source) in sources {
            source.cancel()
            signal(number, SIG_DFL)
        }
        signal(SIGPIPE, pipeAction)
    }

    private static func isIgnored(_ number: Int32) -> Bool {
        let current = signal(number, SIG_IGN)
        signal(number, current)
        return unsafeBitCast(current, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    }
}
