import Foundation
import NormLab

/// `normlab report RESULTS.jsonl [--out DIR]`: tables and chart from a results file.
enum ReportCommand {
    static func run(_ arguments: [String]) throws -> Int32 {
        throw UsageError("not written yet")
    }

    static func writeReport(resultsPath: String, outputDirectory: String, outputs: Experiment.Outputs, command: String) throws {
    }
}
