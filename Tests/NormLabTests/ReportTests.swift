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
            experiment: "synthetic", model: try! ModelSettings(name: model), label: kind.rawValue, normalizer: NormalizerSettings(kind: kind),
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
        // Batch 2: the top cell (group norm) has one run, so nothing can be said. Batch 32: batch
        // norm's 91 ± 1.41 is not above group norm's 89, 89 beyond the noise (p ≈ 0.30), and
        // none's single run cannot be tested.
        XCTAssertEqual(table.verdicts, [.undecided, .tied([0, 1, 2])])
        let drop = try XCTUnwrap(table.dropToSmallest(batch))
        XCTAssertEqual(drop.bestColumn, 1)
        XCTAssertEqual(drop.drop, 0.10, accuracy: 1e-12)
    }

    func testMarkdownShowsDivergedRunsAndBestCells() {
        let markdown = MarkdownReport.render(ResultTable(records: records), chartFile: "s.svg", csvFile: "s.csv", experimentFile: "experiments/synthetic.json", resultsFile: "results/synthetic.jsonl")
        XCTAssertTrue(markdown.contains("| batch norm | 81.00 ± 1.41 | _91.00 ± 1.41_ | 10.00 (from 32) |"), markdown)
        XCTAssertTrue(markdown.contains("| group norm | 88.00 (1/2 diverged) | _89.00 ± 0.00_ |"), markdown)
        XCTAssertTrue(markdown.contains("Italic: tied for best"), markdown)
        XCTAssertFalse(markdown.contains("Bold:"), markdown)
        XCTAssertTrue(markdown.contains("| none | diverged | _85.00_ |"), markdown)
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
        XCTAssertFalse(markdown.contains("smallcnn none batch 32"), "one model: its name would add nothing")
        // Beside another model, SmallCNN's runs are named as such.
        let twoModels = stalled + [record(.none, batch: 32, seed: 1, accuracy: 0.1, model: "resnet-8")]
        let both = MarkdownReport.render(ResultTable(records: twoModels), chartFile: "s.svg", csvFile: "s.csv", experimentFile: "e.json", resultsFile: "r.jsonl")
        XCTAssertTrue(both.contains("smallcnn none batch 32 seed 1 lr 0.05 (final loss 0.5000); resnet-8 none batch 32 seed 1"), both)
    }

    func testCSVIsTestErrorInLongForm() {
        let lines = CSVReport.render(ResultTable(records: records)).split(separator: "\n")
        XCTAssertEqual(lines[0], "row,label,model,normalizer,placement,batch_size,runs,diverged,test_error_mean,test_error_std,precise_bn_error_mean,precise_bn_error_std,test_error_median,test_error_min,test_error_max,test_errors,split")
        XCTAssertEqual(lines[1], "batch norm,batch,smallcnn,batch,before,2,2,0,19.0000,1.4142,15.0000,1.4142,19.0000,18.0000,20.0000,20.0000;18.0000,false")
        XCTAssertTrue(lines.contains("none,none,smallcnn,none,before,2,2,2,,,,,,,,,false"), "\(lines)")
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
        // Sorted keys: "model" is followed by another key, whatever order a dictionary takes.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var json = String(decoding: try encoder.encode(records[0]), as: UTF8.self)
        XCTAssertTrue(json.contains("\"model\":\"smallcnn\","), json)
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

    /// Three seeds per cell, as the headline has.
    private func cells(_ values: [(NormalizerKind, [Double])], batch: Int = 32) -> [RunRecord] {
        values.flatMap { kind, accuracies in
            accuracies.enumerated().map { seed, accuracy in record(kind, batch: batch, seed: UInt64(seed), accuracy: accuracy) }
        }
    }

    func testABestBeyondTheNoiseIsBoldAndATieIsMarkedAsOne() {
        // Batch 2: batch norm 86.4–86.8 against group norm 84.1–84.5: far apart for their noise.
        // Batch 32: 85.0 ± 0.5 against 84.8 ± 0.6: a tie.
        let table = ResultTable(records:
            cells([(.batch, [0.866, 0.864, 0.868]), (.group, [0.843, 0.841, 0.845])], batch: 2)
            + cells([(.batch, [0.850, 0.845, 0.855]), (.group, [0.842, 0.848, 0.854])], batch: 32))
        XCTAssertEqual(table.verdicts, [.best(0), .tied([0, 1])])
        let markdown = MarkdownReport.render(table, chartFile: "s.svg", csvFile: "s.csv", experimentFile: "e.json", resultsFile: "r.jsonl")
        XCTAssertTrue(markdown.contains("| batch norm | **86.60 ± 0.20** | _85.00 ± 0.50_ |"), markdown)
        XCTAssertTrue(markdown.contains("| group norm | 84.30 ± 0.20 | _84.80 ± 0.60_ |"), markdown)
        XCTAssertTrue(markdown.contains("Bold: the best cell of its column, above every other cell"), markdown)
        XCTAssertTrue(markdown.contains("Italic: tied for best"), markdown)
    }

    func testASplitCellListsItsRunsAndIsNotAveraged() throws {
        // The headline's `none` at batch 128: two runs learned, one stayed at chance.
        let table = ResultTable(records:
            cells([(.none, [0.784, 0.100, 0.655]), (.batch, [0.859, 0.854, 0.858])], batch: 128)
            + cells([(.none, [0.858, 0.860, 0.857]), (.batch, [0.836, 0.842, 0.830])], batch: 2))
        let none = table.rows[0]
        XCTAssertTrue(none.cells[1].split)
        XCTAssertFalse(none.cells[0].split)
        XCTAssertEqual(try XCTUnwrap(none.cells[1].median), 0.655, accuracy: 1e-12)
        // The split cell's spread keeps batch norm from being called better beyond the noise.
        XCTAssertEqual(table.verdicts[1], .tied([1, 0]))
        let markdown = MarkdownReport.render(table, chartFile: "s.svg", csvFile: "s.csv", experimentFile: "e.json", resultsFile: "r.jsonl")
        XCTAssertTrue(markdown.contains("| none | **85.83 ± 0.15** | _split: 78.40 / 10.00 / 65.50_ | 0.00 (from 2) |"), markdown)
        XCTAssertFalse(markdown.contains("51.28"), markdown)
        XCTAssertTrue(markdown.contains("A split cell lists its runs' accuracies in seed order"), markdown)
        let csv = CSVReport.render(table)
        XCTAssertTrue(csv.contains(",21.6000;90.0000;34.5000,true"), csv)
        let svg = SVGChart.render(table, title: "split")
        XCTAssertTrue(XMLParser(data: Data(svg.utf8)).parse())
        XCTAssertTrue(svg.contains("fill=\"white\" stroke="), "a split cell is a hollow point: \(svg)")
        XCTAssertTrue(svg.contains(">bars: best to worst<"), svg)
        // A spread far beyond the table's typical one splits a cell without a run at chance.
        XCTAssertTrue(ResultTable.splits([0.80, 0.60, 0.82], typicalSpread: 0.003))
        XCTAssertFalse(ResultTable.splits([0.80, 0.79, 0.82], typicalSpread: 0.003))
    }

    func testWelchsTestAgainstClosedForms() throws {
        // One and two degrees of freedom have closed forms: p = 1 - (2/π) atan|t| and
        // p = 1 - |t| / sqrt(2 + t²).
        for t in [0.3, 1.0, 2.0, 4.303, 12.7] {
            XCTAssertEqual(Statistics.studentTTwoSidedP(t: t, degreesOfFreedom: 1), 1 - 2 / .pi * atan(t), accuracy: 1e-10)
            XCTAssertEqual(Statistics.studentTTwoSidedP(t: t, degreesOfFreedom: 2), 1 - t / (2 + t * t).squareRoot(), accuracy: 1e-10)
        }
        // Large ν approaches the normal: P(|Z| ≥ 1.96) = 0.05.
        XCTAssertEqual(Statistics.studentTTwoSidedP(t: 1.959964, degreesOfFreedom: 1e7), 0.05, accuracy: 1e-5)
        // Equal variances and sizes: t = 3 / sqrt(2/3) ≈ 3.674, ν = 4 → p ≈ 0.02131 (scipy's ttest_ind).
        let p = try XCTUnwrap(Statistics.welchPValue([1, 2, 3], [4, 5, 6]))
        XCTAssertEqual(p, 0.021311641128756714, accuracy: 1e-9)
        XCTAssertNil(Statistics.welchPValue([1], [2, 3]))
        XCTAssertEqual(Statistics.welchPValue([2, 2], [2, 2]), 1)
        XCTAssertEqual(Statistics.welchPValue([2, 2], [3, 3]), 0)
    }

    /// The page's header describes what ran: the test images used, where the norm sits, and
    /// the reference batch size of the learning-rate rule.
    func testHeaderDescribesTheRunsAsTheyWere() {
        var runs = records
        for index in runs.indices {
            runs[index].spec.testSize = 2000
            runs[index].spec.placement = .after
            runs[index].spec.learningRate = 0.05 * Float(runs[index].spec.batchSize) / 64
        }
        let markdown = MarkdownReport.render(ResultTable(records: runs), chartFile: "s.svg", csvFile: "s.csv", experimentFile: "e.json", resultsFile: "r.jsonl")
        XCTAssertTrue(markdown.contains("first 100 training images, the first 2000 test images |"), markdown)
        XCTAssertFalse(markdown.contains("10,000-image"), markdown)
        XCTAssertTrue(markdown.contains("every norm slot after its ReLU instead (conv → ReLU → norm)"), markdown)
        XCTAssertTrue(markdown.contains("base 0.05 × batch size / 64 (linear scaling rule)"), markdown)
        let whole = MarkdownReport.render(ResultTable(records: records), chartFile: "s.svg", csvFile: "s.csv", experimentFile: "e.json", resultsFile: "r.jsonl")
        XCTAssertTrue(whole.contains("the whole test set |"), whole)
        XCTAssertTrue(whole.contains("× batch size / 32 (linear scaling rule)"), whole)
        XCTAssertEqual(["42 s", "12 min 5 s", "5 h 49 min"], [42, 725, 20_973].map { MarkdownReport.duration($0) })
        // Times no run takes (the fuzzer's) print as seconds rather than trap.
        XCTAssertEqual(MarkdownReport.duration(1e300), String(format: "%.0f s", 1e300))
        XCTAssertEqual(MarkdownReport.duration(.infinity), "inf s")
    }

    func testComparisonCellByCell() {
        let lab = cells([(.batch, [0.866, 0.864, 0.868]), (.group, [0.843, 0.841, 0.845])], batch: 2)
            + cells([(.batch, [0.850, 0.845, 0.855])], batch: 32)
        let other = cells([(.batch, [0.863, 0.867, 0.865]), (.group, [0.851, 0.853, 0.852])], batch: 2)
            + cells([(.batch, [0.849])], batch: 32) + cells([(.layer, [0.8, 0.81])], batch: 2)
        let comparison = Comparison(first: lab, second: other)
        XCTAssertEqual(comparison.cells.map(\.label), ["batch", "group", "batch"])
        XCTAssertEqual(comparison.cells.map(\.agrees), [true, false, nil])
        XCTAssertEqual(comparison.onlySecond, 2)
        XCTAssertEqual(comparison.summary, "1 of 2 cells agree within the noise (Welch's t-test over seeds, two-sided, p ≥ 0.05); 1 could not be tested (fewer than two runs on a side).")
        let page = comparison.markdown(
            names: ("NormLab", "PyTorch"), paths: ("a.jsonl", "b.jsonl"), command: "normlab compare a.jsonl b.jsonl",
            first: lab, second: other, notes: "Group norm differs because of a synthetic offset.")
        XCTAssertTrue(page.contains("| group | 2 | 84.30 ± 0.20 | 85.20 ± 0.10 | -0.90 | "), page)
        XCTAssertTrue(page.contains("| **differ** |"), page)
        XCTAssertTrue(page.contains("## Notes\n\nGroup norm differs"), page)
    }

    /// `normlab report`, run as a user runs it: the page, CSV and chart, named after the file.
    func testReportCommandEndToEnd() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("normlab-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let results = folder.appendingPathComponent("synthetic.jsonl").path
        try ResultsLog.write(records, to: results)
        let out = folder.appendingPathComponent("pages").path
        XCTAssertEqual(try runNormlab(["report", results, "--out", out]), 0)
        let page = try String(contentsOfFile: out + "/synthetic.md", encoding: .utf8)
        XCTAssertTrue(page.contains("| batch norm | 81.00 ± 1.41 |"), page)
        XCTAssertTrue(page.contains("normlab report \(results)"), page)
        XCTAssertTrue(try String(contentsOfFile: out + "/synthetic.csv", encoding: .utf8).hasPrefix("row,label,model,"))
        XCTAssertTrue(XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: out + "/synthetic.svg"))).parse())
        // A missing file and an empty one are errors, not crashes.
        XCTAssertEqual(try runNormlab(["report", folder.appendingPathComponent("missing.jsonl").path, "--out", out]), 2)
        let empty = folder.appendingPathComponent("empty.jsonl").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        XCTAssertNotEqual(try runNormlab(["report", empty, "--out", out]), 0)
    }

    func testSeveralResultsFilesMakeOneTableAndWeightStandardizedRowsSaySo() throws {
        var standardized = record(.group, batch: 2, seed: 0, accuracy: 0.86)
        standardized.spec.experiment = "family"
        standardized.spec.label = "group+ws"
        standardized.spec.weightStandardization = true
        let table = ResultTable(records: records + [standardized])
        XCTAssertEqual(table.rows.map(\.name), ["batch norm", "group norm", "none", "group norm + WS"])
        let markdown = MarkdownReport.render(
            table, chartFile: "both.svg", csvFile: "both.csv", experimentFiles: ["experiments/synthetic.json", "experiments/family.json"],
            resultsFiles: ["results/synthetic.jsonl", "results/family.jsonl"])
        XCTAssertTrue(markdown.hasPrefix("# synthetic + family: "), markdown)
        XCTAssertTrue(markdown.contains("normlab sweep experiments/family.json --out rerun"), markdown)
        XCTAssertTrue(markdown.contains("normlab report results/synthetic.jsonl results/family.jsonl --name both"), markdown)
        XCTAssertTrue(markdown.contains("group norm + WS (each convolution's weights standardized over its fan-in)"), markdown)
    }
}

