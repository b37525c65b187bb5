import Foundation

/// Test error against the swept axis on a log-2 scale, one line per row, with a bar over each
/// point from its best to its worst seed: the lab's version of Figure 1 of the group norm paper.
/// A split cell (`ResultTable.Cell.split`) is drawn at its median, as a hollow point.
public enum SVGChart {
    static let palette = ["#4e79a7", "#e15759", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"]

    public static func render(_ table: ResultTable, title: String) -> String {
        let (width, height) = (760.0, 460.0)
        let plot = (left: 70.0, right: 560.0, top: 50.0, bottom: 400.0)
        let xs = table.columns.map { table.axis == .depth ? $0 : log2($0) }
        /// A cell's point: its mean, or its median when split.
        func center(_ cell: ResultTable.Cell) -> Double? { cell.split ? cell.median : cell.mean }
        let errors = table.rows.flatMap { $0.cells.compactMap { center($0).map { 100 * (1 - $0) } } }.filter(\.isFinite)
        // A y range around the data, in round steps, so that differences of a point show. A few
        // far-off points (runs that never learned) would squash the rest: they are drawn at the
        // top edge with their value instead.
        let cap = outlierCap(errors)
        let inRange = errors.filter { $0 <= cap }
        let (low, high) = (inRange.min() ?? 0, max(inRange.max() ?? 10, (inRange.min() ?? 0) + 1))
        let step = niceCeiling((high - low) * 1.2 / 5)
        let yMin = max(0, (low - 0.1 * (high - low)) / step).rounded(.down) * step
        let yMax = yMin + 5 * step >= high ? yMin + 5 * step : (high / step).rounded(.up) * step
        let tickCount = Int(((yMax - yMin) / step).rounded())
        let xMin = xs.first ?? 0, xMax = max(xs.last ?? 1, xMin + 1)
        func x(_ value: Double) -> Double { plot.left + (value - xMin) / (xMax - xMin) * (plot.right - plot.left) }
        func y(_ value: Double) -> Double { plot.bottom - (value - yMin) / (yMax - yMin) * (plot.bottom - plot.top) }
        var svg = header(width: width, height: height, title: title, left: plot.left)
        // Grid and y ticks.
        for tick in 0...tickCount {
            let value = yMin + Double(tick) * step
            svg.append("<line x1=\"\(plot.left)\" y1=\"\(y(value))\" x2=\"\(plot.right)\" y2=\"\(y(value))\" stroke=\"#e5e5e5\"/>")
            svg.append("<text x=\"\(plot.left - 8)\" y=\"\(y(value) + 4)\" text-anchor=\"end\">\(Statistics.format((value * 10).rounded() / 10))</text>")
        }
        for (index, value) in table.columns.enumerated() {
            svg.append("<line x1=\"\(x(xs[index]))\" y1=\"\(plot.bottom)\" x2=\"\(x(xs[index]))\" y2=\"\(plot.bottom + 5)\" stroke=\"black\"/>")
            svg.append("<text x=\"\(x(xs[index]))\" y=\"\(plot.bottom + 20)\" text-anchor=\"middle\">\(Statistics.format(value))</text>")
        }
        svg.append("<line x1=\"\(plot.left)\" y1=\"\(plot.bottom)\" x2=\"\(plot.right)\" y2=\"\(plot.bottom)\" stroke=\"black\"/>")
        svg.append("<line x1=\"\(plot.left)\" y1=\"\(plot.top)\" x2=\"\(plot.left)\" y2=\"\(plot.bottom)\" stroke=\"black\"/>")
        svg.append("<text x=\"\((plot.left + plot.right) / 2)\" y=\"\(plot.bottom + 42)\" text-anchor=\"middle\">\(table.axis.rawValue)\(table.axis == .depth ? "" : " (log scale)")</text>")
        svg.append("<text transform=\"translate(22 \((plot.top + plot.bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">test error (%)</text>")
        // One line per row; missing or diverged cells break nothing, they are simply not drawn.
        for (index, row) in table.rows.enumerated() {
            let color = palette[index % palette.count]
            let points = row.cells.enumerated().compactMap { column, cell in
                center(cell).map { (x: x(xs[column]), y: y(min(100 * (1 - $0), yMax)), split: cell.split) }
            }
            if points.count > 1 {
                let path = points.map { String(format: "%.1f,%.1f", $0.x, $0.y) }.joined(separator: " ")
                svg.append("<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>")
            }
            // The spread over seeds: a bar from the best run's error to the worst's.
            for (column, cell) in row.cells.enumerated() {
                guard cell.accuracies.count > 1, let best = cell.accuracies.max(), let worst = cell.accuracies.min() else { continue }
                let (top, bottom) = (y(min(100 * (1 - worst), yMax)), y(max(100 * (1 - best), yMin)))
                guard bottom - top >= 1 else { continue }
                let px = x(xs[column])
                svg.append(String(format: "<path d=\"M%.1f,%.1f V%.1f M%.1f,%.1f h6 M%.1f,%.1f h6\" stroke=\"%@\" stroke-width=\"1\" opacity=\"0.7\"/>",
                                  px, top, bottom, px - 3, top, px - 3, bottom, color))
            }
            for point in points {
                svg.append(point.split
                    ? String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"white\" stroke=\"%@\" stroke-width=\"2\"/>", point.x, point.y, color)
                    : String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%@\"/>", point.x, point.y, color))
            }
            for (column, cell) in row.cells.enumerated() {
                guard let mean = center(cell), 100 * (1 - mean) > yMax else { continue }
                let (px, value) = (x(xs[column]), 100 * (1 - mean))
                svg.append(String(format: "<path d=\"M%.1f,%.1f l-5,9 h10 z\" fill=\"%@\"/>", px, plot.top - 4, color))
                svg.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%@\">%.1f</text>", px, plot.top - 9, color, value))
            }
            for (column, cell) in row.cells.enumerated() where cell.mean == nil && cell.diverged > 0 {
                svg.append("<text x=\"\(x(xs[column]))\" y=\"\(plot.top + 12)\" text-anchor=\"middle\" fill=\"\(color)\">×</text>")
            }
            let legendY = plot.top + 10 + Double(index) * 22
            svg.append("<line x1=\"\(plot.right + 20)\" y1=\"\(legendY)\" x2=\"\(plot.right + 44)\" y2=\"\(legendY)\" stroke=\"\(color)\" stroke-width=\"2\"/>")
            svg.append("<circle cx=\"\(plot.right + 32)\" cy=\"\(legendY)\" r=\"3.5\" fill=\"\(color)\"/>")
            svg.append("<text x=\"\(plot.right + 52)\" y=\"\(legendY + 4)\">\(escape(row.name))</text>")
        }
        // Notes under the legend, each line with its indent.
        var notes: [(text: String, indent: Double)] = []
        if table.rows.contains(where: { $0.cells.contains { $0.accuracies.count > 1 } }) {
            notes += [("bars: best to worst", 0), ("seed", 14)]
        }
        if table.rows.contains(where: { $0.cells.contains(where: \.split) }) {
            notes += [("○ split cell: its runs", 0), ("far apart; the median", 14)]
        }
        if errors.contains(where: { $0 > yMax }) { notes += [("▲ off the scale,", 0), ("value above it", 14)] }
        if table.rows.contains(where: { $0.cells.contains { $0.mean == nil && $0.diverged > 0 } }) {
            notes += [("× at the top: every", 0), ("run diverged", 14)]
        }
        for (index, note) in notes.enumerated() {
            svg.append("<text x=\"\(plot.right + 20 + note.indent)\" y=\"\(plot.top + 20 + Double(table.rows.count + index) * 22)\" fill=\"#555\">\(note.text)</text>")
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// The largest error the y axis must show: everything, unless at most a fifth of the points
    /// lie beyond the bulk (more than three times the lower quartile-to-upper quartile spread
    /// above the upper quartile), which are then left off the scale.
    static func outlierCap(_ errors: [Double]) -> Double {
        let sorted = errors.sorted()
        guard sorted.count >= 5, let largest = sorted.last else { return errors.max() ?? 0 }
        let lowerQuartile = sorted[sorted.count / 4], upperQuartile = sorted[(3 * sorted.count) / 4]
        let cap = upperQuartile + 3 * max(upperQuartile - lowerQuartile, 1)
        let beyond = sorted.filter { $0 > cap }.count
        return beyond > 0 && beyond * 5 <= sorted.count ? cap : largest
    }

    /// 1, 2 or 5 times a power of ten, at least `value`.
    static func niceCeiling(_ value: Double) -> Double {
        let magnitude = pow(10, floor(log10(value)))
        for factor in [1.0, 2.0, 2.5, 5.0, 10.0] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }

    /// The opening of a chart: its size, a white background and its title.
    static func header(width: Double, height: Double, title: String, left: Double) -> [String] {
        [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"13\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(left)\" y=\"28\" font-size=\"16\" font-weight=\"bold\">\(escape(title))</text>",
        ]
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
