/// The sections of an experiment's page for what its runs recorded on request (`Recording`):
/// the generalization gap, learning curves with the steps to reach given accuracies, and
/// gradient norms per convolution. Each cell is the mean over the seeds' finished runs.
enum RecordingsReport {
    /// The test accuracies whose first crossing a curve section reports.
    static let thresholds = [0.80, 0.85]

    /// - Parameter chartBase: the name the curve charts' files start with (`CurveChart`).
    static func sections(_ table: ResultTable, chartBase: String) -> [String] {
        var lines: [String] = []
        let recorded = table.records.map(\.result.recordings)
        if recorded.contains(where: { $0.finalTrainAccuracy != nil }) { lines += [""] + gapSection(table) }
        if recorded.contains(where: { $0.curve != nil }) { lines += [""] + curveSection(table, chartBase: chartBase) }
        if recorded.contains(where: { $0.firstStepGradientNorms != nil }) { lines += [""] + gradientSection(table) }
        if recorded.contains(where: { $0.activationDrift != nil }) { lines += [""] + driftSection(table) }
        if recorded.contains(where: { $0.shiftedAccuracy != nil }) { lines += [""] + shiftSection(table) }
        if recorded.contains(where: { $0.batchDependence != nil }) { lines += [""] + batchMatesSection(table) }
        return lines
    }

    private static func columnHeads(_ table: ResultTable) -> String {
        let title = table.axis == .batchSize ? "batch" : table.axis.rawValue
        return table.columns.map { "\(title) \(Statistics.format($0))" }.joined(separator: " | ")
    }

    private static func meanText(_ values: [Double], scale: Double = 100, format: String = "%.2f") -> String {
        guard let mean = Statistics.mean(values) else { return "–" }
        let std = Statistics.standardDeviation(values).map { " ± " + String(format: format, scale * $0) } ?? ""
        return String(format: format, scale * mean) + std
    }

    private static func gapSection(_ table: ResultTable) -> [String] {
        var lines = [
            "## Training accuracy and generalization gap",
            "",
            "Accuracy in inference mode on the whole training subset after training, and the gap: training minus test accuracy, in points (mean ± std over seeds).",
            "",
            "| normalizer | measure | " + columnHeads(table) + " |",
            "|---|---|" + String(repeating: "---|", count: table.columns.count),
        ]
        for row in table.rows {
            func cells(_ value: (TrainingRecordings) -> Double?) -> String {
                row.cells.map { cell in meanText(cell.finished.compactMap { value($0.result.recordings) }) }.joined(separator: " | ")
            }
            lines.append("| \(row.name) | training accuracy (%) | " + cells(\.finalTrainAccuracy) + " |")
            lines.append("| \(row.name) | test accuracy (%) | " + row.cells.map(MarkdownReport.cellText).joined(separator: " | ") + " |")
            lines.append("| \(row.name) | gap (points) | " + cells(\.generalizationGap) + " |")
        }
        return lines
    }

    /// The step at which a run's curve first reaches `threshold` test accuracy (at an epoch's
    /// end), or nil if it never does.
    static func stepsToReach(_ threshold: Double, _ record: RunRecord) -> Int? {
        guard let curve = record.result.recordings.curve, let point = curve.first(where: { $0.testAccuracy >= threshold }) else { return nil }
        return point.epoch * record.result.steps / max(1, record.spec.epochs)
    }

