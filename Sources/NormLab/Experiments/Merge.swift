import Foundation

/// Gathers the records that tasks left in the task folder, with those the results file already
/// holds, into the experiment's results file in the grid's order: for a complete grid, the file a
/// single sequential sweep writes, record for record (timings and hosts aside).
public enum Merge {
    public struct Outcome: Sendable {
        public var resultsPath: String
        /// Runs of the grid that have a record.
        public var recorded: Int
        /// Runs of the grid with no record anywhere, by grid index.
        public var missing: [(index: Int, spec: RunSpec)]
        /// Whether the results file was written (not when runs are missing, unless partial).
        public var wrote: Bool
    }

    /// - Parameter partial: write the results file even when runs are missing.
    /// - Throws: `ExperimentError.results` when the results file or the task folder holds
    ///   records of another configuration, or a damaged file.
    public static func merge(_ plan: Sweep.Plan, outputDirectory: String, partial: Bool) throws -> Outcome {
        let resultsPath = plan.resultsPath(in: outputDirectory)
        let earlier = FileManager.default.fileExists(atPath: resultsPath)
            ? try plan.openResults(in: outputDirectory).records : []
        var byIndex: [Int: RunRecord] = [:]
        for record in earlier {
            if let index = plan.runs.firstIndex(of: record.spec), byIndex[index] == nil { byIndex[index] = record }
        }
        for (index, record) in try TaskFolder(outputDirectory: outputDirectory).records(of: plan) {
            byIndex[index] = byIndex[index] ?? record
        }
        let missing = plan.runs.indices.filter { byIndex[$0] == nil }.map { (index: $0, spec: plan.runs[$0]) }
        let merged = plan.runs.indices.compactMap { byIndex[$0] }
        let write = !merged.isEmpty && (missing.isEmpty || partial)
        if write { try ResultsLog.write(merged, to: resultsPath) }
        return Outcome(resultsPath: resultsPath, recorded: merged.count, missing: missing, wrote: write)
    }
}
