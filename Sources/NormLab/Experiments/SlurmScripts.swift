import Foundation

/// The scripts that run an experiment on a Slurm cluster: a job array with one task per run of
/// the grid, each task `normlab sweep FILE --task I`; a merge job, `normlab merge`, that starts
/// once every task has succeeded (`--dependency=afterok`); and a submit script that submits both.
///
/// Grids larger than Slurm's usual array limit (1,000 tasks) run as a smaller array whose task I
/// runs I, I + 1,000, … (see `TaskSelection`). A task killed by the scheduler leaves its complete
/// record or none (`TaskFolder`), so submitting the same scripts again runs only what is missing.
public struct SlurmScripts: Equatable, Sendable {
    public struct Settings: Equatable, Sendable {
        /// At most this many tasks at once (`%K`); nil for the cluster's limit.
        public var maxParallel: Int?
        public var cpusPerTask: Int
        /// A time limit per task in Slurm's format (`1:00:00`); nil for the partition's default.
        public var time: String?
        public var partition: String?

        public init(maxParallel: Int? = nil, cpusPerTask: Int = 2, time: String? = nil, partition: String? = nil) {
            self.maxParallel = maxParallel
            self.cpusPerTask = cpusPerTask
            self.time = time
            self.partition = partition
        }
    }

    /// Slurm's default `MaxArraySize` is 1,001: task indices 0 to 1,000.
    public static let largestArray = 1_000

    public var array: String
    public var merge: String
    public var submit: String

    /// The three files' names in the script folder, for experiment `name`.
    public static func fileNames(experiment name: String) -> (array: String, merge: String, submit: String) {
        ("\(name).array.sbatch", "\(name).merge.sbatch", "\(name).submit.sh")
    }

    /// - Parameters (all paths absolute, as a cluster's nodes see them):
    ///   - executable: the `normlab` program.
    ///   - scriptFolder: where the scripts go; their logs go in its `logs` folder.
    public init(
        experiment name: String, runCount: Int, experimentFile: String, outputDirectory: String,
        executable: String, workingDirectory: String, scriptFolder: String, settings: Settings
    ) {
        let arraySize = min(runCount, Self.largestArray)
        let logs = scriptFolder + "/logs"
        let files = Self.fileNames(experiment: name)
        func header(_ job: String, _ lines: [String?]) -> String {
            (["#!/bin/bash", "#SBATCH --job-name=\(job)"] + lines.compactMap { $0 }.map { "#SBATCH " + $0 }
                + ["#SBATCH --chdir=\(workingDirectory)", "set -eu"]).joined(separator: "\n")
        }
        let time = settings.time.map { "--time=\($0)" }
        let partition = settings.partition.map { "--partition=\($0)" }
        let sweep = [quoted(executable), "sweep", quoted(experimentFile), "--out", quoted(outputDirectory)]
            + (arraySize == runCount ? ["--task", "\"$SLURM_ARRAY_TASK_ID\""] : [])
            + ["--threads", "\"$SLURM_CPUS_PER_TASK\""]
        array = header("normlab-\(name)", [
            "--array=0-\(arraySize - 1)" + (settings.maxParallel.map { "%\($0)" } ?? ""),
            "--ntasks=1", "--cpus-per-task=\(settings.cpusPerTask)", time, partition,
            "--output=\(logs)/\(name)-%A_%a.out", "--open-mode=append",
        ]) + """

            # \(name): \(runCount) runs, \(arraySize == runCount ? "one per task" : "task I runs I, I + \(arraySize), …").
            # A run already recorded under \(outputDirectory)/tasks is skipped.
            exec \(sweep.joined(separator: " "))

            """
        merge = header("normlab-\(name)-merge", [
            "--ntasks=1", "--cpus-per-task=1", time, partition, "--output=\(logs)/\(name)-merge-%j.out",
        ]) + """

            exec \(quoted(executable)) merge \(quoted(outputDirectory)) \(quoted(experimentFile))

            """
        submit = """
            #!/bin/sh
            # Submits \(name) to Slurm: a job array of \(arraySize) tasks (\(runCount) runs), then a
            # merge job that starts once every task has succeeded. Submitting again runs only the
            # runs that have no record yet.
            set -eu
            mkdir -p \(quoted(logs))
            array=$(sbatch --parsable \(quoted(scriptFolder + "/" + files.array)))
            array=${array%%;*}
            merge=$(sbatch --parsable --kill-on-invalid-dep=yes --dependency=afterok:"$array" \(quoted(scriptFolder + "/" + files.merge)))
            merge=${merge%%;*}
            echo "submitted job array $array and merge job $merge"
            echo "follow them with: squeue -j $array,$merge"

            """
    }
}

/// `text` as one word for a POSIX shell.
func quoted(_ text: String) -> String {
    let safe = text.allSatisfy { $0.isLetter || $0.isNumber || "/._-+:=,@%".contains($0) }
    return safe && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