    private static func curveSection(_ table: ResultTable, chartBase: String) -> [String] {
        let charts = CurveChart.charts(table, base: chartBase)
        let epochs = table.records.compactMap { $0.result.recordings.curve?.count }.max() ?? 0
        // At most about ten epochs' columns: every k-th, and the last.
        let stride = max(1, (epochs + 9) / 10)
        var shown = Array(Swift.stride(from: stride - 1, to: epochs, by: stride))
        if epochs > 0 && shown.last != epochs - 1 { shown.append(epochs - 1) }
        var lines = [
            "## Learning curves",
            "",
            "Test accuracy (%) at the end of \(stride == 1 ? "each epoch" : "every \(Statistics.ordinal(stride)) epoch and the last"), mean over seeds; then the training steps each run took to first reach \(thresholds.map { String(format: "%.0f%%", 100 * $0) }.joined(separator: " and ")) test accuracy (checked at each epoch's end; the mean over seeds, or how many never did).",
            "",
        ]
        for (column, value) in table.columns.enumerated() {
            let title = table.axis == .batchSize ? "batch \(Statistics.format(value))" : "\(table.axis.rawValue) \(Statistics.format(value))"
            lines.append("### \(title)")
            lines.append("")
            let reach = thresholds.map { String(format: "steps to %.0f%%", 100 * $0) }
            lines.append("| normalizer | " + shown.map { "epoch \($0 + 1)" }.joined(separator: " | ") + " | " + reach.joined(separator: " | ") + " |")
            lines.append("|---|" + String(repeating: "---|", count: shown.count + reach.count))
            for row in table.rows where !row.cells[column].finished.isEmpty {
                let runs = row.cells[column].finished
                let points = shown.map { epoch -> String in
                    let values = runs.compactMap { $0.result.recordings.curve.flatMap { epoch < $0.count ? $0[epoch].testAccuracy : nil } }
                    return values.isEmpty ? "–" : String(format: "%.2f", 100 * Statistics.mean(values)!)
                }
                let steps = thresholds.map { threshold -> String in
                    let reached = runs.compactMap { stepsToReach(threshold, $0) }
                    guard let mean = Statistics.mean(reached.map(Double.init)) else { return "never" }
                    let never = runs.count - reached.count
                    return String(format: "%.0f", mean) + (never > 0 ? " (\(never) of \(runs.count) never)" : "")
                }
                lines.append("| \(row.name) | " + (points + steps).joined(separator: " | ") + " |")
            }
            lines.append("")
            for chart in charts where chart.column == value {
                lines.append("![learning curves: \(chart.model), \(title), test error per epoch](\(chart.file))")
                lines.append("")
            }
        }
        return lines
    }

    private static func gradientSection(_ table: ResultTable) -> [String] {
        let layers = table.records.compactMap { $0.result.recordings.firstStepGradientNorms?.count }.max() ?? 0
        var lines = [
            "## Gradient norms per convolution",
            "",
            "‖dL/dW‖₂ of each convolution (1 is the first), at the first training step and averaged over the last epoch's steps, for the batch's mean cross-entropy before weight decay and momentum: the mean over seeds. A norm that overflowed is left out.",
            "",
        ]
        for (column, value) in table.columns.enumerated() {
            let title = table.axis == .batchSize ? "batch \(Statistics.format(value))" : "\(table.axis.rawValue) \(Statistics.format(value))"
            lines.append("### \(title)")
            lines.append("")
            lines.append("| normalizer | step | " + (1...max(1, layers)).map { "conv \($0)" }.joined(separator: " | ") + " |")
            lines.append("|---|---|" + String(repeating: "---|", count: max(1, layers)))
            for row in table.rows where !row.cells[column].finished.isEmpty {
                let runs = row.cells[column].finished.map(\.result.recordings)
                for (name, norms) in [("first", runs.map { $0.firstStepGradientNorms ?? [] }),
                                      ("last epoch", runs.map { $0.gradientNorms?.last ?? [] })] {
                    let cells = (0..<max(1, layers)).map { layer -> String in
                        let values = norms.compactMap { layer < $0.count ? $0[layer] : nil }
                        return Statistics.mean(values).map { String(format: "%.3g", $0) } ?? "–"
                    }
                    lines.append("| \(row.name) | \(name) | " + cells.joined(separator: " | ") + " |")
                }
            }
            lines.append("")
        }
        return lines
    }

    private static func columnTitle(_ table: ResultTable, _ value: Double) -> String {
        table.axis == .batchSize ? "batch \(Statistics.format(value))" : "\(table.axis.rawValue) \(Statistics.format(value))"
    }