/// The page's sections for recordings: absent without them; the gap, the curves with the
/// steps to reach an accuracy, and the gradient norms, from the records' own numbers.
final class RecordingsReportTests: XCTestCase {
    private func record(_ kind: NormalizerKind, seed: UInt64, curve: [Double], gap: Double, norms: [Double]) -> RunRecord {
        var spec = RunSpec(
            experiment: "e", label: kind.rawValue, normalizer: NormalizerSettings(kind: kind), placement: .before, batchSize: 8,
            epochs: curve.count, baseLearningRate: 0.05, learningRate: 0.0125, learningRateScaling: "linear", weightDecay: 5e-4,
            sgdMomentum: 0.9, seed: seed, data: "embedded", trainSize: 80)
        spec.recordings = [.curve, .gradientNorms, .trainAccuracy]
        var result = RunResult(
            testAccuracy: curve.last, preciseBNAccuracy: nil, finalLoss: 1, diverged: false, divergedAtStep: nil,
            steps: 10 * curve.count, seconds: 1, imagesPerSecond: 1, threads: 1, commit: "c", finishedAt: "t")
        result.recordings.curve = curve.enumerated().map { CurvePoint(epoch: $0 + 1, trainLoss: 1, trainAccuracy: 0.9, testAccuracy: $1) }
        result.recordings.finalTrainAccuracy = curve.last! + gap
        result.recordings.generalizationGap = gap
        result.recordings.firstStepGradientNorms = norms
        result.recordings.gradientNorms = curve.map { _ in norms.map { $0 / 2 } }
        return RunRecord(spec: spec, result: result)
    }

