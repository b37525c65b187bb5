import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import NormLab

/// Aggregation over seeds, diverged runs, and the three report formats.
final class ReportTests: XCTestCase {
    private func record(
        _ kind: NormalizerKind, batch: Int, seed: UInt64, accuracy: Double?, precise: Double? = nil, model: String = "smallcnn"
    ) -> RunRecord {
        let spec = RunSpec(
            experiment: "synthetic", model: try! ModelSettings(name: model), label: kind.rawValue, normalizer: NormalizerSettings(kind: kind), renormSchedule: nil,
            placement: .before, batchSize: batch, epochs: 1, baseLearningRate: 0.05, learningRate: 0.05 * Float(batch) / 32,
            learningRateScaling: "linear", weightDecay: 5e-4, sgdMomentum: 0.9, seed: seed, data: "embedded", trainSize: 100)
        let result = RunResult(
            testAccuracy: accuracy, preciseBNAccuracy: precise, finalLoss: accuracy == nil ? nil : 0.5,
            diverged: accuracy == nil, divergedAtStep: accuracy == nil ? 3 : nil, steps: 10, seconds: 1,
            imagesPerSecond: 100, threads: 2, commit: "abc", finishedAt: "2026-11-23T00:00:00Z")
        return RunRecord(spec: spec, result: result)
    }

    private var records: [RunRecord] {
        [
            record(.batch, batch: 2, seed: 0, accuracy: 0.80, precise: 0.84),
            record(.batch, batch: 2, seed: 1, accuracy: 0.82, precise: 0.86),
            record(.batch, batch: 32, seed: 0, accuracy: 0.90, precise: 0.90),
            record(.batch, batch: 32, seed: 1, accuracy: 0.92, precise: 0.91),
            record(.group, batch: 2, seed: 0, accuracy: 0.88),
            record(.group, batch: 2, seed: 1, accuracy: nil),
            record(.group, batch: 32, seed: 0, accuracy: 0.89),
            record(.group, batch: 32, seed: 1, accuracy: 0.89),
            record(.none, batch: 2, seed: 0, accuracy: nil),
            record(.none, batch: 2, seed: 1, accuracy: nil),
            record(.none, batch: 32, seed: 0, accuracy: 0.85),
            record(.none, batch: 32, seed: 0, accuracy: 0.85),  // a repeated line counts once
        ]
    }

    func testAggregation() throws {
        let table = ResultTable(records: records)
        XCTAssertEqual(table.axis, .batchSize)
        XCTAssertEqual(table.columns, [2, 32])
        XCTAssertEqual(table.rows.map(\.name), ["batch norm", "group norm", "none"])
        let batch = table.rows[0]
        XCTAssertEqual(try XCTUnwrap(batch.cells[0].mean), 0.81, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(batch.cells[0].std), (0.0002).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(batch.cells[0].preciseMean), 0.85, accuracy: 1e-12)
        XCTAssertEqual(table.rows[1].cells[0].diverged, 1)
        XCTAssertEqual(table.rows[1].cells[0].accuracies, [0.88])
        XCTAssertNil(table.rows[2].cells[0].mean)
        XCTAssertEqual(table.rows[2].cells[1].runs, 1)
        XCTAssertEqual(table.bestRowPerColumn, [1, 0])
        let drop = try XCTUnwrap(table.dropToSmallest(batch))
        XCTAssertEqual(drop.bestColumn, 1)
        XCTAssertEqual(drop.drop, 0.10, accuracy: 1e-12)
    }

    func testMarkdownShowsDivergedRunsAndBestCells() {
        let markdown = MarkdownReport.render(ResultTable(records: records), chartFile: "s.svg", csvFile: "s.csv", experimentFile: "experiments/synthetic.json", resultsFile: "results/synthetic.jsonl")
        XCTAssertTrue(markdown.contains("| batch norm | 81.00 ± 1.41 | **91.00 ± 1.41** | 10.00 (from 32) |"), markdown)
        XCTAssertTrue(markdown.contains("**88.00 (1/2 diverged)**"), markdown)
        XCTAssertTrue(markdown.contains("| none | diverged | 85.00 |"), markdown)
        XCTAssertTrue(markdown.contains("![test error against batch size](s.svg)"))
        XCTAssertTrue(markdown.contains("swift run -c release normlab sweep experiments/synthetic.json --out rerun"))
        XCTAssertTrue(markdown.contains("swift run -c release normlab report results/synthetic.jsonl"))
        XCTAssertTrue(markdown.contains("| batch norm | gain | +4.00 | -0.50 |"), markdown)
        XCTAssertTrue(markdown.contains("commit abc"))
        XCTAssertFalse(markdown.contains("never learned"), markdown)
    }

    func testMarkdownNamesRunsThatStayedAtChance() {
        let stalled = records + [record(.none, batch: 32, seed: 1, accuracy: 0.1)]
        let markdown = MarkdownReport.render(ResultTable(records: stalled), chartFile: "s.svg", csvFile: "s.csv", experimentFile: "e.json", resultsFile: "r.jsonl")
        XCTAssertTrue(markdown.contains("Runs that never learned"), markdown)
        XCTAssertTrue(markdown.contains("none batch 32 seed 1 lr 0.05 (final loss 0.5000)"), markdown)
    }

    func testCSVIsTestErrorInLongForm() {
        let lines = CSVReport.render(ResultTable(records: records)).split(separator: "\n")
        XCTAssertEqual(lines[0], "row,label,model,normalizer,placement,batch_size,runs,diverged,test_error_mean,test_error_std,precise_bn_error_mean,precise_bn_error_std")
        XCTAssertEqual(lines[1], "batch norm,batch,smallcnn,batch,before,2,2,0,19.0000,1.4142,15.0000,1.4142")
        XCTAssertTrue(lines.contains("none,none,smallcnn,none,before,2,2,2,,,,"))
        XCTAssertEqual(lines.count, 7)
    }

