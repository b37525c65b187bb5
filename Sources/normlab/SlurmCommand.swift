import Foundation
import NormLab

/// `normlab slurm FILE [--out DIR] [--max-parallel K] [--cpus-per-task C] [--time T]
/// [--partition P]`: writes the scripts that run an experiment as a Slurm job array, then merge
/// it, and says how to submit them.
enum SlurmCommand {
    static let usage = "usage: normlab slurm EXPERIMENT.json [--out DIR] [--max-parallel K] [--cpus-per-task C] [--time T] [--partition P]"

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        let output = try options.value("--out") ?? "results"
        let settings = SlurmScripts.Settings(
            maxParallel: try options.integer("--max-parallel", in: 1...100_000),
            cpusPerTask: try options.integer("--cpus-per-task", in: 1...256) ?? 2,
            time: try options.value("--time"), partition: try options.value("--partition"))
        let files = try options.positionals()
        guard files.count == 1 else { throw UsageError(usage) }
        let experiment = try Experiment.load(from: files[0])
        for (name, value) in [("--time", settings.time), ("--partition", settings.partition)] {
            if let value, value.isEmpty || value.contains(where: { $0.isWhitespace || $0 == "'" || $0 == "\"" }) {
                throw UsageError("\(name) takes one word, got '\(value)'")
            }
        }
        let manager = FileManager.default
        let workingDirectory = manager.currentDirectoryPath
        func absolute(_ path: String) -> String {
            (path.hasPrefix("/") ? path : (workingDirectory as NSString).appendingPathComponent(path) as String)
        }
        let executable = programPath() ?? absolute(CommandLine.arguments[0])
        let scriptFolder = (absolute(output) as NSString).appendingPathComponent("slurm")
        let runCount = experiment.runs(trainSize: experiment.trainSize ?? 1).count
        let scripts = SlurmScripts(
            experiment: experiment.name, runCount: runCount, experimentFile: absolute(files[0]),
            outputDirectory: absolute(output), executable: executable, workingDirectory: workingDirectory,
            scriptFolder: scriptFolder, settings: settings)
        try manager.createDirectory(atPath: scriptFolder + "/logs", withIntermediateDirectories: true)
        let names = SlurmScripts.fileNames(experiment: experiment.name)
        for (name, text) in [(names.array, scripts.array), (names.merge, scripts.merge), (names.submit, scripts.submit)] {
            let path = (scriptFolder as NSString).appendingPathComponent(name)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            print("wrote \(path)")
        }
        print("""
            \(experiment.name): \(runCount) runs as a job array of \(min(runCount, SlurmScripts.largestArray)) tasks, \(counted(settings.cpusPerTask, "CPU")) each.
            Submit the array and its merge job with:
              sh \((scriptFolder as NSString).appendingPathComponent(names.submit))
            Results: \(absolute(output))/\(experiment.outputs.jsonl), once the merge job has run. Submitting again runs only what is missing.
            """)
        return 0
    }
}