    func testSectionsFollowTheRecords() {
        let records = [
            record(.batch, seed: 0, curve: [0.7, 0.82, 0.86], gap: 0.05, norms: [1, 2]),
            record(.batch, seed: 1, curve: [0.81, 0.84, 0.86], gap: 0.07, norms: [3, 4]),
            record(.none, seed: 0, curve: [0.5, 0.6, 0.7], gap: 0.01, norms: [0.5, 0.25]),
        ]
        let page = RecordingsReport.sections(ResultTable(records: records), chartBase: "e").joined(separator: "\n")
        XCTAssertTrue(page.contains("| batch norm | gap (points) | 6.00 ± 1.41 |"), page)
        XCTAssertTrue(page.contains("| none | gap (points) | 1.00 |"), page)
        // Steps to 80%: epoch 2 (20 steps) and epoch 1 (10 steps), mean 15; to 85%: epoch 3 both.
        XCTAssertTrue(page.contains("| batch norm | 75.50 | 83.00 | 86.00 | 15 | 30 |"), page)
        XCTAssertTrue(page.contains("| none | 50.00 | 60.00 | 70.00 | never | never |"), page)
        XCTAssertTrue(page.contains("| batch norm | first | 2 | 3 |"), page)
        XCTAssertTrue(page.contains("| batch norm | last epoch | 1 | 1.5 |"), page)
        XCTAssertTrue(page.contains("![learning curves: smallcnn, batch 8, test error per epoch](e-curves-batch8.svg)"), page)
        XCTAssertEqual(RecordingsReport.stepsToReach(0.85, records[0]), 30)
        XCTAssertNil(RecordingsReport.stepsToReach(0.9, records[0]))

        var plain = records
        for index in plain.indices { plain[index].result.recordings = TrainingRecordings() }
        XCTAssertEqual(RecordingsReport.sections(ResultTable(records: plain), chartBase: "e"), [])
    }

