import Foundation

/// Which runs of a grid one task process runs: `--task I`, `--tasks I,J,K`, or, with neither,
/// a Slurm array task's share.
///
/// An array task runs the run its index names (`SLURM_ARRAY_TASK_ID`), as `--task` would: the whole
/// grid as `--array=0-(N-1)`, or only some runs, as `--array=5,17`. One kind of array is read
/// differently: an array `0-(K-1)`, of K tasks fewer than the grid's runs, shares the grid out, and
/// its task I runs I, I + K, I + 2K, … (Slurm caps an array's size; a grid larger than the cap
/// runs this way).
public enum TaskSelection {
    /// - Parameters:
    ///   - task: the value of `--task`, if given.
    ///   - tasks: the value of `--tasks` (comma-separated), if given.
    ///   - environment: the process's environment, for `SLURM_ARRAY_TASK_ID`,
    ///     `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_STEP` and `SLURM_ARRAY_TASK_COUNT`.
    /// - Returns: the grid indices to run, in order; nil for an ordinary sweep (no task named).
    /// - Throws: `ExperimentError.invalid` for an index that is not a whole number or lies
    ///   outside `0..<runCount`.
    public static func indices(
        task: String?, tasks: String?, environment: [String: String], runCount: Int
    ) throws -> [Int]? {
        func index(_ text: Substring, from source: String) throws -> Int {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard let value = Int(trimmed) else {
                throw ExperimentError.invalid("\(source) takes whole numbers, got '\(trimmed)'")
            }
            guard (0..<runCount).contains(value) else {
                throw ExperimentError.invalid("task \(value) (\(source)) is out of range: the experiment has \(runCount) runs, tasks 0 to \(runCount - 1)")
            }
            return value
        }
        if task != nil && tasks != nil { throw ExperimentError.invalid("give --task or --tasks, not both") }
        if let task { return [try index(Substring(task), from: "--task")] }
        if let tasks {
            let list = try tasks.split(separator: ",", omittingEmptySubsequences: false).map { try index($0, from: "--tasks") }
            guard Set(list).count == list.count else { throw ExperimentError.invalid("--tasks names a task twice: \(tasks)") }
            return list
        }
        guard let idText = environment["SLURM_ARRAY_TASK_ID"] else { return nil }
        func number(_ name: String) throws -> Int? {
            guard let text = environment[name] else { return nil }
            guard let number = Int(text), number >= 0 else {
                throw ExperimentError.invalid("\(name) is '\(text)', not a whole number")
            }
            return number
        }
        let id = try index(Substring(idText), from: "SLURM_ARRAY_TASK_ID")
        if let count = try number("SLURM_ARRAY_TASK_COUNT"), count < runCount,
           try number("SLURM_ARRAY_TASK_MIN") ?? 0 == 0, try number("SLURM_ARRAY_TASK_MAX") ?? count - 1 == count - 1 {
            guard id < count else {
                throw ExperimentError.invalid("SLURM_ARRAY_TASK_ID \(id) is outside its array, 0 to \(count - 1)")
            }
            return Array(stride(from: id, to: runCount, by: count))
        }
        return [id]
    }
}