    private static func driftSection(_ table: ResultTable) -> [String] {
        let slots = table.records.compactMap { $0.result.recordings.activationDrift?.mean.first?.count }.max() ?? 0
        let epochs = table.records.compactMap { $0.result.recordings.activationDrift?.meanChange.count }.max() ?? 0
        let shown = Array(Set([0, epochs / 2, epochs - 1].filter { $0 >= 0 })).sorted()
        var lines = [
            "## Activation drift per norm slot",
            "",
            "How far each norm slot's input (a convolution's output; slot 1 is the first) moved over an epoch, on a fixed probe of \(ActivationDrift.probeImages) training images in inference mode: the mean over channels of |Δmean| / σ, then of |Δσ| / σ, σ the channel's standard deviation at the epoch before (mean over seeds). 0 is a distribution that did not move; 1 a mean that moved by a whole standard deviation.",
            "",
        ]
        for (column, value) in table.columns.enumerated() {
            lines += ["### " + columnTitle(table, value), ""]
            lines.append("| normalizer | epoch | " + (1...max(1, slots)).map { "slot \($0)" }.joined(separator: " | ") + " |")
            lines.append("|---|---|" + String(repeating: "---|", count: max(1, slots)))
            for row in table.rows where !row.cells[column].finished.isEmpty {
                let drifts = row.cells[column].finished.compactMap(\.result.recordings.activationDrift)
                for epoch in shown {
                    let cells = (0..<max(1, slots)).map { slot -> String in
                        func mean(_ changes: KeyPath<ActivationDrift, [[Double?]]>) -> Double? {
                            Statistics.mean(drifts.compactMap { drift in
                                let values = drift[keyPath: changes]
                                return epoch < values.count && slot < values[epoch].count ? values[epoch][slot] : nil
                            })
                        }
                        guard let meanChange = mean(\.meanChange), let stdChange = mean(\.stdChange) else { return "–" }
                        return String(format: "%.3g / %.3g", meanChange, stdChange)
                    }
                    lines.append("| \(row.name) | \(epoch + 1) | " + cells.joined(separator: " | ") + " |")
                }
            }
            lines.append("")
        }
        return lines
    }

    private static func shiftSection(_ table: ResultTable) -> [String] {
        let shifts = InputShift.defaultsOrder(of: table.records.compactMap(\.result.recordings.shiftedAccuracy).first ?? [:])
        var lines = [
            "## Accuracy on shifted test sets",
            "",
            "Test accuracy (%, mean ± std over seeds) on the test set with each image's contrast reduced (x' = m + c·(x − m), m its mean), brightened (x' = min(1, x + b)) or with Gaussian noise added (x' = clamp(x + σz, 0, 1)), pixel values in [0, 1]. For the normalizers with running statistics, a second row: after re-estimating them on the first \(Recording.reestimationImages) shifted test images (as PreciseBN, batches of \(Recording.reestimationBatchSize), no labels).",
            "",
        ]
        for (column, value) in table.columns.enumerated() {
            lines += ["### " + columnTitle(table, value), ""]
            lines.append("| normalizer | statistics | clean | " + shifts.map { "\($0.0) \($0.1)" }.joined(separator: " | ") + " |")
            lines.append("|---|---|---|" + String(repeating: "---|", count: shifts.count))
            for row in table.rows where !row.cells[column].finished.isEmpty {
                let runs = row.cells[column].finished
                let clean = meanText(runs.compactMap(\.result.testAccuracy))
                for (name, tables) in [("training", runs.compactMap(\.result.recordings.shiftedAccuracy)),
                                       ("re-estimated", runs.compactMap(\.result.recordings.shiftedAccuracyReestimated))] where !tables.isEmpty {
                    let cells = shifts.map { family, level, _ in meanText(tables.compactMap { $0[family]?[level] }) }
                    lines.append("| \(row.name) | \(name) | \(name == "training" ? clean : "") | " + cells.joined(separator: " | ") + " |")
                }
            }
            lines.append("")
        }
        return lines
    }

    private static func batchMatesSection(_ table: ResultTable) -> [String] {
        let sizes = BatchDependence.batchSizes.map(String.init)
        var lines = [
            "## Dependence on the batch mates",
            "",
            "The trained network in training mode, each of the first \(BatchDependence.samples) test images beside \(BatchDependence.draws) random sets of B − 1 training images: the standard deviation of its logits over the sets (averaged over classes and images), and the share of sets that changed its predicted class from the one predicted most often (mean over seeds). 0 means the output is the sample's own.",
            "",
        ]
        for (column, value) in table.columns.enumerated() {
            lines += ["### Trained at " + columnTitle(table, value), ""]
            lines.append("| normalizer | " + sizes.map { "B = \($0): logit std | B = \($0): predictions changed (%)" }.joined(separator: " | ") + " |")
            lines.append("|---|" + String(repeating: "---|", count: 2 * sizes.count))
            for row in table.rows where !row.cells[column].finished.isEmpty {
                let measured = row.cells[column].finished.compactMap(\.result.recordings.batchDependence)
                let cells = sizes.flatMap { size in
                    [meanText(measured.compactMap { $0[size]?.logitStd }, scale: 1, format: "%.3f"),
                     meanText(measured.compactMap { $0[size]?.predictionChanges }, format: "%.1f")]
                }
                lines.append("| \(row.name) | " + cells.joined(separator: " | ") + " |")
            }
            lines.append("")
        }
        return lines
    }
}
