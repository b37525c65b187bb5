import Foundation
import XCTest
@testable import NormLab

/// Experiment files: every committed one loads, and every mistake is rejected naming the key.
final class ExperimentTests: XCTestCase {
    private let experiments = repositoryRoot.appendingPathComponent("experiments")

    private func write(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("normlab-experiment-\(UUID().uuidString).json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// A valid file with `change` applied to its JSON object.
    private func variant(_ change: (inout [String: Any]) -> Void) throws -> String {
        let data = try Data(contentsOf: experiments.appendingPathComponent("smoke.json"))
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        change(&object)
        return try write(String(decoding: JSONSerialization.data(withJSONObject: object), as: UTF8.self))
    }

    private func assertRejected(
        _ path: String, mentioning text: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try Experiment.load(from: path), file: file, line: line) { error in
            XCTAssertTrue(error is ExperimentError, "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(text), "\"\(error)\" should mention \"\(text)\"", file: file, line: line)
        }
    }

    func testCommittedExperimentsLoad() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: experiments.path).filter { $0.hasSuffix(".json") }
        XCTAssertTrue(Set(files).isSuperset(of: ["small-batch.json", "quick.json", "smoke.json", "placement.json", "learning-rate.json", "brn-momentum.json"]))
        for file in files {
            XCTAssertNoThrow(try Experiment.load(from: experiments.appendingPathComponent(file).path), file)
        }
        let headline = try Experiment.load(from: experiments.appendingPathComponent("small-batch.json").path)
        XCTAssertEqual(headline.normalizers.map(\.settings.kind), [.none, .batch, .batchrenorm, .group, .layer, .instance])
        XCTAssertEqual(headline.batchSizes, [2, 4, 8, 16, 32, 64, 128])
        XCTAssertEqual(headline.seeds, [0, 1, 2])
        XCTAssertEqual(headline.epochs, 6)
        XCTAssertEqual(headline.trainSize, 10_000)
        XCTAssertEqual(headline.runs(trainSize: 10_000).count, 126)
        XCTAssertEqual(headline.learningRate(base: 0.05, batchSize: 2), 0.003125)
        let renorm = try XCTUnwrap(headline.normalizers.first { $0.settings.kind == .batchrenorm })
        XCTAssertEqual(renorm.settings.value("momentum"), Float(0.1))
        XCTAssertEqual(renorm.settings.value("renorm_schedule"), RenormSchedule())
        let rates = try Experiment.load(from: experiments.appendingPathComponent("learning-rate.json").path)
        XCTAssertEqual(rates.baseLearningRates.first, 0.0125)
        XCTAssertEqual(rates.baseLearningRates.last, 0.8)
    }

    func testMistakesAreRejectedNamingTheKey() throws {
        assertRejected(try variant { $0["epoch"] = 3 }, mentioning: "unknown key \"epoch\"")
        assertRejected(try variant { $0["epochs"] = "six" }, mentioning: "epochs")
        assertRejected(try variant { $0["epochs"] = 0 }, mentioning: "\"epochs\" must be positive")
        assertRejected(try variant { $0["format"] = "normlab-experiment/9" }, mentioning: "format")
        assertRejected(try variant { $0["batch_sizes"] = [4, 4096] }, mentioning: "larger than \"train_size\"")
        assertRejected(try variant { $0["seeds"] = [] }, mentioning: "seeds")
        assertRejected(try variant { $0["learning_rate"] = ["base": -0.1] }, mentioning: "learning_rate.base")
        assertRejected(try variant { $0["learning_rate"] = ["base": 0.1, "sceduling": "linear"] }, mentioning: "unknown key \"sceduling\"")
        assertRejected(try variant { $0["normalizers"] = [["kind": "group", "groups": 5]] }, mentioning: "16 channels cannot be split into 5 groups")
        assertRejected(try variant { $0["normalizers"] = [["kind": "batch", "groups": 2]] }, mentioning: "unknown key \"groups\" in normalizers[0]")
        assertRejected(try variant { $0["normalizers"] = [["kind": "batchnorm"]] }, mentioning: "normalizers[0].kind")
        assertRejected(try variant { $0["normalizers"] = [["kind": "batch", "eps": 0]] }, mentioning: "epsilon must be positive")
        assertRejected(try variant { $0["normalizers"] = [["kind": "batch", "momentum": 2]] }, mentioning: "momentum must lie in [0, 1]")
        assertRejected(try variant { $0["normalizers"] = [["kind": "batch"], ["kind": "batch"]] }, mentioning: "labels must be unique")
        assertRejected(
            try variant { $0["normalizers"] = [["kind": "batchrenorm", "renorm_schedule": ["rmax": 0.5]]] }, mentioning: "rmax must be at least 1")
        assertRejected(
            try variant { $0["normalizers"] = [["kind": "batchrenorm", "renorm_schedule": ["rmx": 2]]] }, mentioning: "unknown key \"rmx\"")
        assertRejected(try variant { $0["placement"] = "between" }, mentioning: "placement")
        assertRejected(try variant { $0["model"] = "ResNet" }, mentioning: "resnet-D")
        assertRejected(try variant { $0["model"] = "resnet-9" }, mentioning: "6n + 2")
        assertRejected(try variant { $0["model"] = "plain-8"; $0["zero_init_residual"] = true }, mentioning: "no residual blocks")
        assertRejected(try variant { $0["model"] = "resnet-8"; $0["placement"] = "after" }, mentioning: "does not fit resnet-8")
        assertRejected(try variant { $0["precise_bn"] = ["images": 100, "batchsize": 10] }, mentioning: "unknown key \"batchsize\"")
        assertRejected(try write("{\"format\": \"normlab-experiment/1\", "), mentioning: "not valid JSON")
        assertRejected("/nonexistent/experiment.json", mentioning: "cannot read")
    }

    func testOptionalKeysTakeTheirDefaults() throws {
        let path = try write("""
            {"format": "normlab-experiment/1", "name": "minimal", "epochs": 1, "learning_rate": {"base": 0.1},
             "normalizers": [{"kind": "group"}, {"kind": "batchrenorm"}], "batch_sizes": [8], "seeds": [0], "precise_bn": false}
            """)
        let experiment = try Experiment.load(from: path)
        XCTAssertEqual(experiment.data, "embedded")
        XCTAssertEqual(experiment.placements, [.before])
        XCTAssertEqual(experiment.weightDecay, 5e-4)
        XCTAssertEqual(experiment.sgdMomentum, 0.9)
        XCTAssertNil(experiment.preciseBN)
        XCTAssertEqual(experiment.outputs.jsonl, "minimal.jsonl")
        XCTAssertNil(experiment.normalizers[0].settings["groups"])
        XCTAssertEqual(experiment.normalizers[1].settings.value("momentum"), Float(0.1))
    }

    /// Batch renorm's running-statistics rate is the same wherever it is defaulted: the class,
    /// the settings and experiment files.
    func testBatchRenormMomentumHasOneDefault() throws {
        XCTAssertEqual(try BatchRenorm(channelCount: 2).momentum, NormalizerSettings.defaultMomentum)
        XCTAssertEqual(NormalizerSettings(kind: .batchrenorm).value("momentum"), NormalizerSettings.defaultMomentum)
        XCTAssertEqual(try BatchNorm(channelCount: 2).momentum, NormalizerSettings.defaultMomentum)
    }

    /// With linear scaling and a reference batch size other than 32, a run trains at the rate
    /// its record names: base × batch / reference.
    func testLinearScalingUsesTheReferenceBatchSize() throws {
        let path = try variant { object in
            object["learning_rate"] = ["base": 0.1, "scaling": "linear", "reference_batch_size": 64]
        }
        for run in try Experiment.load(from: path).runs(trainSize: 512) {
            XCTAssertEqual(run.learningRate, 0.1 * Float(run.batchSize) / 64)
            XCTAssertEqual(try run.trainingSettings().learningRate, run.learningRate, "batch \(run.batchSize)")
        }
        let unscaled = try variant { object in object["learning_rate"] = ["base": 0.07, "scaling": "none"] }
        for run in try Experiment.load(from: unscaled).runs(trainSize: 512) {
            XCTAssertEqual(try run.trainingSettings().learningRate, 0.07, "batch \(run.batchSize)")
        }
    }
}
