import Foundation

/// Learning curves as line charts: test error at the end of each epoch, one line per row (the
/// mean over its finished runs), one chart per model and column of a table whose runs recorded
/// curves (`curve`).
public enum CurveChart {
    public struct Chart: Sendable {
        public var file: String
        public var model: String
        public var column: Double
        public var svg: String
    }

    /// The charts of `table`, their files named after `base` (`convergence` →
    /// `convergence-curves-smallcnn-batch8.svg`; without the model when the table has one).
    public static func charts(_ table: ResultTable, base: String) -> [Chart] {
        let models = table.rows.map(\.model).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var charts: [Chart] = []
        for (column, value) in table.columns.enumerated() {
            for model in models {
                let rows = table.rows.filter { $0.model == model }.compactMap { row -> (name: String, errors: [Double])? in
                    let curves = row.cells[column].finished.compactMap(\.result.recordings.curve)
                    guard let epochs = curves.map(\.count).max(), epochs > 0 else { return nil }
                    let errors = (0..<epochs).map { epoch -> Double in
                        let values = curves.compactMap { epoch < $0.count ? 100 * (1 - $0[epoch].testAccuracy) : nil }
                        return values.reduce(0, +) / Double(values.count)
                    }
                    return (models.count > 1 ? row.name.replacingOccurrences(of: "\(model) · ", with: "") : row.name, errors)
                }
                guard !rows.isEmpty else { continue }
                let axis = table.axis == .batchSize ? "batch" : table.axis.rawValue
                let file = "\(base)-curves\(models.count > 1 ? "-\(model)" : "")-\(axis.replacingOccurrences(of: " ", with: "-"))\(Statistics.format(value)).svg"
                let title = "\(base): \(model), \(axis) \(Statistics.format(value)), test error per epoch"
                charts.append(Chart(file: file, model: model, column: value, svg: render(rows, title: title)))
            }
        }
        return charts
    }

    static func render(_ rows: [(name: String, errors: [Double])], title: String) -> String {
        let (width, height) = (760.0, 460.0)
        let plot = (left: 70.0, right: 540.0, top: 50.0, bottom: 400.0)
        let epochs = rows.map(\.errors.count).max() ?? 1
        let all = rows.flatMap(\.errors).filter(\.isFinite)
        // Runs at chance would squash the rest: beyond the bulk, points sit on the top edge.
        let cap = SVGChart.outlierCap(all)
        let inRange = all.filter { $0 <= cap }
        let (low, high) = (inRange.min() ?? 0, max(inRange.max() ?? 10, (inRange.min() ?? 0) + 1))
        let step = SVGChart.niceCeiling((high - low) * 1.2 / 5)
        let yMin = max(0, (low / step).rounded(.down) * step)
        let yMax = max((high / step).rounded(.up) * step, yMin + step)
        func x(_ epoch: Int) -> Double { plot.left + Double(epoch - 1) / Double(max(1, epochs - 1)) * (plot.right - plot.left) }
        func y(_ value: Double) -> Double { plot.bottom - (min(value, yMax) - yMin) / (yMax - yMin) * (plot.bottom - plot.top) }
        var svg = SVGChart.header(width: width, height: height, title: title, left: plot.left)
        var tick = yMin
        while tick <= yMax + step / 2 {
            svg.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>", plot.left, y(tick), plot.right, y(tick)))
            svg.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", plot.left - 8, y(tick) + 4) + Statistics.format((tick * 10).rounded() / 10) + "</text>")
            tick += step
        }
        let labelEvery = max(1, (epochs + 9) / 10)
        for epoch in 1...epochs where epoch % labelEvery == 0 || epoch == 1 {
            svg.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>", x(epoch), plot.bottom, x(epoch), plot.bottom + 5))
            svg.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">\(epoch)</text>", x(epoch), plot.bottom + 20))
        }
        svg.append("<line x1=\"\(plot.left)\" y1=\"\(plot.bottom)\" x2=\"\(plot.right)\" y2=\"\(plot.bottom)\" stroke=\"black\"/>")
        svg.append("<line x1=\"\(plot.left)\" y1=\"\(plot.top)\" x2=\"\(plot.left)\" y2=\"\(plot.bottom)\" stroke=\"black\"/>")
        svg.append("<text x=\"\((plot.left + plot.right) / 2)\" y=\"\(plot.bottom + 42)\" text-anchor=\"middle\">epoch</text>")
        svg.append("<text transform=\"translate(22 \((plot.top + plot.bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">test error (%)</text>")
        for (index, row) in rows.enumerated() {
            let color = SVGChart.palette[index % SVGChart.palette.count]
            // Past the palette's ten colours, the lines are dashed.
            let dash = index >= SVGChart.palette.count ? " stroke-dasharray=\"6 3\"" : ""
            let points = row.errors.enumerated().filter { $0.element.isFinite }.map { (x: x($0.offset + 1), y: y($0.element)) }
            if points.count > 1 {
                let path = points.map { String(format: "%.1f,%.1f", $0.x, $0.y) }.joined(separator: " ")
                svg.append("<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>")
            }
            for point in points { svg.append(String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"/>", point.x, point.y, color)) }
            let legendY = plot.top + 8 + Double(index) * 20
            svg.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"2\"\(dash)/>", plot.right + 20, legendY, plot.right + 44, legendY, color))
            // A line above the scale runs along its top edge; its legend says how high it is.
            let above = row.errors.filter { $0 > yMax }.max().map { String(format: " (up to %.0f%%)", $0) } ?? ""
            svg.append(String(format: "<text x=\"%.1f\" y=\"%.1f\">", plot.right + 52, legendY + 4) + SVGChart.escape(row.name + above) + "</text>")
        }
        if all.contains(where: { $0 > yMax }) {
            svg.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">top edge: above the scale</text>", plot.right + 20, plot.top + 16 + Double(rows.count) * 20))
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }
}