    func testSeveralDepthsAtOneBatchSizeMakeADepthAxisWithARowPerFamilyAndNormalizer() throws {
        var depthRecords: [RunRecord] = []
        for (model, accuracy) in [("resnet-8", 0.80), ("resnet-14", 0.82), ("plain-8", 0.79), ("plain-14", 0.60)] {
            for kind in [NormalizerKind.batch, .none] {
                depthRecords.append(record(kind, batch: 32, seed: 0, accuracy: accuracy, model: model))
            }
        }
        let table = ResultTable(records: depthRecords)
        XCTAssertEqual(table.axis, .depth)
        XCTAssertEqual(table.columns, [8, 14])
        XCTAssertEqual(table.rows.map(\.name), ["resnet · batch norm", "resnet · none", "plain · batch norm", "plain · none"])
        XCTAssertEqual(table.rows[2].cells.map(\.mean), [0.79, 0.60])
        XCTAssertEqual(table.modelNames, "resnet-D and plain-D")
        let markdown = MarkdownReport.render(table, chartFile: "d.svg", csvFile: "d.csv", experimentFile: "e.json", resultsFile: "r.jsonl")
        XCTAssertTrue(markdown.contains("# synthetic: test accuracy of resnet-D and plain-D on Fashion-MNIST"), markdown)
        XCTAssertTrue(markdown.contains("| normalizer | depth 8 | depth 14 |"), markdown)
        XCTAssertTrue(CSVReport.render(table).hasPrefix("row,label,model,normalizer,placement,depth,"))
        XCTAssertFalse(markdown.contains("Part-done"))
        let partial = MarkdownReport.render(table, chartFile: "d.svg", csvFile: "d.csv", experimentFile: "e.json", resultsFile: "r.jsonl", plannedRuns: 48)
        XCTAssertTrue(partial.contains("**Part-done: 8 of the grid's 48 runs.**"), partial)
        // Two models at several batch sizes: a row per model and normalizer, batch on the axis.
        let mixed = ResultTable(records: depthRecords.filter { $0.spec.model.hasSuffix("-8") }
            + [record(.batch, batch: 2, seed: 0, accuracy: 0.7, model: "resnet-8")])
        XCTAssertEqual(mixed.axis, .batchSize)
        XCTAssertEqual(mixed.rows.map(\.name), ["resnet-8 · batch norm", "resnet-8 · none", "plain-8 · batch norm", "plain-8 · none"])
    }

    func testRecordsWithoutAModelAreSmallCNNs() throws {
        var json = String(decoding: try JSONEncoder().encode(records[0]), as: UTF8.self)
        XCTAssertTrue(json.contains("\"model\":\"smallcnn\""), json)
        XCTAssertFalse(json.contains("zero_init_residual"), json)
        json = json.replacingOccurrences(of: "\"model\":\"smallcnn\",", with: "")
        XCTAssertFalse(json.contains("model"))
        XCTAssertEqual(try JSONDecoder().decode(RunRecord.self, from: Data(json.utf8)), records[0])
        let residual = record(.none, batch: 8, seed: 0, accuracy: 0.5, model: "resnet-8")
        let encoded = String(decoding: try JSONEncoder().encode(residual), as: UTF8.self)
        XCTAssertTrue(encoded.contains("\"zero_init_residual\":false"), encoded)
    }

    func testChartIsWellFormedSVGWithOneLinePerRowThatHasPoints() throws {
        let svg = SVGChart.render(ResultTable(records: records), title: "a <test> & more")
        let parser = XMLParser(data: Data(svg.utf8))
        XCTAssertTrue(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        // batch and group have two points each; none has one (its batch-2 runs all diverged).
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertTrue(svg.contains(">× at the top: every<") && svg.contains(">run diverged<"), svg)
    }

    func testChartLeavesAFewFarOffPointsOffTheScale() throws {
        // Errors of 10–14 % and one run at chance (90 % error).
        var sweep: [RunRecord] = []
        for (index, batch) in [2, 4, 8, 16, 32].enumerated() {
            sweep.append(record(.batch, batch: batch, seed: 0, accuracy: 0.90 - 0.01 * Double(index)))
            sweep.append(record(.group, batch: batch, seed: 0, accuracy: batch == 32 ? 0.10 : 0.88 - 0.01 * Double(index)))
        }
        let svg = SVGChart.render(ResultTable(records: sweep), title: "outlier")
        XCTAssertTrue(XMLParser(data: Data(svg.utf8)).parse())
        XCTAssertTrue(svg.contains(">90.0</text>"), svg)
        XCTAssertTrue(svg.contains("off the scale"))
        XCTAssertFalse(svg.contains(">90</text>"), "the y axis should not reach 90: \(svg)")
        XCTAssertEqual(SVGChart.outlierCap([1, 2, 3, 4, 5]), 5, "nothing far off: the whole range")
        XCTAssertEqual(SVGChart.outlierCap([10, 11, 12, 80, 90]), 90, "two of five far off: too many to leave out")
    }

    func testLearningRateAxisWhenTheBatchIsFixed() {
        var sweep: [RunRecord] = []
        for rate in [0.1, 0.4] as [Float] {
            var r = record(.batch, batch: 32, seed: 0, accuracy: 0.9)
            r.spec.baseLearningRate = rate
            sweep.append(r)
        }
        let table = ResultTable(records: sweep)
        XCTAssertEqual(table.axis, .learningRate)
        XCTAssertEqual(table.columns.map { Float($0) }, [0.1, 0.4])
        XCTAssertEqual(table.rows.count, 1)
    }
}
