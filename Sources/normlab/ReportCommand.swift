import Foundation
import NormLab

/// `normlab report RESULTS.jsonl [--out DIR]`: the markdown table, CSV and SVG chart of a results
/// file, named after it (`small-batch.jsonl` → `small-batch.md`, `.csv`, `.svg`).
enum ReportCommand {
    static let usage = "usage: normlab report RESULTS.jsonl [--out DIR]"

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        let output = try options.value("--out") ?? "results"
        let files = try options.positionals()
        guard files.count == 1 else { throw UsageError(usage) }
        guard FileManager.default.fileExists(atPath: files[0]) else { throw UsageError("no such file: \(files[0])") }
        let base = ((files[0] as NSString).lastPathComponent as NSString).deletingPathExtension
        let outputs = Experiment.Outputs(jsonl: base + ".jsonl", markdown: base + ".md", csv: base + ".csv", svg: base + ".svg")
        try writeReport(resultsPath: files[0], outputDirectory: output, outputs: outputs, experimentFile: nil)
        return 0
    }

    /// Writes the report files for `resultsPath` into `outputDirectory`.
    /// - Parameter experimentFile: the experiment file the results came from; nil for
    ///   `experiments/NAME.json`, NAME the experiment's recorded name.
    static func writeReport(
        resultsPath: String, outputDirectory: String, outputs: Experiment.Outputs, experimentFile: String?
    ) throws {
        let records = try ResultsLog(path: resultsPath).records
        guard let experiment = records.first?.spec.experiment else {
            throw UsageError("\(resultsPath) holds no runs")
        }
        let table = ResultTable(records: records)
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        func write(_ text: String, _ name: String) throws {
            let path = (outputDirectory as NSString).appendingPathComponent(name)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            printNow("wrote \(path)")
        }
        let experimentPath = experimentFile ?? "experiments/\(experiment).json"
        // The grid's size, when the experiment file is at hand, so that a part-done page says so.
        let plannedRuns = (try? Experiment.load(from: experimentPath))
            .map { $0.runs(trainSize: records[0].spec.trainSize).count }
        let markdown = MarkdownReport.render(
            table, chartFile: outputs.svg, csvFile: outputs.csv, experimentFile: experimentPath, resultsFile: resultsPath,
            plannedRuns: plannedRuns)
        try write(markdown, outputs.markdown)
        try write(CSVReport.render(table), outputs.csv)
        try write(SVGChart.render(table, title: "\(experiment): \(table.modelNames) on \(table.dataName), test error"), outputs.svg)
    }
}
