import Foundation

/// The markdown page of an experiment: what was run, the accuracy table (mean ± std over
/// seeds; each run of a split cell; the best cell only where it beats the rest by more than the
/// noise), PreciseBN next to the running averages, and links to the chart and CSV.
public enum MarkdownReport {
    /// - Parameters:
    ///   - experimentFile: the experiment file the results came from, as the user would type it.
    ///   - resultsFile: the results file this page is made from.
    ///   - plannedRuns: the number of runs in the experiment's grid, when known: a page of fewer
    ///     runs says it is part-done.
    public static func render(
        _ table: ResultTable, chartFile: String, csvFile: String, experimentFile: String, resultsFile: String,
        plannedRuns: Int? = nil
    ) -> String {
        render(
            table, chartFile: chartFile, csvFile: csvFile, experimentFiles: [experimentFile], resultsFiles: [resultsFile],
            plannedRuns: plannedRuns)
    }

    /// The page of several results files in one table (the headline beside another experiment,
    /// say): the experiments' names in the title, and the commands for each.
    public static func render(
        _ table: ResultTable, chartFile: String, csvFile: String, experimentFiles: [String], resultsFiles: [String],
        plannedRuns: Int? = nil
    ) -> String {
        var lines: [String] = []
        let specs = table.records.map(\.spec)
        guard !specs.isEmpty else { return "# No results\n\nThe results file holds no runs.\n" }
        var experiments: [String] = []
        for spec in specs where !experiments.contains(spec.experiment) { experiments.append(spec.experiment) }
        lines.append("# \(experiments.joined(separator: " + ")): test accuracy of \(table.modelNames) on \(table.dataName)")
        lines.append("")
        lines.append(contentsOf: header(table))
        lines.append("")
        if let plannedRuns, plannedRuns > table.records.count {
            lines.append("**Part-done: \(table.records.count) of the grid's \(plannedRuns) runs.** The sweep runs seeds outermost, so the cells fill seed by seed; the command below resumes it where it stopped.")
            lines.append("")
        }
        lines.append("Reproduce from the repository root. The sweep writes to a new folder here: pointed at an existing results file it resumes, skipping the runs already recorded. Runs are deterministic, so the numbers match with 1 thread or 2.")
        lines.append("")
        lines.append("```sh")
        if experimentFiles.count == 1 {
            lines.append("swift run -c release normlab sweep \(experimentFiles[0]) --out rerun   # the runs, then this page")
            lines.append("swift run -c release normlab report \(resultsFiles[0])                  # this page, from the results file")
        } else {
            for file in experimentFiles { lines.append("swift run -c release normlab sweep \(file) --out rerun   # the runs") }
            let name = ((chartFile as NSString).lastPathComponent as NSString).deletingPathExtension
            lines.append("swift run -c release normlab report \(resultsFiles.joined(separator: " ")) --name \(name)   # this page, from the results files")
        }
        lines.append("```")
        lines.append("")
        lines.append("## Test accuracy (%), mean ± std over seeds")
        lines.append("")
        lines.append(contentsOf: accuracyTable(table))
        lines.append("")
        lines.append(contentsOf: legend(table))
        lines.append("Accuracy is in inference mode: a normalizer with running statistics uses its running averages.")
        if table.axis == .batchSize, table.columns.count > 1 {
            lines.append("Drop: percentage points lost from the row's best batch size to batch size \(Statistics.format(table.columns[0])).")
        }
        let divergedRuns = table.records.filter(\.result.diverged).count
        if divergedRuns > 0 {
            lines.append("Diverged runs (loss became NaN or infinite) are counted in the cell, as `k/n diverged`, and left out of its mean; a cell where every run diverged says `diverged`. \(divergedRuns) of \(table.records.count) runs diverged.")
        } else {
            lines.append("No run diverged.")
        }
        lines.append(contentsOf: stalledRunsNote(table))
        lines.append("")
        lines.append("![test error against \(table.axis.rawValue)](\(chartFile))")
        lines.append("")
        lines.append("Test error per cell, for pandas or a spreadsheet: [`\(csvFile)`](\(csvFile)).")
        let preciseRows = table.rows.filter { row in row.cells.contains { !$0.preciseAccuracies.isEmpty } }
        if !preciseRows.isEmpty {
            lines.append("")
            lines.append("## Running averages against recomputed population statistics (PreciseBN)")
            lines.append("")
            lines.append("After training, each batch-norm layer's statistics were re-estimated with the weights frozen (PreciseBN, Wu & Johnson 2021) and the test set evaluated again. The gap is the part of the accuracy lost to running averages that lag the final network; what remains below the large-batch accuracy is lost in training itself, to noisy batch statistics.")
            lines.append("")
            lines.append(contentsOf: preciseTable(table, rows: preciseRows))
        }
        lines.append(contentsOf: RecordingsReport.sections(table, chartBase: (chartFile as NSString).deletingPathExtension))
        lines.append("")
        return lines.joined(separator: "\n")
    }

