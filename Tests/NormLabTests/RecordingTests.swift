import Foundation
import XCTest

@testable import NormLab

/// What a run records on request: one curve point per epoch ending at the run's own numbers,
/// gradient norms equal to a direct computation, training unchanged by recording, and records
/// without recordings unchanged.
final class RecordingTests: XCTestCase {
    private static let data = try! FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 640)
    private static let test = data.test.prefix(500)

    private func settings(_ kind: NormalizerKind, batchSize: Int = 64, epochs: Int = 3, model: ModelSettings = .smallCNN) -> TrainingSettings {
        TrainingSettings(model: model, normalizer: NormalizerSettings(kind: kind), batchSize: batchSize, epochs: epochs, baseLearningRate: 0.1, seed: 2)
    }

    private func weights(_ model: any Model) -> [[Float]] {
        var arrays: [[Float]] = []
        model.visitParameters { value, _, _ in arrays.append(value) }
        return arrays
    }

    func testACurveHasOnePointPerEpochEndingAtTheRunsNumbers() throws {
        for kind in [NormalizerKind.batch, .group] {
            var settings = settings(kind)
            settings.recordings = [.curve, .trainAccuracy]
            let outcome = try Trainer.train(settings, train: Self.data.train, test: Self.test)
            let curve = try XCTUnwrap(outcome.recordings.curve)
            XCTAssertEqual(curve.map(\.epoch), [1, 2, 3])
            XCTAssertEqual(curve.last?.testAccuracy, outcome.testAccuracy)
            XCTAssertEqual(curve.last?.trainLoss, outcome.finalLoss)
            // 640 training images: the curve's training accuracy is on all of them, as the final one.
            XCTAssertEqual(curve.last?.trainAccuracy, outcome.recordings.finalTrainAccuracy)
            let train = try XCTUnwrap(outcome.recordings.finalTrainAccuracy)
            XCTAssertEqual(try XCTUnwrap(outcome.recordings.generalizationGap), train - (outcome.testAccuracy ?? .nan), accuracy: 1e-12)
            XCTAssertEqual(train, try Trainer.accuracy(of: outcome.model, on: Self.data.train))
            XCTAssertNil(outcome.recordings.gradientNorms)
        }
    }

    func testRecordingDoesNotChangeTraining() throws {
        for kind in [NormalizerKind.batch, .batchrenorm, .group] {
            let plain = try Trainer.train(settings(kind), train: Self.data.train, test: Self.test)
            XCTAssertEqual(plain.recordings, TrainingRecordings())
            var recording = settings(kind)
            recording.recordings = Set(Recording.allCases)
            let recorded = try Trainer.train(recording, train: Self.data.train, test: Self.test)
            XCTAssertGreaterThan(recorded.recordings.inferenceImagesPerSecond ?? 0, 0)
            XCTAssertEqual(recorded.finalLoss, plain.finalLoss, "\(kind)")
            XCTAssertEqual(recorded.testAccuracy, plain.testAccuracy, "\(kind)")
            XCTAssertEqual(weights(recorded.model), weights(plain.model), "\(kind)")
            XCTAssertEqual(recorded.model.normalizers.compactMap { ($0 as? any StatefulNormalizer)?.state },
                           plain.model.normalizers.compactMap { ($0 as? any StatefulNormalizer)?.state }, "\(kind)")
        }
    }

    /// With the whole training set as the one batch of each epoch, the first step's gradient is
    /// that of the untrained network on every image: computed here directly, and its norms
    /// compared (the batch's order differs, so the sums differ in their last bits).
    func testGradientNormsEqualADirectComputation() throws {
        let data = Self.data.train.prefix(128)
        for (kind, model) in [(NormalizerKind.none, ModelSettings.smallCNN), (.batch, .smallCNN), (.group, try ModelSettings(name: "resnet-8"))] {
            var settings = settings(kind, batchSize: 128, epochs: 2, model: model)
            settings.recordings = [.gradientNorms]
            let outcome = try Trainer.train(settings, train: data, test: Self.test)
            let first = try XCTUnwrap(outcome.recordings.firstStepGradientNorms).map { try XCTUnwrap($0) }

            let untrained = try model.make(
                normalizer: settings.normalizer, placement: .before, image: data.imageShape, classes: data.classes, seed: settings.seed)
            var images = Tensor(shape: [0])
            data.batch(0..<data.count, into: &images)
            _ = try untrained.trainingGradients(images: images, labels: data.labels[...])
            let direct = untrained.convolutionWeights.map { weight in
                weight.gradient.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            }
            XCTAssertEqual(first.count, model.name == "smallcnn" ? 3 : 9, "\(kind) \(model.name): one norm per convolution")
            XCTAssertEqual(first.count, direct.count)
            for (recorded, expected) in zip(first, direct) {
                XCTAssertGreaterThan(expected, 0)
                XCTAssertEqual(recorded, expected, accuracy: 1e-4 * expected, "\(kind) \(model.name)")
            }
            // One step an epoch: each epoch's mean is that step's norms, the first epoch's the first step's.
            let epochs = try XCTUnwrap(outcome.recordings.gradientNorms)
            XCTAssertEqual(epochs.count, 2)
            XCTAssertEqual(epochs[0], first.map { $0 })
            XCTAssertNotEqual(epochs[1], epochs[0])
        }
    }

    func testRecordsCarryRecordingsOnlyWhenAsked() throws {
        let spec = RunSpec(
            experiment: "e", label: "batch", normalizer: NormalizerSettings(kind: .batch), placement: .before, batchSize: 8,
            epochs: 1, baseLearningRate: 0.05, learningRate: 0.0125, learningRateScaling: "linear", weightDecay: 5e-4,
            sgdMomentum: 0.9, seed: 0, data: "embedded", trainSize: 100)
        let result = RunResult(
            testAccuracy: 0.5, preciseBNAccuracy: nil, finalLoss: 1, diverged: false, divergedAtStep: nil, steps: 12, seconds: 1,
            imagesPerSecond: 100, threads: 1, commit: "c", finishedAt: "t")
        let plain = try JSONSerialization.jsonObject(with: JSONEncoder().encode(RunRecord(spec: spec, result: result))) as! [String: Any]
        for key in ["record", "curve", "final_train_accuracy", "generalization_gap", "first_step_gradient_norms", "gradient_norms"] {
            XCTAssertNil(plain[key], key)
        }

        var recordedSpec = spec
        recordedSpec.recordings = [.curve, .gradientNorms]
        var recorded = result
        recorded.recordings.curve = [CurvePoint(epoch: 1, trainLoss: 1, trainAccuracy: 0.6, testAccuracy: 0.5)]
        recorded.recordings.firstStepGradientNorms = [0.5, nil]
        recorded.recordings.gradientNorms = [[0.25, 2]]
        let record = RunRecord(spec: recordedSpec, result: recorded)
        let text = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
        XCTAssertTrue(text.contains("\"record\":[\"curve\",\"gradient_norms\"]"), text)
        XCTAssertEqual(try JSONDecoder().decode(RunRecord.self, from: Data(text.utf8)), record)
        XCTAssertNotEqual(recordedSpec, spec, "a run that records is another run for resuming")

        // Values no run can produce are refused.
        for (from, to) in [("\"train_accuracy\":0.6", "\"train_accuracy\":1.6"), ("[[0.25,2]]", "[[-0.25,2]]")] {
            XCTAssertTrue(text.contains(from), from)
            XCTAssertThrowsError(try JSONDecoder().decode(RunRecord.self, from: Data(text.replacingOccurrences(of: from, with: to).utf8)), to)
        }
    }

    func testExperimentFilesNameRecordings() throws {
        func experiment(_ record: String) throws -> Experiment {
            try Experiment.decode(Data("""
                {"format": "normlab-experiment/1", "name": "e", "epochs": 1, "learning_rate": {"base": 0.05},
                 "normalizers": [{"kind": "batch"}], "batch_sizes": [8], "seeds": [0], "record": \(record)}
                """.utf8), path: "e.json")
        }
        let runs = try experiment("[\"gradient_norms\", \"curve\"]").runs(trainSize: 100)
        XCTAssertEqual(runs.first?.recordings, [.curve, .gradientNorms])
        XCTAssertEqual(try runs.first?.trainingSettings().recordings, [.curve, .gradientNorms])
        XCTAssertNil(try experiment("[]").runs(trainSize: 100).first?.recordings)
        XCTAssertThrowsError(try experiment("[\"curves\"]")) { error in
            XCTAssertTrue("\(error)".contains("\"curves\" is not a recording"), "\(error)")
        }
        XCTAssertThrowsError(try experiment("\"curve\""))
    }
}
