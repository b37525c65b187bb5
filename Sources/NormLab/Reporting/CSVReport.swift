/// Test error per cell in long form, one line per (row, column), for pandas or a spreadsheet:
/// mean and standard deviation over seeds, median and range, each run's error in seed order
/// (`;`-separated), and whether the cell is split (its runs too far apart for a mean to describe).
public enum CSVReport {
    public static func render(_ table: ResultTable) -> String {
        let axis = [ResultTable.Axis.batchSize: "batch_size", .learningRate: "base_lr", .depth: "depth"][table.axis]!
        var lines = ["row,label,model,normalizer,placement,\(axis),runs,diverged,test_error_mean,test_error_std,precise_bn_error_mean,precise_bn_error_std,test_error_median,test_error_min,test_error_max,test_errors,split"]
        func number(_ value: Double?) -> String { value.map { String(format: "%.4f", 100 * $0) } ?? "" }
        for row in table.rows {
            for (column, cell) in row.cells.enumerated() where cell.runs > 0 {
                let fields = [
                    quote(row.name), quote(row.label), quote(row.model), row.kind.rawValue, row.placement.rawValue,
                    Statistics.format(table.columns[column]), String(cell.runs), String(cell.diverged),
                    number(cell.mean.map { 1 - $0 }), number(cell.std), number(cell.preciseMean.map { 1 - $0 }),
                    number(cell.preciseStd), number(cell.median.map { 1 - $0 }), number(cell.accuracies.max().map { 1 - $0 }),
                    number(cell.accuracies.min().map { 1 - $0 }),
                    cell.accuracies.map { number(1 - $0) }.joined(separator: ";"), cell.split ? "true" : "false",
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