    /// Runs that stayed finite but never learned (test accuracy at chance) pull a cell's mean far
    /// down; name them, so that a large std is explained rather than puzzled over.
    private static func stalledRunsNote(_ table: ResultTable) -> [String] {
        let stalled = table.records.filter { record in
            guard let accuracy = record.result.testAccuracy else { return false }
            return accuracy <= ResultTable.chanceAccuracy + 0.01
        }
        guard !stalled.isEmpty else { return [] }
        // A run's summary leaves out the default model; beside another model, it says it.
        let models = Set(table.records.map(\.spec.model))
        let names = stalled.map { record in
            let model = record.spec.model
            var text = models.count > 1 && model == ModelSettings.smallCNN.name ? "\(model) \(record.spec.summary)" : record.spec.summary
            if let loss = record.result.finalLoss { text += " (final loss \(String(format: "%.4f", loss)))" }
            return text
        }
        return [
            "Runs that never learned — finite loss, but test accuracy at chance (10%, loss ln 10 ≈ 2.3026): \(names.joined(separator: "; ")). A cell where such a run sits beside runs that learned is split: it lists its runs rather than a mean."
        ]
    }

    /// What the bold and italic cells mean, and what a split cell is, as far as the table has them.
    private static func legend(_ table: ResultTable) -> [String] {
        let verdicts = table.verdicts
        var lines: [String] = []
        let test = "Welch's t-test over seeds, two-sided, p < \(Statistics.format(Statistics.significanceLevel))"
        if verdicts.contains(where: { if case .best = $0 { return true } else { return false } }) {
            lines.append("Bold: the best cell of its column, above every other cell of the column by more than the noise (\(test)).")
        }
        if verdicts.contains(where: { if case .tied = $0 { return true } else { return false } }) {
            lines.append("Italic: tied for best — the column's highest mean, and every cell that cannot be told apart from it (the same test gives p ≥ \(Statistics.format(Statistics.significanceLevel)), or the cell has a single run): no cell of such a column beats all the others.")
        }
        if verdicts.allSatisfy({ $0 == .undecided }) && !table.rows.isEmpty {
            lines.append("No cell is marked best: with one run per cell, differences cannot be told from the noise.")
        }
        if table.rows.contains(where: { $0.cells.contains(where: \.split) }) {
            lines.append("A split cell lists its runs' accuracies in seed order instead of a mean: its runs ended so far apart (a run at chance beside runs that learned, or a spread over five times the table's typical one) that a mean and standard deviation would describe none of them.")
        }
        return lines
    }

