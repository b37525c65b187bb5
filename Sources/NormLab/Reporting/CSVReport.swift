/// Test error per cell in long form, one line per (row, column), for pandas or a spreadsheet.
public enum CSVReport {
    public static func render(_ table: ResultTable) -> String {
        let axis = [ResultTable.Axis.batchSize: "batch_size", .learningRate: "base_lr", .depth: "depth"][table.axis]!
        var lines = ["row,label,model,normalizer,placement,\(axis),runs,diverged,test_error_mean,test_error_std,precise_bn_error_mean,precise_bn_error_std"]
        func number(_ value: Double?) -> String { value.map { String(format: "%.4f", 100 * $0) } ?? "" }
        for row in table.rows {
            for (column, cell) in row.cells.enumerated() where cell.runs > 0 {
                let fields = [
                    quote(row.name), quote(row.label), quote(row.model), row.kind.rawValue, row.placement.rawValue,
                    Statistics.format(table.columns[column]), String(cell.runs), String(cell.diverged),
                    number(cell.mean.map { 1 - $0 }), number(cell.std), number(cell.preciseMean.map { 1 - $0 }),
                    number(cell.preciseStd),
                ]
                lines.append(fields.joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func quote(_ text: String) -> String {
        text.contains(",") || text.contains("\"") ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}
