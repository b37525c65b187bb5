import Foundation
import NormLab

/// `normlab report RESULTS.jsonl... [--out DIR] [--name NAME]`: the markdown table, CSV and SVG
/// chart of a results file, named after it (`small-batch.jsonl` → `small-batch.md`, `.csv`,
/// `.svg`); of several results files, one table of all their rows, named NAME (by default the
/// files' names joined with `+`).
enum ReportCommand {
    static let usage = "usage: normlab report RESULTS.jsonl... [--out DIR] [--name NAME]"

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        let output = try options.value("--out") ?? "results"
        let name = try options.value("--name")
        let files = try options.positionals()
        guard !files.isEmpty else { throw UsageError(usage) }
        for file in files where !FileManager.default.fileExists(atPath: file) { throw UsageError("no such file: \(file)") }
        let base = name ?? files.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension }.joined(separator: "+")
        guard !base.isEmpty, !base.contains("/") else { throw UsageError("--name must be a plain file name, got \"\(base)\"") }
        let outputs = Experiment.Outputs(jsonl: base + ".jsonl", markdown: base + ".md", csv: base + ".csv", svg: base + ".svg")
        if files.count == 1 {
            try writeReport(resultsPath: files[0], outputDirectory: output, outputs: outputs, experimentFile: nil)
        } else {
            try writeReport(resultsPaths: files, outputDirectory: output, outputs: outputs)
        }
        return 0
    }

    /// One page for several results files: their records in one table, in the files' order.
    static func writeReport(resultsPaths: [String], outputDirectory: String, outputs: Experiment.Outputs) throws {
        var records: [RunRecord] = []
        var experimentFiles: [String] = []
        for path in resultsPaths {
            let fileRecords = try ResultsLog(path: path).records
            guard let experiment = fileRecords.first?.spec.experiment else { throw UsageError("\(path) holds no runs") }
            records += fileRecords
            experimentFiles.append("experiments/\(experiment).json")
        }
        let labels = records.map { "\($0.spec.experiment)/\($0.spec.label)" }
        let clashing = Set(records.map(\.spec.label)).filter { label in
            Set(records.filter { $0.spec.label == label }.map(\.spec.experiment)).count > 1
        }
        guard clashing.isEmpty else {
            throw UsageError("the files share the row label\(clashing.count == 1 ? "" : "s") \(clashing.sorted().joined(separator: ", ")): one table cannot tell their rows apart (\(Set(labels).count) rows)")
        }
        let table = ResultTable(records: records)
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        func write(_ text: String, _ name: String) throws { try writeFile(text, named: name, in: outputDirectory) }
        let markdown = MarkdownReport.render(
            table, chartFile: outputs.svg, csvFile: outputs.csv, experimentFiles: experimentFiles, resultsFiles: resultsPaths)
        try write(markdown, outputs.markdown)
        try write(CSVReport.render(table), outputs.csv)
        let name = (outputs.markdown as NSString).deletingPathExtension
        try write(SVGChart.render(table, title: "\(name): \(table.modelNames) on \(table.dataName), test error"), outputs.svg)
        for chart in CurveChart.charts(table, base: (outputs.svg as NSString).deletingPathExtension) { try write(chart.svg, chart.file) }
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
        func write(_ text: String, _ name: String) throws { try writeFile(text, named: name, in: outputDirectory) }
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
        for chart in CurveChart.charts(table, base: (outputs.svg as NSString).deletingPathExtension) { try write(chart.svg, chart.file) }
    }

    /// Writes `text` to the file `name` in `directory`, and says so.
    private static func writeFile(_ text: String, named name: String, in directory: String) throws {
        let path = (directory as NSString).appendingPathComponent(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        printNow("wrote \(path)")
    }
}
