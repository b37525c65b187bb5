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
        /// Test accuracies of the runs that did not diverge, in seed order.
        public var accuracies: [Double] = []
        /// The records of those runs, in seed order (what they recorded on request).
        public var finished: [RunRecord] = []
        public var preciseAccuracies: [Double] = []
        public var diverged = 0
        public var runs = 0
        /// Whether the runs ended so far apart that no mean describes them (`ResultTable.splits`).
        public var split = false
        public var preciseSplit = false

        public var mean: Double? { Statistics.mean(accuracies) }
        public var std: Double? { Statistics.standardDeviation(accuracies) }
        public var median: Double? { Statistics.median(accuracies) }
        public var preciseMean: Double? { Statistics.mean(preciseAccuracies) }
        public var preciseStd: Double? { Statistics.standardDeviation(preciseAccuracies) }
        /// The mean, unless the cell is split: what a comparison across cells may use.
        public var summaryMean: Double? { split ? nil : mean }
    }

    /// What the comparison of a column's cells found.
    public enum ColumnVerdict: Equatable, Sendable {
        /// This row's mean beats every other row's by more than the noise.
        case best(Int)
        /// The row with the highest mean, then the rows that cannot be told apart from it.
        case tied([Int])
        /// Nothing to say: fewer than two rows with results, or one run in the top cell.
        case undecided
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
    /// The median standard deviation over seeds of the cells with two or more runs: the
    /// table's typical noise, against which a split cell's spread is judged.
    public var typicalSpread: Double?
    /// Ten classes: the accuracy of a constant guess.
    public static let chanceAccuracy = 0.1

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
        // Options some runs set: every row of such a table names its own value.
        let showsInitScale = records.contains { $0.spec.initScale != nil }
        let showsClasses = records.contains { $0.spec.classesPerBatch != nil }
        func variant(_ spec: RunSpec) -> String {
            var parts: [String] = []
            if showsInitScale { parts.append("init ×\(Statistics.format(Double(spec.initScale ?? 1)))") }
            if showsClasses {
                parts.append(spec.classesPerBatch.map { "\($0) \($0 == 1 ? "class" : "classes") per batch" } ?? "shuffled batches")
            }
            return parts.joined(separator: ", ")
        }
        // Rows in the order their first runs appear (the experiment file's order).
        var keys: [String] = []
        var rowsByKey: [String: Row] = [:]
        struct CellKey: Hashable { var row: String, column: Int }
        var finishedRuns: [CellKey: [RunRecord]] = [:]
        for record in records {
            let spec = record.spec
            let other = otherValues.count > 1 ? otherValue(spec) : nil
            let key = "\(model(spec))|\(spec.label)|\(spec.placement.rawValue)|\(other.map { "\($0)" } ?? "")|\(spec.variant)"
            if rowsByKey[key] == nil {
                // A default label reads as the method's name: "group norm", "group norm + WS".
                let standardized = spec.weightStandardization == true
                let defaultLabel = spec.normalizer.rawValue + (standardized ? "+ws" : "")
                var name = spec.label == defaultLabel ? spec.normalizer.displayName + (standardized ? " + WS" : "") : spec.label
                if models.count > 1 { name = "\(model(spec)) · \(name)" }
                if placements.count > 1 { name += spec.placement == .before ? " (before ReLU)" : " (after ReLU)" }
                if !variant(spec).isEmpty { name += " (\(variant(spec)))" }
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
                finishedRuns[CellKey(row: key, column: column), default: []].append(record)
            }
            rowsByKey[key]!.cells[column] = cell
        }
        rows = keys.map { rowsByKey[$0]! }
        // Accuracies in seed order, whatever order the runs finished in.
        for (cellKey, runs) in finishedRuns {
            let sorted = runs.sorted { $0.spec.seed < $1.spec.seed }
            let (row, column) = (keys.firstIndex(of: cellKey.row)!, cellKey.column)
            rows[row].cells[column].finished = sorted
            rows[row].cells[column].accuracies = sorted.compactMap(\.result.testAccuracy)
            rows[row].cells[column].preciseAccuracies = sorted.compactMap(\.result.preciseBNAccuracy)
        }
        typicalSpread = Statistics.median(rows.flatMap { $0.cells.compactMap(\.std) })
        for row in rows.indices {
            for column in columns.indices {
                rows[row].cells[column].split = Self.splits(rows[row].cells[column].accuracies, typicalSpread: typicalSpread)
                rows[row].cells[column].preciseSplit = Self.splits(rows[row].cells[column].preciseAccuracies, typicalSpread: typicalSpread)
            }
        }
    }

    /// Whether runs of one cell ended so far apart that a mean and standard deviation would
    /// describe none of them: a run at chance beside a run that learned (20 points above chance or
    /// more), or a standard deviation above 3 points and above five times the table's typical one.
    public static func splits(_ accuracies: [Double], typicalSpread: Double?) -> Bool {
        guard accuracies.count > 1, let low = accuracies.min(), let high = accuracies.max(),
              let std = Statistics.standardDeviation(accuracies) else { return false }
        if low <= chanceAccuracy + 0.01 && high >= chanceAccuracy + 0.2 { return true }
        return std > max(0.03, 5 * (typicalSpread ?? 0))
    }

    /// For each column: the best row when it beats every other by more than the noise (Welch's
    /// t-test over seeds, two-sided, at `Statistics.significanceLevel`), else the rows tied for
    /// best. Split cells take part with all their runs: their spread makes them hard to beat.
    public var verdicts: [ColumnVerdict] {
        columns.indices.map { column in
            let candidates = rows.indices.filter { rows[$0].cells[column].mean != nil }
            func mean(_ row: Int) -> Double { rows[row].cells[column].mean! }
            guard candidates.count > 1, let top = candidates.max(by: { mean($0) < mean($1) }),
                  rows[top].cells[column].accuracies.count > 1 else { return .undecided }
            let topRuns = rows[top].cells[column].accuracies
            let tied = candidates.filter { row in
                guard row != top else { return false }
                guard let p = Statistics.welchPValue(topRuns, rows[row].cells[column].accuracies) else { return true }
                return p >= Statistics.significanceLevel
            }.sorted { mean($0) > mean($1) }
            return tied.isEmpty ? .best(top) : .tied([top] + tied)
        }
    }

    /// The depth D of `resnet-D` or `plain-D`; nil for other models.
    static func depth(of model: String) -> Int? {
        (try? ModelSettings(name: model))?.architecture.tableDepth
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

    /// A row's best column by mean accuracy, and the drop from it to the smallest column
    /// (in accuracy, a fraction): how much the row loses as the batch shrinks. Split cells have
    /// no mean to compare.
    public func dropToSmallest(_ row: Row) -> (bestColumn: Int, drop: Double)? {
        guard axis == .batchSize, let smallest = row.cells.first?.summaryMean else { return nil }
        let means = row.cells.map(\.summaryMean)
        guard let best = means.indices.filter({ means[$0] != nil }).max(by: { means[$0]! < means[$1]! }) else { return nil }
        return (best, means[best]! - smallest)
    }
}