    private static func header(_ table: ResultTable) -> [String] {
        let specs = table.records.map(\.spec)
        let first = specs[0]
        func distinct<T: Hashable & Comparable>(_ values: [T]) -> [T] { Array(Set(values)).sorted() }
        let rates = distinct(specs.map(\.baseLearningRate)).map { Statistics.format(Double($0)) }
        let commits = distinct(table.records.map(\.result.commit))
        let dates = table.records.map(\.result.finishedAt).sorted()
        let epochs = distinct(specs.map(\.epochs)).map(String.init).joined(separator: ", ")
        var lines = [
            "| | |",
            "|---|---|",
            "| data | \(table.dataName), \(first.data == "embedded" ? "the embedded subset" : first.data): first \(first.trainSize) training images, \(first.testSize.map { "the first \($0) test images" } ?? "the whole test set") |",
            "| model | \(modelSummary(table)) |",
            "| training | \(epochs) epochs, SGD momentum \(Statistics.format(Double(first.sgdMomentum))), weight decay \(Statistics.format(Double(first.weightDecay))) on conv and linear weights, cosine decay to zero, a fresh seeded shuffle each epoch, last incomplete batch dropped |",
            "| learning rate | base \(rates.joined(separator: ", "))\(first.learningRateScaling == "linear" ? " × batch size / \(referenceBatchSize(first)) (linear scaling rule)" : ", not scaled") |",
            "| normalizers | \(normalizerSummary(table)) |",
            "| seeds | \(distinct(specs.map(\.seed)).map(String.init).joined(separator: ", ")) (\(table.records.count) runs) |",
            "| code | commit \(commits.joined(separator: ", ")) |",
            "| date | \(dates.first.map { String($0.prefix(10)) } ?? "?")\(dates.last.map { $0.prefix(10) != dates.first!.prefix(10) ? " to " + String($0.prefix(10)) : "" } ?? "") |",
        ]
        let seconds = table.records.reduce(0) { $0 + $1.result.seconds }
        let threads = distinct(table.records.map(\.result.threads))
        lines.append("| training time | \(duration(seconds)) in all, the runs' own training times added up (\(threads.map(String.init).joined(separator: " or ")) \(threads == [1] ? "thread" : "threads") per run) |")
        return lines
    }

