import Foundation
import XCTest
@testable import NormLab

/// Weight standardization as an option of a model's convolutions: the shared `conv_ws` cases,
/// finite differences through the standardization, the same bits in lanes and pieces as in
/// one whole pass, and how experiment files, records and pages say it.
final class WeightStandardizationTests: XCTestCase {
    func testTheReferenceCasesPass() throws {
        var checked = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: normalizerFixtures.path).sorted() where name.hasPrefix("conv-ws") {
            let fixture = try Fixture.load(from: normalizerFixtures.appendingPathComponent(name))
            let result = fixture.check()
            XCTAssertTrue(result.passed, "\(name): \(result.message ?? "") \(result.comparisons)")
            checked += 1
        }
        XCTAssertEqual(checked, 2)
    }

    func testGradientsFlowThroughTheStandardizationToTheWeights() throws {
        for geometry in [ConvolutionGeometry.same3x3, ConvolutionGeometry(kernel: 1, stride: 2, padding: 0)] {
            var generator = SeededGenerator(seed: 4)
            let layer = Conv2D(
                inputChannels: 3, outputChannels: 4, geometry: geometry, bias: false, standardizesWeights: true, generator: &generator)
            try LayerCheck(step: 1e-3, tolerance: 5e-3, stride: 1).check(layer, input: randomTensor([2, 3, 5, 5], seed: 5))
            // Each output channel's standardized weights have mean 0 and variance 1 (up to ε).
            var standardized: [Float] = []
            WeightStandardization.standardize(layer.weight.value, into: &standardized, outputs: 4)
            let fanIn = standardized.count / 4
            for o in 0..<4 {
                let row = standardized[o * fanIn..<(o + 1) * fanIn].map(Double.init)
                let mean = row.reduce(0, +) / Double(fanIn)
                XCTAssertEqual(mean, 0, accuracy: 1e-6)
                XCTAssertEqual(row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(fanIn), 1, accuracy: 1e-3)
            }
        }
    }

    func testAStandardizedNetworkTrainsInLanesToTheBitsOfOneWholePass() throws {
        let images = randomTensor([40, 1, 28, 28], seed: 7)
        let labels = (0..<40).map { UInt8($0 * 3 % 10) }[...]
        for kind in [NormalizerKind.group, .batch] {
            var model = ModelSettings.smallCNN
            model.weightStandardization = true
            func gradients(splitting: Bool) throws -> (Double, [[UInt32]]) {
                let network = try model.make(
                    normalizer: settings(kind, groups: 4), image: ImageShape(channels: 1, height: 28, width: 28), classes: 10, seed: 3)
                let loss = try withExecution(threads: 2, splitsBatches: splitting) {
                    try network.trainingGradients(images: images, labels: labels)
                }
                var gradients: [[UInt32]] = []
                network.visitParameters { _, gradient, _ in gradients.append(gradient.map(\.bitPattern)) }
                return (loss, gradients)
            }
            let (splitLoss, split) = try gradients(splitting: true), (wholeLoss, whole) = try gradients(splitting: false)
            XCTAssertEqual(splitLoss.bitPattern, wholeLoss.bitPattern, "\(kind)")
            XCTAssertEqual(split, whole, "\(kind)")
            let plain = try ModelSettings.smallCNN.make(
                normalizer: settings(kind, groups: 4), image: ImageShape(channels: 1, height: 28, width: 28), classes: 10, seed: 3)
            _ = try withExecution(threads: 2) { try plain.trainingGradients(images: images, labels: labels) }
            var plainGradients: [[UInt32]] = []
            plain.visitParameters { _, gradient, _ in plainGradients.append(gradient.map(\.bitPattern)) }
            XCTAssertNotEqual(plainGradients, split, "\(kind): standardization changed nothing")
        }
    }

    func testExperimentFilesRecordsAndPagesSayIt() throws {
        let text = """
            {"format": "normlab-experiment/1", "name": "ws", "epochs": 1, "learning_rate": {"base": 0.05},
             "weight_standardization": true,
             "normalizers": [{"kind": "group", "groups": 4}, {"kind": "batch", "weight_standardization": false}],
             "batch_sizes": [8], "seeds": [0]}
            """
        let experiment = try Experiment.decode(Data(text.utf8), path: "ws.json")
        XCTAssertEqual(experiment.normalizers.map(\.label), ["group+ws", "batch"])
        XCTAssertEqual(experiment.normalizers.map(\.weightStandardization), [true, false])
        let runs = experiment.runs(trainSize: 100)
        XCTAssertEqual(runs.map(\.weightStandardization), [true, nil])
        XCTAssertEqual(try runs.map { try $0.modelSettings().weightStandardization }, [true, false])
        let records = try runs.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        XCTAssertTrue(records[0].contains("\"weight_standardization\":true"), records[0])
        XCTAssertFalse(records[1].contains("weight_standardization"), records[1])
        XCTAssertEqual(try JSONDecoder().decode(RunSpec.self, from: Data(records[0].utf8)), runs[0])
        XCTAssertThrowsError(try Experiment.decode(Data(text.replacingOccurrences(of: "\"weight_standardization\": true", with: "\"weight_standardization\": 3").utf8), path: "ws.json"))
    }

    func testAHostileConvolutionCaseIsAnErrorNotACrash() throws {
        let good = try String(contentsOf: normalizerFixtures.appendingPathComponent("conv-ws-3x3.json"), encoding: .utf8)
        for (from, to) in [("\"padding\": 1", "\"padding\": 3"), ("\"padding\": 1", "\"padding\": -1"), ("\"stride\": 1", "\"stride\": 0"),
                           ("\"out_channels\": 4", "\"out_channels\": 400000000000"), ("\"eps\": 1e-05", "\"eps\": 0.001")] {
            let hostile = good.replacingOccurrences(of: from, with: to)
            XCTAssertNotEqual(hostile, good, from)
            let result = try Fixture.decode(Data(hostile.utf8), path: "hostile.json").check()
            XCTAssertFalse(result.passed, to)
            XCTAssertNotNil(result.message, to)
        }
    }
}
