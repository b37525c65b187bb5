import Foundation
import XCTest
@testable import NormLab

/// A sweep split into tasks — by `--jobs` on one machine, or a cluster's job array — and merged
/// gives a sequential sweep's records, record for record.
final class SweepTaskTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("normlab-tasks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func folder(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func sequential(_ file: String) throws -> [RunRecord] {
        let summary = try Sweep.run(Experiment.load(from: file), outputDirectory: folder("sequential"), commit: "test", progress: { _ in })
        return try ResultsLog(path: summary.resultsPath).records
    }

    /// The fields that must match between two runs of the same code: all but timings and hosts.
    private func assertSameRuns(_ actual: [RunRecord], _ expected: [RunRecord], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.map(\.spec), expected.map(\.spec), "runs or their order differ", file: file, line: line)
        for (a, e) in zip(actual, expected) {
            XCTAssertEqual(a.result.testAccuracy, e.result.testAccuracy, a.spec.summary, file: file, line: line)
            XCTAssertEqual(a.result.preciseBNAccuracy, e.result.preciseBNAccuracy, a.spec.summary, file: file, line: line)
            XCTAssertEqual(a.result.finalLoss, e.result.finalLoss, a.spec.summary, file: file, line: line)
            XCTAssertEqual(a.result.diverged, e.result.diverged, a.spec.summary, file: file, line: line)
            XCTAssertEqual(a.result.steps, e.result.steps, a.spec.summary, file: file, line: line)
        }
    }

    func testTasksInAnyOrderThenMergeGiveTheSequentialFile() throws {
        let file = try writeTinyExperiment(in: directory, seeds: "[0]")
        let plan = try Sweep.Plan(Experiment.load(from: file))
        let out = folder("cluster")
        var outcomes: [Int: Sweep.TaskOutcome] = [:]
        try Sweep.runTasks([3, 1], of: plan, experimentFile: file, outputDirectory: out, commit: "test", finished: { outcomes[$0] = $1 })
        XCTAssertEqual(outcomes.count, 2)

        let part = try Merge.merge(plan, outputDirectory: out, partial: false)
        XCTAssertEqual(part.missing.map(\.index), [0, 2])
        XCTAssertFalse(part.wrote)
        XCTAssertFalse(FileManager.default.fileExists(atPath: part.resultsPath))
        let partial = try Merge.merge(plan, outputDirectory: out, partial: true)
        XCTAssertTrue(partial.wrote)
        XCTAssertEqual(try ResultsLog(path: partial.resultsPath).records.map(\.spec), [plan.runs[1], plan.runs[3]])

        // A task run again is skipped: its record exists.
        try Sweep.runTasks([1, 0, 2], of: plan, experimentFile: file, outputDirectory: out, commit: "test", finished: { outcomes[$0] = $1 })
        XCTAssertEqual(outcomes[1], .alreadyRecorded)
        let complete = try Merge.merge(plan, outputDirectory: out, partial: false)
        XCTAssertTrue(complete.missing.isEmpty)
        assertSameRuns(try ResultsLog(path: complete.resultsPath).records, try sequential(file))
    }

    func testTasksOfAnotherConfigurationAreRefused() throws {
        let file = try writeTinyExperiment(in: directory, seeds: "[0]")
        let out = folder("cluster")
        try Sweep.runTasks([0], of: Sweep.Plan(Experiment.load(from: file)), experimentFile: file, outputDirectory: out, commit: "test")
        let changed = try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(of: "\"epochs\": 1", with: "\"epochs\": 2")
        try changed.write(toFile: file, atomically: true, encoding: .utf8)
        let plan = try Sweep.Plan(Experiment.load(from: file))
        XCTAssertThrowsError(try Merge.merge(plan, outputDirectory: out, partial: true)) { error in
            XCTAssertTrue("\(error)".contains("changed since the task ran"), "\(error)")
        }
        XCTAssertThrowsError(try Sweep.runTasks([1], of: plan, experimentFile: file, outputDirectory: out, commit: "test")) { error in
            XCTAssertTrue("\(error)".contains("another version"), "\(error)")
        }
        XCTAssertThrowsError(try Sweep.runTasks([4], of: plan, experimentFile: file, outputDirectory: folder("other"), commit: "test")) { error in
            XCTAssertTrue("\(error)".contains("out of range"), "\(error)")
        }
    }

    func testASequentialSweepGathersTaskRecordsInsteadOfRerunningThem() throws {
        let file = try writeTinyExperiment(in: directory, seeds: "[0]")
        let out = folder("mixed")
        try Sweep.runTasks([2], of: Sweep.Plan(Experiment.load(from: file)), experimentFile: file, outputDirectory: out, commit: "task")
        let summary = try Sweep.run(Experiment.load(from: file), outputDirectory: out, commit: "test", progress: { _ in })
        XCTAssertEqual(summary.ran, 3)
        XCTAssertEqual(summary.alreadyRecorded, 1)
        let records = try ResultsLog(path: summary.resultsPath).records
        XCTAssertEqual(records.first?.result.commit, "task")
        XCTAssertEqual(Set(records.map { "\($0.spec)" }).count, 4)
    }

    func testTaskSelection() throws {
        /// The variables Slurm sets in the array task `id` of an array of `ids`.
        func slurm(id: Int, ids: [Int]) -> [String: String] {
            ["SLURM_ARRAY_TASK_ID": "\(id)", "SLURM_ARRAY_TASK_COUNT": "\(ids.count)", "SLURM_ARRAY_TASK_MIN": "\(ids.min()!)",
             "SLURM_ARRAY_TASK_MAX": "\(ids.max()!)", "SLURM_ARRAY_TASK_STEP": "1"]
        }
        func select(_ task: String? = nil, _ tasks: String? = nil, _ environment: [String: String] = [:], runs: Int = 10) throws -> [Int]? {
            try TaskSelection.indices(task: task, tasks: tasks, environment: environment, runCount: runs)
        }
        XCTAssertNil(try select())
        XCTAssertEqual(try select("7"), [7])
        XCTAssertEqual(try select(nil, "3,0,9"), [3, 0, 9])
        XCTAssertEqual(try select(nil, nil, ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "10"]), [4])
        // --task wins over the environment.
        XCTAssertEqual(try select("1", nil, ["SLURM_ARRAY_TASK_ID": "4"]), [1])
        // An array 0-(K-1) smaller than the grid: each task takes every K-th run.
        XCTAssertEqual(try select(nil, nil, ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"]), [2, 6])
        XCTAssertEqual(try select(nil, nil, slurm(id: 3, ids: [0, 1, 2, 3])), [3, 7])
        // Any other array names runs, as `--array=5,7` does to run two runs again. Slurm sets
        // these variables so (seen on slurm-wlm 22.05): a list's step is 1 whatever its spacing.
        XCTAssertEqual(try select(nil, nil, slurm(id: 7, ids: [5, 7])), [7])
        XCTAssertEqual(try select(nil, nil, slurm(id: 4, ids: [2, 4, 6])), [4])
        XCTAssertEqual(try select(nil, nil, slurm(id: 9, ids: Array(0...9))), [9])
        XCTAssertEqual(try select(nil, nil, slurm(id: 9, ids: Array(0...11))), [9])
        for (task, tasks, environment) in [("10", nil, [:]), ("-1", nil, [:]), ("x", nil, [:]), (nil, "1,1", [:]),
                                           (nil, "1,", [:]), ("1", "2", [:]), (nil, nil, ["SLURM_ARRAY_TASK_ID": "12"]),
                                           (nil, nil, slurm(id: 10, ids: Array(0...11))), (nil, nil, slurm(id: 12, ids: [1, 12])),
                                           (nil, nil, ["SLURM_ARRAY_TASK_ID": "x"]), (nil, nil, ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "-2"])]
            as [(String?, String?, [String: String])] {
            XCTAssertThrowsError(try select(task, tasks, environment), "\(String(describing: task)) \(String(describing: tasks)) \(environment)")
        }
    }

    /// A parallel sweep's time left counts the work of the runs in progress.
    func testTimeLeftCountsTheRunsInProgress() throws {
        var timeLeft = TimeLeft(images: 4_000)
        XCTAssertNil(timeLeft.seconds(inProgress: [], jobs: 2), "no rate before a run finishes")
        timeLeft.finished(images: 1_000, seconds: 10)  // 100 images a second per job
        // 3,000 images left, 500 of them trained by the run 5 s in: 2,500 at 200 a second.
        let left = try XCTUnwrap(timeLeft.seconds(inProgress: [(images: 1_000, seconds: 5)], jobs: 2))
        XCTAssertEqual(left, 12.5, accuracy: 1e-9)
        // A run in progress counts for no more than its own images; one job left runs alone.
        XCTAssertEqual(try XCTUnwrap(timeLeft.seconds(inProgress: [(images: 1_000, seconds: 50)], jobs: 1)), 20, accuracy: 1e-9)
    }

    func testSlurmScripts() {
        let settings = SlurmScripts.Settings(maxParallel: 8, cpusPerTask: 4, time: "2:00:00", partition: "gpu")
        let scripts = SlurmScripts(
            experiment: "small-batch", runCount: 72, experimentFile: "/lab/experiments/small-batch.json",
            outputDirectory: "/lab/my results", executable: "/lab/.build/release/normlab", workingDirectory: "/lab",
            scriptFolder: "/lab/my results/slurm", settings: settings)
        for line in ["#SBATCH --array=0-71%8", "#SBATCH --cpus-per-task=4", "#SBATCH --time=2:00:00", "#SBATCH --partition=gpu",
                     "#SBATCH --output=/lab/my results/slurm/logs/small-batch-%A_%a.out",
                     "exec /lab/.build/release/normlab sweep /lab/experiments/small-batch.json --out '/lab/my results' --task \"$SLURM_ARRAY_TASK_ID\" --threads \"$SLURM_CPUS_PER_TASK\""] {
            XCTAssertTrue(scripts.array.contains(line), "array script lacks \(line):\n\(scripts.array)")
        }
        XCTAssertTrue(scripts.merge.contains("exec /lab/.build/release/normlab merge '/lab/my results' /lab/experiments/small-batch.json"), scripts.merge)
        XCTAssertTrue(scripts.submit.contains("--dependency=afterok:\"$array\""), scripts.submit)
        XCTAssertTrue(scripts.submit.contains("'/lab/my results/slurm/small-batch.merge.sbatch'"), scripts.submit)

        // Past Slurm's usual array limit, each task runs a share; no --task.
        let large = SlurmScripts(
            experiment: "big", runCount: 2_500, experimentFile: "/e.json", outputDirectory: "/o", executable: "/n",
            workingDirectory: "/", scriptFolder: "/o/slurm", settings: SlurmScripts.Settings())
        XCTAssertTrue(large.array.contains("#SBATCH --array=0-999\n"), large.array)
        XCTAssertFalse(large.array.contains("--task"), large.array)
        XCTAssertEqual(quoted("it's"), "'it'\\''s'")
    }

    /// `normlab sweep --jobs 2`, run as a user runs it, records what a sequential sweep records;
    /// killed with SIGKILL and run again, it loses and duplicates nothing.
    func testSweepWithJobsRecordsTheSequentialRuns() throws {
        let file = try writeTinyExperiment(in: directory, name: "jobs", seeds: "[0, 1]")
        let out = folder("jobs")
        let results = (out as NSString).appendingPathComponent("jobs.jsonl")
        let process = try startSweepWithJobs(file, out: out)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? ResultsLog(path: results, repairing: false))?.records.count ?? 0) < 2 {
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertLessThan(try ResultsLog(path: results).records.count, 8, "killed before the end")
        // Children still running finish their run into the task folder; wait for them.
        usleep(3_000_000)
        XCTAssertEqual(try runNormlab(["sweep", file, "--out", out, "--jobs", "2", "--threads", "1"]), 0)
        let records = try ResultsLog(path: results).records
        XCTAssertEqual(records.count, 8)
        let expected = try sequential(file)
        assertSameRunsInGridOrder(records, expected)
        XCTAssertFalse(FileManager.default.fileExists(atPath: (out as NSString).appendingPathComponent("tasks")), "the task folder is cleared")
    }

    /// `normlab sweep --jobs 2` stopped by SIGTERM, or by its output closing, stops its children
    /// before it exits, records nothing torn, and run again completes the grid as a sequential
    /// sweep would.
    func testSweepWithJobsStoppedBySIGTERMOrAClosedOutputStopsItsChildren() throws {
        let file = try writeTinyExperiment(in: directory, name: "stopped", seeds: "[0, 1]")
        // Runs of a few seconds, so that the signal finds them running.
        let longer = try String(contentsOfFile: file, encoding: .utf8)
            .replacingOccurrences(of: "\"train_size\": 256", with: "\"train_size\": 2048")
        try longer.write(toFile: file, atomically: true, encoding: .utf8)
        let out = folder("stopped")
        let process = try startSweepWithJobs(file, out: out)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, processes(mentioning: out).count < 3 { usleep(20_000) }
        XCTAssertEqual(processes(mentioning: out).count, 3, "the sweep and its two children")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 1, "a stopped sweep says it did not finish")
        XCTAssertEqual(processes(mentioning: out), [], "no child outlives the sweep")
        let results = (out as NSString).appendingPathComponent("stopped.jsonl")
        XCTAssertLessThan(try ResultsLog(path: results).records.count, 8, "stopped before the end")

        // Its output closing (`normlab sweep … | head -1`) stops it the same way.
        let output = Pipe()
        let piped = try startSweepWithJobs(file, out: out, output: output)
        try output.fileHandleForWriting.close()
        XCTAssertFalse(output.fileHandleForReading.availableData.isEmpty, "the sweep's first line")
        try output.fileHandleForReading.close()
        piped.waitUntilExit()
        XCTAssertEqual(piped.terminationStatus, 1)
        XCTAssertEqual(processes(mentioning: out), [], "no child outlives the sweep")

        XCTAssertEqual(try runNormlab(["sweep", file, "--out", out, "--jobs", "2", "--threads", "1"]), 0)
        let records = try ResultsLog(path: results).records
        let expected = try sequential(file)
        assertSameRunsInGridOrder(records, expected)
    }

    /// Starts `normlab sweep FILE --jobs 2 --threads 1`, as a user runs it.
    private func startSweepWithJobs(_ file: String, out: String, output: Any = FileHandle.nullDevice) throws -> Process {
        let process = Process()
        process.executableURL = try normlabExecutable()
        process.arguments = ["sweep", file, "--out", out, "--jobs", "2", "--threads", "1"]
        process.currentDirectoryURL = repositoryRoot
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// `assertSameRuns` for records that `--jobs` wrote in the order their runs finished.
    private func assertSameRunsInGridOrder(_ records: [RunRecord], _ expected: [RunRecord], file: StaticString = #filePath, line: UInt = #line) {
        let order = expected.map(\.spec)
        let sorted = records.sorted { order.firstIndex(of: $0.spec) ?? 0 < order.firstIndex(of: $1.spec) ?? 0 }
        assertSameRuns(sorted, expected, file: file, line: line)
    }

    /// The processes whose command line mentions `text`, by pid.
    private func processes(mentioning text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data, as: UTF8.self).contains(text)
        }.sorted()
    }
}
