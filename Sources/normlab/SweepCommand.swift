import Foundation
import NormLab

/// `normlab sweep FILE`: runs an experiment's grid, resumably, then writes its tables and chart;
/// with `--jobs J`, J trainings at once; with `--list`, the grid's runs; with `--task I` (or in
/// a Slurm array task), run I alone, into the task folder for `normlab merge`.
enum SweepCommand {
    static let usage = """
        usage: normlab sweep EXPERIMENT.json [--out DIR] [--jobs J] [--threads N]
               normlab sweep EXPERIMENT.json --list
               normlab sweep EXPERIMENT.json [--out DIR] (--task I | --tasks I,J,...) [--threads N]
        """

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        let output = try options.value("--out") ?? "results"
        let threads = try options.integer("--threads", in: 1...256)
        let jobs = try options.integer("--jobs", in: 1...256)
        let list = options.flag("--list")
        let task = try options.value("--task")
        let tasks = try options.value("--tasks")
        let files = try options.positionals()
        guard files.count == 1 else { throw UsageError(usage) }
        // A malformed file is rejected here, before anything is written.
        let experiment = try Experiment.load(from: files[0])
        let environment = ProcessInfo.processInfo.environment
        if list {
            printList(experiment)
            return 0
        }
        // Indices are checked against the grid's size, which does not depend on the data.
        let gridSize = experiment.runs(trainSize: experiment.trainSize ?? 1).count
        if let indices = try TaskSelection.indices(task: task, tasks: tasks, environment: environment, runCount: gridSize) {
            guard jobs == nil else { throw UsageError("--jobs runs a whole sweep; a task runs its runs one after another") }
            let execution = Execution(threads: try threads ?? slurmCPUsPerTask(environment) ?? Machine.availableProcessors)
            return try execution.run { try runTasks(indices, experiment: experiment, file: files[0], output: output) }
        }
        let processors = Machine.availableProcessors
        let jobCount = jobs ?? max(1, processors / (threads ?? 1))
        let execution = Execution(threads: threads ?? max(1, processors / jobCount))
        printNow("sweep \(experiment.name): \(describeGrid(experiment)), \(counted(experiment.epochs, "epoch")), "
            + (jobCount > 1 ? "\(jobCount) at once, " : "") + counted(execution.threads, "thread") + (jobCount > 1 ? " each" : ""))
        let summary = jobCount > 1
            ? try ParallelSweep.run(
                experiment, file: files[0], outputDirectory: output, jobs: jobCount,
                threads: threads.map { .fixed($0) } ?? .share(processors: processors))
            : try execution.run { try runInProcess(experiment, output: output) }
        printNow("\(summary.ran) runs done (\(summary.diverged) diverged), \(summary.alreadyRecorded) already recorded, in \(formatClock(summary.seconds)); results in \(summary.resultsPath)")
        try ReportCommand.writeReport(
            resultsPath: summary.resultsPath, outputDirectory: output, outputs: experiment.outputs,
            experimentFile: files[0])
        return 0
    }

    /// The processors Slurm gave this task (`--cpus-per-task`), if it says.
    private static func slurmCPUsPerTask(_ environment: [String: String]) throws -> Int? {
        guard let text = environment["SLURM_CPUS_PER_TASK"] else { return nil }
        guard let count = Int(text), count >= 1 else {
            throw UsageError("SLURM_CPUS_PER_TASK is '\(text)', not a whole number of processors; give --threads N")
        }
        return count
    }

    /// One training at a time in this process, with a live progress line.
    private static func runInProcess(_ experiment: Experiment, output: String) throws -> Sweep.Summary {
        let display = ProgressDisplay()
        let terminal = display.isTerminal
        var lastPlainRun = 0
        let summary = try Sweep.run(experiment, outputDirectory: output, commit: Provenance.commit(), progress: { progress in
            var line = "run \(progress.run)/\(progress.runs): \(progress.spec.summary)"
            if let training = progress.training {
                line += String(format: "  epoch %d/%d step %d/%d loss %.3f %.0f img/s",
                               training.epoch, training.epochs, training.step, training.totalSteps, training.loss, training.imagesPerSecond)
            }
            if let remaining = progress.secondsRemaining { line += "  sweep ETA \(formatClock(remaining))" }
            if terminal {
                display.show(line)
            } else if progress.run != lastPlainRun {
                lastPlainRun = progress.run
                printNow(line)
            }
        }, finished: { record in
            display.finish()
            printNow("  done: \(describe(record))")
        })
        display.finish()
        return summary
    }

    /// Runs the given runs of the grid as tasks, each record to its own file in the task folder.
    private static func runTasks(_ indices: [Int], experiment: Experiment, file: String, output: String) throws -> Int32 {
        let plan = try Sweep.Plan(experiment)
        try Sweep.runTasks(
            indices, of: plan, experimentFile: file, outputDirectory: output, commit: Provenance.commit(),
            started: { index, spec in
                printNow("task \(index) of \(plan.runs.count): \(spec.summary), \(counted(Execution.current.threads, "thread"))")
            },
            finished: { index, outcome in
                switch outcome {
                case .ran(let record):
                    printNow("  done: \(describe(record)) → \(TaskFolder(outputDirectory: output).recordPath(experiment: experiment.name, index: index))")
                case .alreadyRecorded:
                    printNow("task \(index) of \(plan.runs.count): \(plan.runs[index].summary) is already recorded")
                }
            })
        return 0
    }

    /// `--list`: the run count, then one line per run in the grid's (and the tasks') order.
    private static func printList(_ experiment: Experiment) {
        let runs = experiment.runs(trainSize: experiment.trainSize ?? 0)
        print("\(runs.count) runs")
        // A last column when runs differ otherwise too (initial scale, classes per batch).
        let variants = runs.contains { !$0.variant.isEmpty }
        print((["index", "model", "normalizer", "placement", "base_lr", "lr", "batch_size", "seed"] + (variants ? ["variant"] : []))
            .joined(separator: "\t"))
        for (index, run) in runs.enumerated() {
            print((["\(index)", run.model, run.label, run.placement.rawValue, "\(run.baseLearningRate)", "\(run.learningRate)",
                    "\(run.batchSize)", "\(run.seed)"] + (variants ? [run.variant.isEmpty ? "-" : run.variant] : [])).joined(separator: "\t"))
        }
    }

    static func describeGrid(_ experiment: Experiment) -> String {
        [
            counted(experiment.models.count, "model"), counted(experiment.normalizers.count, "normalizer"), counted(experiment.placements.count, "placement"),
            counted(experiment.baseLearningRates.count, "learning rate"), counted(experiment.batchSizes.count, "batch size"),
            counted(experiment.seeds.count, "seed"),
        ].joined(separator: " × ")
    }

    /// "batch batch 8 seed 0 lr 0.0125: test accuracy 81.20% (PreciseBN 81.50%), 4 s".
    static func describe(_ record: RunRecord) -> String {
        let result = record.result
        let accuracy = result.diverged ? "diverged" : String(format: "%.2f%%", 100 * (result.testAccuracy ?? 0))
        let precise = result.preciseBNAccuracy.map { String(format: " (PreciseBN %.2f%%)", 100 * $0) } ?? ""
        return "\(record.spec.summary): test accuracy \(accuracy)\(precise), \(String(format: "%.0f", result.seconds)) s"
    }
}

/// The code version results were produced with.
enum Provenance {
    /// The variable through which `sweep --jobs` hands its commit to its children, so that every
    /// record of one sweep names the code the sweep started with.
    static let environmentKey = "NORMLAB_COMMIT"

    /// `git rev-parse --short HEAD`, with `-dirty` when tracked source files have uncommitted
    /// changes; `unknown` outside a git checkout. A child of `sweep --jobs` takes its parent's.
    static func commit() -> String {
        if let inherited = ProcessInfo.processInfo.environment[environmentKey], !inherited.isEmpty { return inherited }
        guard let head = git(["rev-parse", "--short", "HEAD"]), !head.isEmpty else { return "unknown" }
        let changes = git(["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"]) ?? ""
        return changes.isEmpty ? head : head + "-dirty"
    }

    private static func git(_ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// "1 seed", "3 seeds".
func counted(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}