    /// "5 h 49 min", "12 min 5 s", "42 s"; beyond a million hours, seconds.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 3.6e9 else { return String(format: "%.0f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole >= 3600 { return "\(whole / 3600) h \(whole % 3600 / 60) min" }
        if whole >= 60 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole) s"
    }

    /// The batch size at which the base rate applies: lr = base × batch / reference.
    private static func referenceBatchSize(_ spec: RunSpec) -> String {
        Statistics.format((Double(spec.baseLearningRate) * Double(spec.batchSize) / Double(spec.learningRate)).rounded())
    }

    private static func modelSummary(_ table: ResultTable) -> String {
        var parts: [String] = []
        var placement = ""
        var seen = Set<String>()
        for record in table.records where seen.insert(record.spec.model).inserted {
            guard let model = try? record.spec.modelSettings() else { continue }
            parts.append(model.architecture.pageDescription(zeroInitResidual: model.zeroInitResidual))
        }
        if table.records.contains(where: { $0.spec.placement == .after }) {
            let all = table.records.allSatisfy { $0.spec.placement == .after }
            placement = "; \(all ? "every" : "with placement after, each") norm slot after its ReLU instead (conv → ReLU → norm)"
        }
        if parts.count > 2, table.axis == .depth {
            return "\(table.modelNames), D = \(table.columns.map { Statistics.format($0) }.joined(separator: ", ")) (He et al. 2016's CIFAR networks, `experiments/README.md`)\(placement)"
        }
        return parts.joined(separator: "; ") + placement
    }

    /// The column heading's word for the table's axis.
    private static func columnTitle(_ table: ResultTable) -> String {
        switch table.axis {
        case .batchSize: return "batch"
        case .learningRate: return "lr"
        case .depth: return "depth"
        }
    }

    private static func normalizerSummary(_ table: ResultTable) -> String {
        var parts: [String] = []
        var seen = Set<String>()
        for record in table.records where seen.insert(record.spec.label).inserted {
            let settings = record.spec.normalizerSettings
            let standardized = record.spec.weightStandardization == true
                ? " — \(settings.kind.registration.displayName) + WS (each convolution's weights standardized over its fan-in)" : ""
            parts.append("\(record.spec.label): \(settings.pageDescription)\(standardized)")
        }
        return parts.joined(separator: "; ")
    }

    private static func percent(_ value: Double?, _ std: Double?) -> String {
        guard let value else { return "–" }
        let base = String(format: "%.2f", 100 * value)
        guard let std else { return base }
        return base + String(format: " ± %.2f", 100 * std)
    }

    /// "81.00 ± 1.41", or a split cell's runs: "split: 78.40 / 10.00 / 65.50".
    private static func summary(_ values: [Double], split: Bool) -> String {
        guard split else { return percent(Statistics.mean(values), Statistics.standardDeviation(values)) }
        return "split: " + values.map { String(format: "%.2f", 100 * $0) }.joined(separator: " / ")
    }

    static func cellText(_ cell: ResultTable.Cell) -> String {
        if cell.runs == 0 { return "–" }
        if cell.accuracies.isEmpty { return cell.diverged > 0 ? "diverged" : "–" }
        var text = summary(cell.accuracies, split: cell.split)
        if cell.diverged > 0 { text += " (\(cell.diverged)/\(cell.runs) diverged)" }
        return text
    }

    private static func accuracyTable(_ table: ResultTable) -> [String] {
        let showDrop = table.axis == .batchSize && table.columns.count > 1
        let columnTitle = columnTitle(table)
        var head = "| normalizer | " + table.columns.map { "\(columnTitle) \(Statistics.format($0))" }.joined(separator: " | ") + " |"
        var rule = "|---|" + String(repeating: "---|", count: table.columns.count)
        if showDrop {
            head += " drop |"
            rule += "---|"
        }
        var lines = [head, rule]
        let verdicts = table.verdicts
        for (index, row) in table.rows.enumerated() {
            var cells = row.cells.enumerated().map { column, cell -> String in
                switch verdicts[column] {
                case .best(index): return "**\(cellText(cell))**"
                case .tied(let rows) where rows.contains(index): return "_\(cellText(cell))_"
                default: return cellText(cell)
                }
            }
            if showDrop {
                if let drop = table.dropToSmallest(row) {
                    cells.append(String(format: "%.2f (from %@)", 100 * drop.drop, Statistics.format(table.columns[drop.bestColumn])))
                } else {
                    cells.append("–")
                }
            }
            lines.append("| \(row.name) | " + cells.joined(separator: " | ") + " |")
        }
        return lines
    }

    private static func preciseTable(_ table: ResultTable, rows: [ResultTable.Row]) -> [String] {
        let columnTitle = columnTitle(table)
        var lines = [
            "| normalizer | evaluation | " + table.columns.map { "\(columnTitle) \(Statistics.format($0))" }.joined(separator: " | ") + " |",
            "|---|---|" + String(repeating: "---|", count: table.columns.count),
        ]
        for row in rows {
            lines.append("| \(row.name) | running averages | " + row.cells.map(cellText).joined(separator: " | ") + " |")
            lines.append("| \(row.name) | PreciseBN | " + row.cells.map { cell in
                cell.preciseAccuracies.isEmpty ? "–" : summary(cell.preciseAccuracies, split: cell.preciseSplit)
            }.joined(separator: " | ") + " |")
            lines.append("| \(row.name) | gain | " + row.cells.map { cell -> String in
                guard !cell.split, !cell.preciseSplit, let precise = cell.preciseMean, let running = cell.mean else { return "–" }
                return String(format: "%+.2f", 100 * (precise - running))
            }.joined(separator: " | ") + " |")
        }
        return lines
    }
}
