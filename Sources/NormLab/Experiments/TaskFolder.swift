import Foundation

/// Where the runs of a grid split into independent tasks leave their records: `OUT/tasks/`,
/// one file per run, `NAME.I.jsonl` (NAME the experiment, I the run's index in the grid), and
/// `NAME.experiment.json`, the experiment the tasks belong to.
///
/// A record is written to a temporary file, synced, then renamed into place, so a task killed at
/// any moment (Ctrl-C, a scheduler's SIGTERM then SIGKILL, a lost node) leaves its complete
/// record or no file at all. Files are never appended to, so any number of processes, on any
/// number of machines sharing the folder, can write tasks at once.
public struct TaskFolder: Sendable {
    public let path: String

    public init(outputDirectory: String) {
        path = (outputDirectory as NSString).appendingPathComponent("tasks")
    }

    /// The file that holds run `index` of experiment `name`.
    public func recordPath(experiment name: String, index: Int) -> String {
        (path as NSString).appendingPathComponent("\(name).\(index).jsonl")
    }

    /// The copy of the experiment the folder's tasks were run from.
    public func experimentPath(_ name: String) -> String {
        (path as NSString).appendingPathComponent("\(name).experiment.json")
    }

    /// Writes one run's record, whole or not at all.
    public func write(_ record: RunRecord, experiment name: String, index: Int) throws {
        try writeWhole(ResultsLog.line(for: record), to: recordPath(experiment: name, index: index))
    }

    /// Makes the folder, and keeps a copy of the experiment file its tasks of this name belong
    /// to; refuses an experiment that differs from the one earlier tasks were run from.
    func adopt(_ experiment: Experiment, file: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let copy = experimentPath(experiment.name)
        if let earlier = try storedExperiment(experiment.name) {
            guard earlier == experiment else {
                throw ExperimentError.results(
                    "\(path) holds tasks of another version of experiment \"\(experiment.name)\" (\(copy)): the experiment file changed since they ran. Move the folder away, or write elsewhere with --out.")
            }
            return
        }
        try writeWhole(try Data(contentsOf: URL(fileURLWithPath: file)), to: copy)
    }

    /// The experiment that earlier tasks of this name were run from, if any.
    public func storedExperiment(_ name: String) throws -> Experiment? {
        let copy = experimentPath(name)
        guard FileManager.default.fileExists(atPath: copy) else { return nil }
        return try Experiment.load(from: copy)
    }

    /// The record of run `index` of the plan's grid, nil if no task wrote it.
    /// - Throws: `ExperimentError.results` when the file is damaged or holds another run.
    public func record(of plan: Sweep.Plan, at index: Int) throws -> RunRecord? {
        let file = recordPath(experiment: plan.experiment.name, index: index)
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let record: RunRecord
        do {
            record = try JSONDecoder().decode(RunRecord.self, from: data)
        } catch {
            throw ExperimentError.results("\(file) is not a run record: \(error)")
        }
        guard record.spec == plan.runs[index] else {
            throw ExperimentError.results(
                "\(file) holds \(record.spec.summary) of experiment \"\(record.spec.experiment)\", not run \(index) of this grid (\(plan.runs[index].summary)): the experiment file changed since the task ran. Move \(path) away, or write elsewhere with --out.")
        }
        return record
    }

    /// Every record the folder holds for the plan's experiment, in the grid's order.
    /// - Throws: `ExperimentError.results` for a damaged file, a record of another run, or a
    ///   task index outside the grid.
    func records(of plan: Sweep.Plan) throws -> [(index: Int, record: RunRecord)] {
        let name = plan.experiment.name
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [] }
        var indices: [Int] = []
        for file in files where file.hasPrefix(name + ".") && file.hasSuffix(".jsonl") {
            let middle = file.dropFirst(name.count + 1).dropLast(".jsonl".count)
            guard let index = Int(middle), String(index) == middle else { continue }
            guard plan.runs.indices.contains(index) else {
                throw ExperimentError.results(
                    "\((path as NSString).appendingPathComponent(file)) is task \(index), but \(name) has \(plan.runs.count) runs: the experiment file changed since the task ran")
            }
            indices.append(index)
        }
        return try indices.sorted().compactMap { index in try record(of: plan, at: index).map { (index, $0) } }
    }

    /// Removes the experiment's copy once no task of it is left, and the folder once empty.
    public func removeIfFinished(experiment name: String) {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let ownTasks = files.filter { $0.hasPrefix(name + ".") && $0 != "\(name).experiment.json" }
        guard ownTasks.isEmpty else { return }
        try? FileManager.default.removeItem(atPath: experimentPath(name))
        if files.allSatisfy({ $0 == "\(name).experiment.json" }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
