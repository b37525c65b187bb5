import Foundation

/// Which runs of a grid one task process runs: `--task I`, `--tasks I,J,K`, or, with neither,
/// a Slurm array task's share.
///
/// In an array of as many tasks as the grid has runs, task I runs run I. In a smaller array
/// (`SLURM_ARRAY_TASK_COUNT` below the run count) task I runs I, I + count, I + 2 × count, ….
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
        func number(_ name: String, default value: Int) throws -> Int {
            guard let text = environment[name] else { return value }
            guard let number = Int(text), number >= 0 else {
                throw ExperimentError.invalid("\(name) is '\(text)', not a whole number")
            }
            return number
        }
        let id = try number("SLURM_ARRAY_TASK_ID", default: 0)
        let minimum = try number("SLURM_ARRAY_TASK_MIN", default: 0)
        let step = max(1, try number("SLURM_ARRAY_TASK_STEP", default: 1))
        let count = try number("SLURM_ARRAY_TASK_COUNT", default: runCount)
        guard id >= minimum else { throw ExperimentError.invalid("SLURM_ARRAY_TASK_ID \(idText) is below SLURM_ARRAY_TASK_MIN \(minimum)") }
        let position = try index(Substring(String((id - minimum) / step)), from: "SLURM_ARRAY_TASK_ID \(idText)")
        guard count > 0, count < runCount else { return [position] }
        return Array(stride(from: position, to: runCount, by: count))
    }
}
