import Foundation
import NormLab

/// `normlab merge OUT [EXPERIMENT.json] [--partial]`: gathers the records that tasks left in
/// `OUT/tasks` into the experiment's results file, in the grid's order, then writes its tables and
/// chart as `sweep` does.
enum MergeCommand {
    static let usage = "usage: normlab merge OUT [EXPERIMENT.json] [--partial]"

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        let partial = options.flag("--partial")
        let positionals = try options.positionals()
        guard (1...2).contains(positionals.count) else { throw UsageError(usage) }
        let output = positionals[0]
        let folder = TaskFolder(outputDirectory: output)
        let experimentFile = try positionals.count == 2 ? positionals[1] : storedExperimentFile(in: folder)
        let experiment = try Experiment.load(from: experimentFile)
        if let stored = try folder.storedExperiment(experiment.name), stored != experiment {
            throw UsageError("the tasks in \(folder.path) were run from another version of \(experimentFile) (their copy: \(folder.experimentPath(experiment.name)))")
        }
        let plan = try Sweep.Plan(experiment)
        let outcome = try Merge.merge(plan, outputDirectory: output, partial: partial)
        printNow("\(experiment.name): \(outcome.recorded) of \(plan.runs.count) runs recorded")
        if !outcome.missing.isEmpty {
            let shown = outcome.missing.prefix(20).map { "  task \($0.index): \($0.spec.summary)" }
            print("missing \(outcome.missing.count):\n" + shown.joined(separator: "\n")
                + (outcome.missing.count > 20 ? "\n  …" : ""))
        }
        guard outcome.wrote else {
            if outcome.recorded == 0 { printError("normlab merge: no records of \(experiment.name) in \(output)") }
            else { printError("normlab merge: wrote nothing; run the missing tasks, or merge with --partial to write the runs there are") }
            return 1
        }
        printNow("wrote \(outcome.resultsPath)")
        try ReportCommand.writeReport(
            resultsPath: outcome.resultsPath, outputDirectory: output, outputs: experiment.outputs,
            experimentFile: experimentFile)
        return 0
    }

    /// The one experiment whose copy the task folder holds.
    private static func storedExperimentFile(in folder: TaskFolder) throws -> String {
        let copies = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasSuffix(".experiment.json") }.sorted()
        guard copies.count == 1 else {
            throw UsageError(copies.isEmpty
                ? "\(folder.path) holds no tasks; name the experiment file: \(usage)"
                : "\(folder.path) holds tasks of \(copies.count) experiments; name one: \(usage)")
        }
        return (folder.path as NSString).appendingPathComponent(copies[0])
    }
}