    /// One chart per model and column, a line per row through its mean test error at each epoch;
    /// a line above the scale says how high it goes.
    func testCurveChartsDrawTheMeanTestErrorOfEachRow() throws {
        let records = [
            record(.batch, seed: 0, curve: [0.7, 0.82, 0.86], gap: 0.05, norms: [1]),
            record(.batch, seed: 1, curve: [0.8, 0.84, 0.86], gap: 0.05, norms: [1]),
            record(.group, seed: 0, curve: [0.78, 0.84, 0.85], gap: 0.05, norms: [1]),
            record(.none, seed: 0, curve: [0.1, 0.1, 0.1], gap: 0, norms: [1]),
            record(.layer, seed: 0, curve: [0.77, 0.83, 0.86], gap: 0.05, norms: [1]),
            record(.instance, seed: 0, curve: [0.76, 0.84, 0.85], gap: 0.05, norms: [1]),
        ]
        let charts = CurveChart.charts(ResultTable(records: records), base: "e")
        XCTAssertEqual(charts.map(\.file), ["e-curves-batch8.svg"])
        let svg = try XCTUnwrap(charts.first?.svg)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 5, "one line per row")
        XCTAssertTrue(svg.contains(">batch norm</text>"), svg)
        XCTAssertTrue(svg.contains(">none (up to 90%)</text>"), "chance is far above the rest: \(svg)")
        // Batch norm's mean error: 25, 17, 14 (%), falling from left to right: in SVG, y grows
        // downwards.
        let line = try XCTUnwrap(svg.components(separatedBy: "\n").first { $0.hasPrefix("<polyline") && $0.contains(SVGChart.palette[0]) })
        let ys = line.split(separator: "\"")[1].split(separator: " ").map { Double($0.split(separator: ",")[1])! }
        XCTAssertEqual(ys.count, 3)
        XCTAssertTrue(ys[0] < ys[1] && ys[1] < ys[2], "\(ys)")
        XCTAssertEqual((ys[0] - ys[1]) / (ys[1] - ys[2]), 8.0 / 3.0, accuracy: 1e-2)
    }
}
