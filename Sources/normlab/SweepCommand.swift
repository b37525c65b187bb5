import Foundation
import NormLab

/// `normlab sweep FILE [--out DIR] [--threads N]`: runs an experiment's grid, resumably, then
/// writes its tables and chart.
enum SweepCommand {
    static let usage = "usage: normlab sweep EXPERIMENT.json [--out DIR] [--threads N]"

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        let output = try options.value("--out") ?? "results"
        if let threads = try options.integer("--threads", in: 1...256) { Parallelism.threadCount = threads }
        let files = try options.positionals()
        guard files.count == 1 else { throw UsageError(usage) }
        // A malformed file is rejected here, before anything is written.
        let experiment = try Experiment.load(from: files[0])
        let commit = Provenance.commit()
        let display = ProgressDisplay()
        let terminal = display.isTerminal
        var lastPlainRun = 0
        let grid = [
            counted(experiment.models.count, "model"), counted(experiment.normalizers.count, "normalizer"), counted(experiment.placements.count, "placement"),
            counted(experiment.baseLearningRates.count, "learning rate"), counted(experiment.batchSizes.count, "batch size"),
            counted(experiment.seeds.count, "seed"),
        ]
        printNow("sweep \(experiment.name): \(grid.joined(separator: " × ")), \(counted(experiment.epochs, "epoch")), \(counted(Parallelism.threadCount, "thread"))")
        let summary = try Sweep.run(experiment, outputDirectory: output, commit: commit, progress: { progress in
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
            let result = record.result
            let accuracy = result.diverged ? "diverged" : String(format: "%.2f%%", 100 * (result.testAccuracy ?? 0))
            let precise = result.preciseBNAccuracy.map { String(format: " (PreciseBN %.2f%%)", 100 * $0) } ?? ""
            printNow("  done: \(record.spec.summary): test accuracy \(accuracy)\(precise), \(String(format: "%.0f", result.seconds)) s")
        })
        display.finish()
        print("\(summary.ran) runs done (\(summary.diverged) diverged), \(summary.alreadyRecorded) already recorded, in \(formatClock(summary.seconds)); results in \(summary.resultsPath)")
        try ReportCommand.writeReport(
            resultsPath: summary.resultsPath, outputDirectory: output, outputs: experiment.outputs,
            experimentFile: files[0])
        return 0
    }
}

/// The code version results were produced with.
enum Provenance {
    /// `git rev-parse --short HEAD`, with `-dirty` when tracked source files have uncommitted
    /// changes; `unknown` outside a git checkout.
    static func commit() -> String {
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
private func counted(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}
