import Foundation

/// Results aggregated over seeds: one row per normalizer variant (and model, when there are
/// several), one column per value of the swept axis: batch size; learning rate when the batch
/// size is fixed; depth when a fixed batch size and rate train resnet-D or plain-D of several
/// depths.
public struct ResultTable: Sendable {
    /// What the columns sweep.
    public enum Axis: String, Sendable {
        case batchSize = "batch size"
        case learningRate = "base learning rate"
        case depth = "depth"
    }

    /// The runs that share a row and a column (the seeds).
    public struct Cell: Sendable {
        public var accuracies: [Double] = []
        public var preciseAccuracies: [Double] = []
        public var diverged = 0
        public var runs = 0

        public var mean: Double? { Statistics.mean(accuracies) }
        public var std: Double? { Statistics.standardDeviation(accuracies) }
        public var preciseMean: Double? { Statistics.mean(preciseAccuracies) }
        public var preciseStd: Double? { Statistics.standardDeviation(preciseAccuracies) }
    }

    public struct Row: Sendable {
        /// What the row is, for tables and legends ("batch norm", "group norm (norm after ReLU)").
        public var name: String
        public var label: String
        /// The model, or on the depth axis the model family (`resnet`, `plain`).
        public var model: String
        public var kind: NormalizerKind
        public var placement: NormalizerPlacement
        /// The fixed value of the other axis when the experiment sweeps both.
        public var otherAxisValue: Double?
        /// Cells by column index; empty cells have no runs.
        public var cells: [Cell]
    }

    public var axis: Axis
    /// The column values, ascending.
    public var columns: [Double]
    public var rows: [Row]
    public var records: [RunRecord]

    /// Groups `records` (one experiment's results) into rows and columns. A record repeated in
    /// the file counts once.
    public init(records input: [RunRecord]) {
        var records: [RunRecord] = []
        for record in input where !records.contains(where: { $0.spec == record.spec }) { records.append(record) }
        self.records = records
        let batchSizes = Set(records.map(\.spec.batchSize))
        let rates = Set(records.map(\.spec.baseLearningRate))
        let depths = Set(records.map { Self.depth(of: $0.spec.model) })
        if batchSizes.count == 1 && rates.count == 1 && depths.count > 1 && !depths.contains(nil) {
            axis = .depth
        } else {
            axis = batchSizes.count == 1 && rates.count > 1 ? .learningRate : .batchSize
        }
        let axis = self.axis
        func columnValue(_ spec: RunSpec) -> Double {
            switch axis {
            case .batchSize: return Double(spec.batchSize)
            case .learningRate: return Double(spec.baseLearningRate)
            case .depth: return Double(Self.depth(of: spec.model)!)
            }
        }
        func otherValue(_ spec: RunSpec) -> Double {
            axis == .learningRate ? Double(spec.batchSize) : Double(spec.baseLearningRate)
        }
        func model(_ spec: RunSpec) -> String {
            axis == .depth ? String(spec.model.prefix { $0 != "-" }) : spec.model
        }
        let models = Set(records.map { model($0.spec) })
        columns = Set(records.map { columnValue($0.spec) }).sorted()
        let placements = Set(records.map(\.spec.placement))
        let otherValues = Set(records.map { otherValue($0.spec) })
        // Rows in the order their first runs appear (the experiment file's order).
        var keys: [String] = []
        var rowsByKey: [String: Row] = [:]
        for record in records {
            let spec = record.spec
            let other = otherValues.count > 1 ? otherValue(spec) : nil
            let key = "\(model(spec))|\(spec.label)|\(spec.placement.rawValue)|\(other.map { "\($0)" } ?? "")"
            if rowsByKey[key] == nil {
                var name = spec.label == spec.normalizer.rawValue ? spec.normalizer.displayName : spec.label
                if models.count > 1 { name = "\(model(spec)) · \(name)" }
                if placements.count > 1 { name += spec.placement == .before ? " (before ReLU)" : " (after ReLU)" }
                if let other { name += axis == .batchSize ? " (lr \(Statistics.format(other)))" : " (batch \(Int(other)))" }
                keys.append(key)
                rowsByKey[key] = Row(
                    name: name, label: spec.label, model: model(spec), kind: spec.normalizer, placement: spec.placement,
                    otherAxisValue: other, cells: Array(repeating: Cell(), count: columns.count))
            }
            let column = columns.firstIndex(of: columnValue(spec))!
            var cell = rowsByKey[key]!.cells[column]
            cell.runs += 1
            if record.result.diverged {
                cell.diverged += 1
            } else {
                if let accuracy = record.result.testAccuracy { cell.accuracies.append(accuracy) }
                if let precise = record.result.preciseBNAccuracy { cell.preciseAccuracies.append(precise) }
            }
            rowsByKey[key]!.cells[column] = cell
        }
        rows = keys.map { rowsByKey[$0]! }
    }

    /// The depth D of `resnet-D` or `plain-D`; nil for other models.
    static func depth(of model: String) -> Int? {
        guard let settings = try? ModelSettings(name: model), case .resNet(let depth, _) = settings.architecture else { return nil }
        return depth
    }

    /// The models of the records, in order of appearance: "resnet-8", or "resnet-D and plain-D"
    /// on the depth axis.
    public var modelNames: String {
        var names: [String] = []
        for record in records {
            let name = axis == .depth ? String(record.spec.model.prefix { $0 != "-" }) + "-D" : record.spec.model
            if !names.contains(name) { names.append(name) }
        }
        return names.count <= 2 ? names.joined(separator: " and ") : names.dropLast().joined(separator: ", ") + " and " + names.last!
    }

    /// The data the records trained on, by name.
    public var dataName: String {
        guard let data = records.first?.spec.data else { return "" }
        if data == "embedded" { return "Fashion-MNIST" }
        return CIFAR10.batchesDirectory(in: data) != nil ? "CIFAR-10" : "Fashion-MNIST"
    }

    /// For each column, the index of the row with the highest mean accuracy.
    public var bestRowPerColumn: [Int?] {
        columns.indices.map { column in
            rows.indices.filter { rows[$0].cells[column].mean != nil }
                .max { rows[$0].cells[column].mean! < rows[$1].cells[column].mean! }
        }
    }

    /// A row's best column by mean accuracy, and the drop from it to the smallest column
    /// (in accuracy, a fraction): how much the row loses as the batch shrinks.
    public func dropToSmallest(_ row: Row) -> (bestColumn: Int, drop: Double)? {
        guard axis == .batchSize, let smallest = row.cells.first?.mean else { return nil }
        guard let best = row.cells.indices.filter({ row.cells[$0].mean != nil }).max(by: { row.cells[$0].mean! < row.cells[$1].mean! })
        else { return nil }
        return (best, row.cells[best].mean! - smallest)
    }
}

/// Small statistics helpers for the reports.
public enum Statistics {
    public static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// The sample standard deviation (n - 1); nil for fewer than two values.
    public static func standardDeviation(_ values: [Double]) -> Double? {
        guard values.count > 1, let mean = mean(values) else { return nil }
        return (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
    }

    /// 0.05 → "0.05", 32 → "32", 0.0125 → "0.0125".
    public static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e9 { return String(Int(value)) }
        var text = String(format: "%.6f", value)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }
}
