import Foundation

/// Two results files side by side, cell by cell — the lab against PyTorch running the same
/// experiment file, or one version of the lab against another. A cell is a model, normalizer
/// label, placement, batch size and base rate that both files ran; its runs are the seeds.
/// Two cells agree when their means differ by no more than the seeds' noise: Welch's t-test,
/// two-sided, p ≥ `Statistics.significanceLevel`.
public struct Comparison: Sendable {
    public struct Cell: Sendable {
        public var model: String
        public var label: String
        public var placement: NormalizerPlacement
        public var batchSize: Int
        public var baseLearningRate: Float
        /// Test accuracies of the runs that did not diverge, in seed order, in each file.
        public var first: [Double]
        public var second: [Double]
        public var firstDiverged: Int
        public var secondDiverged: Int

        /// The p-value of Welch's t-test; nil when either side has fewer than two runs.
        public var pValue: Double? { Statistics.welchPValue(first, second) }
        /// Whether the two means agree within the noise; nil when it cannot be tested.
        public var agrees: Bool? { pValue.map { $0 >= Statistics.significanceLevel } }
        public var difference: Double? {
            guard let a = Statistics.mean(first), let b = Statistics.mean(second) else { return nil }
            return a - b
        }
    }

    public var cells: [Cell]
    /// Records of the first file with no counterpart in the second, and the other way round.
    public var onlyFirst: Int
    public var onlySecond: Int

    public init(first: [RunRecord], second: [RunRecord]) {
        struct Key: Hashable {
            var model: String, label: String, placement: NormalizerPlacement, batchSize: Int, rate: Float
        }
        func key(_ spec: RunSpec) -> Key {
            Key(model: spec.model, label: spec.label, placement: spec.placement, batchSize: spec.batchSize, rate: spec.baseLearningRate)
        }
        func grouped(_ records: [RunRecord]) -> [Key: [RunRecord]] {
            Dictionary(grouping: records, by: { key($0.spec) }).mapValues { $0.sorted { $0.spec.seed < $1.spec.seed } }
        }
        let (a, b) = (grouped(first), grouped(second))
        var order: [Key] = []
        for record in first where b[key(record.spec)] != nil && !order.contains(key(record.spec)) { order.append(key(record.spec)) }
        cells = order.map { key in
            let (runsA, runsB) = (a[key]!, b[key]!)
            return Cell(
                model: key.model, label: key.label, placement: key.placement, batchSize: key.batchSize,
                baseLearningRate: key.rate,
                first: runsA.filter { !$0.result.diverged }.compactMap(\.result.testAccuracy),
                second: runsB.filter { !$0.result.diverged }.compactMap(\.result.testAccuracy),
                firstDiverged: runsA.filter(\.result.diverged).count, secondDiverged: runsB.filter(\.result.diverged).count)
        }
        onlyFirst = first.filter { b[key($0.spec)] == nil }.count
        onlySecond = second.filter { a[key($0.spec)] == nil }.count
    }

    /// "K of M cells agree within the noise …".
    public var summary: String {
        let tested = cells.filter { $0.agrees != nil }
        let agreeing = tested.filter { $0.agrees == true }.count
        var text = "\(agreeing) of \(tested.count) cells agree within the noise (Welch's t-test over seeds, two-sided, p ≥ \(Statistics.format(Statistics.significanceLevel)))"
        if cells.count > tested.count { text += "; \(cells.count - tested.count) could not be tested (fewer than two runs on a side)" }
        return text + "."
    }

    /// The comparison page.
    /// - Parameters:
    ///   - names: what to call the two files in the table ("NormLab", "PyTorch").
    ///   - paths: the files, as given on the command line.
    ///   - command: the command that writes this page, to reproduce it.
    ///   - notes: markdown to add under "Notes" (what explains the cells that differ).
    public func markdown(
        names: (String, String), paths: (String, String), command: String, first: [RunRecord], second: [RunRecord], notes: String?
    ) -> String {
        func describe(_ records: [RunRecord]) -> String {
            let commits = Array(Set(records.map(\.result.commit))).sorted().joined(separator: ", ")
            let experiments = Array(Set(records.map(\.spec.experiment))).sorted().joined(separator: ", ")
            return "\(records.count) runs of \(experiments); \(commits)"
        }
        func percent(_ values: [Double], diverged: Int) -> String {
            guard let mean = Statistics.mean(values) else { return diverged > 0 ? "diverged" : "–" }
            var text = String(format: "%.2f", 100 * mean)
            if let std = Statistics.standardDeviation(values) { text += String(format: " ± %.2f", 100 * std) }
            if ResultTable.splits(values, typicalSpread: nil) {
                text = "split: " + values.map { String(format: "%.2f", 100 * $0) }.joined(separator: " / ")
            }
            if diverged > 0 { text += " (\(diverged) diverged)" }
            return text
        }
        let showModel = Set(cells.map(\.model)).count > 1
        let showRate = Set(cells.map(\.baseLearningRate)).count > 1
        let showPlacement = Set(cells.map(\.placement)).count > 1
        var lines = [
            "# \(names.0) against \(names.1)", "",
            "| | |", "|---|---|",
            "| \(names.0) | `\(paths.0)`: \(describe(first)) |",
            "| \(names.1) | `\(paths.1)`: \(describe(second)) |",
            "",
            "**\(summary)**",
            "",
            "Written by `\(command)`. Test accuracy (%), mean ± standard deviation over seeds; difference = \(names.0) − \(names.1), in points. A cell agrees when a two-sided Welch's t-test over its seeds gives p ≥ \(Statistics.format(Statistics.significanceLevel)). With three seeds a side the test only catches differences of a few standard deviations: agreement means the two are not told apart, not that they are equal. A split cell lists its runs, which ended too far apart for a mean to describe them.",
            "",
        ]
        var head = "|"
        var rule = "|"
        if showModel { head += " model |"; rule += "---|" }
        head += " normalizer |"; rule += "---|"
        if showPlacement { head += " placement |"; rule += "---|" }
        if showRate { head += " base lr |"; rule += "---|" }
        head += " batch | \(names.0) | \(names.1) | difference | p | |"
        rule += "---|---|---|---|---|---|"
        lines += [head, rule]
        for cell in cells {
            var row = "|"
            if showModel { row += " \(cell.model) |" }
            row += " \(cell.label) |"
            if showPlacement { row += " \(cell.placement.rawValue) |" }
            if showRate { row += " \(Statistics.format(Double(cell.baseLearningRate))) |" }
            let verdict = cell.agrees.map { $0 ? "agree" : "**differ**" } ?? "not tested"
            row += " \(cell.batchSize) | \(percent(cell.first, diverged: cell.firstDiverged)) | \(percent(cell.second, diverged: cell.secondDiverged)) | "
                + (cell.difference.map { String(format: "%+.2f", 100 * $0) } ?? "–") + " | "
                + (cell.pValue.map { $0 < 0.001 ? "< 0.001" : String(format: "%.3f", $0) } ?? "–") + " | \(verdict) |"
            lines.append(row)
        }
        if onlyFirst + onlySecond > 0 {
            lines += ["", "Runs without a counterpart, left out: \(onlyFirst) of \(names.0)'s, \(onlySecond) of \(names.1)'s."]
        }
        if let notes, !notes.isEmpty {
            lines += ["", "## Notes", "", notes.trimmingCharacters(in: .whitespacesAndNewlines)]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
