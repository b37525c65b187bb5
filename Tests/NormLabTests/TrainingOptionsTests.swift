import Foundation
import XCTest

@testable import NormLab

/// The options the claims' experiments need: the initial weights' scale, and non-i.i.d. batches.
final class TrainingOptionsTests: XCTestCase {
    private func weights(_ model: any Model) -> [[Float]] {
        var arrays: [[Float]] = []
        model.visitParameters { value, _, decays in if decays { arrays.append(value) } }
        return arrays
    }

    func testInitScaleScalesEveryWeightAndOneIsKaiming() throws {
        let image = ImageShape(channels: 1, height: 28, width: 28)
        for name in ["smallcnn", "resnet-8", "plain-20"] {
            var settings = try ModelSettings(name: name)
            let kaiming = weights(try settings.make(normalizer: NormalizerSettings(kind: .batch), image: image, classes: 10, seed: 4))
            settings.initScale = 1
            XCTAssertEqual(weights(try settings.make(normalizer: NormalizerSettings(kind: .batch), image: image, classes: 10, seed: 4)), kaiming)
            for scale: Float in [0.01, 10] {
                settings.initScale = scale
                let scaled = weights(try settings.make(normalizer: NormalizerSettings(kind: .batch), image: image, classes: 10, seed: 4))
                XCTAssertEqual(scaled.count, kaiming.count)
                for (layer, (a, b)) in zip(scaled, kaiming).enumerated() {
                    // The same normal draws, times a standard deviation `scale` times Kaiming's.
                    for (x, y) in zip(a, b) { XCTAssertEqual(x, scale * y, accuracy: 1e-6 * abs(scale * y) + 1e-30, "\(name) layer \(layer)") }
                }
            }
        }
        var settings = ModelSettings.smallCNN
        for bad: Float in [0, -1, .nan, .infinity] {
            settings.initScale = bad
            XCTAssertThrowsError(try settings.validate(normalizer: NormalizerSettings(kind: .batch), placement: .before))
        }
    }

    func testClassGroupedBatchesHoldFewClassesAndEachSampleOnce() throws {
        var generator = SeededGenerator(seed: 7)
        let labels = (0..<1000).map { _ in UInt8(generator.next() % 10) }
        for (batchSize, k) in [(32, 1), (32, 2), (32, 4), (8, 8)] {
            var permutation = Array(0..<labels.count)
            Trainer.shuffle(&permutation, using: &generator)
            var order = permutation
            var chunks = SeededGenerator(seed: 9)
            ClassGroupedBatches.reorder(&order, labels: labels, batchSize: batchSize, classesPerBatch: k, using: &chunks)
            XCTAssertEqual(order.count, labels.count / (batchSize / k) * (batchSize / k))
            XCTAssertEqual(Set(order).count, order.count, "each sample at most once")
            XCTAssertGreaterThanOrEqual(order.count / batchSize, labels.count / batchSize, "as many whole batches as shuffled")
            for start in stride(from: 0, to: order.count - batchSize + 1, by: batchSize) {
                let classes = Set(order[start..<start + batchSize].map { labels[$0] })
                // Each chunk of the sorted order spans at most two classes.
                XCTAssertLessThanOrEqual(classes.count, 2 * k, "batch \(batchSize), k \(k)")
            }
            // Within a class, the permutation's order is kept (a stable sort).
            for label in UInt8(0)..<10 {
                let inOrder = order.filter { labels[$0] == label }
                let ranks = inOrder.map { permutation.firstIndex(of: $0)! }
                XCTAssertEqual(Set(ranks).count, ranks.count)
            }
        }
        // One class per batch: most batches are of one class.
        var order = Array(0..<labels.count)
        var chunks = SeededGenerator(seed: 9)
        ClassGroupedBatches.reorder(&order, labels: labels, batchSize: 10, classesPerBatch: 1, using: &chunks)
        let pure = stride(from: 0, to: order.count, by: 10).filter { Set(order[$0..<$0 + 10].map { labels[$0] }).count == 1 }.count
        XCTAssertGreaterThan(pure, order.count / 10 - 10)
    }

    func testNonIIDTrainingIsSeededAndDiffersFromShuffled() throws {
        let data = try FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 640)
        var settings = TrainingSettings(normalizer: NormalizerSettings(kind: .batch), batchSize: 32, epochs: 1, baseLearningRate: 0.05, seed: 1)
        let shuffled = try Trainer.train(settings, train: data.train, test: data.test.prefix(300))
        settings.classesPerBatch = 1
        let grouped = try Trainer.train(settings, train: data.train, test: data.test.prefix(300))
        let again = try Trainer.train(settings, train: data.train, test: data.test.prefix(300))
        XCTAssertEqual(grouped.finalLoss, again.finalLoss)
        XCTAssertEqual(grouped.steps, shuffled.steps)
        XCTAssertNotEqual(grouped.finalLoss, shuffled.finalLoss)
        settings.classesPerBatch = 3
        XCTAssertThrowsError(try settings.validate(trainSize: 640))
    }

    func testExperimentFilesGridTheOptionsAndReportsNameThem() throws {
        func experiment(_ extra: String, batchSizes: String = "[8]") throws -> Experiment {
            try Experiment.decode(Data("""
                {"format": "normlab-experiment/1", "name": "e", "epochs": 1, "learning_rate": {"base": 0.05},
                 "normalizers": [{"kind": "batch"}, {"kind": "none"}], "batch_sizes": \(batchSizes), "seeds": [0] \(extra)}
                """.utf8), path: "e.json")
        }
        let plain = try experiment("").runs(trainSize: 100)
        XCTAssertEqual(plain.count, 2)
        XCTAssertTrue(plain.allSatisfy { $0.initScale == nil && $0.classesPerBatch == nil })
        let text = String(decoding: try JSONEncoder().encode(plain[0]), as: UTF8.self)
        XCTAssertFalse(text.contains("init_scale") || text.contains("classes_per_batch"), text)

        let runs = try experiment(#", "init_scale": [0.1, 1], "classes_per_batch": [2, null]"#).runs(trainSize: 100)
        XCTAssertEqual(runs.count, 8)
        XCTAssertEqual(runs.map(\.initScale), [0.1, 0.1, 0.1, 0.1, nil, nil, nil, nil])
        XCTAssertEqual(runs.map(\.classesPerBatch), [2, 2, nil, nil, 2, 2, nil, nil])
        XCTAssertEqual(try runs[0].trainingSettings().model.initScale, 0.1)
        XCTAssertEqual(try runs[0].trainingSettings().classesPerBatch, 2)
        let decoded = try JSONDecoder().decode(RunSpec.self, from: JSONEncoder().encode(runs[0]))
        XCTAssertEqual(decoded, runs[0])

        for bad in [#", "init_scale": 0"#, #", "init_scale": [1, 1]"#, #", "classes_per_batch": 3"#, #", "classes_per_batch": [0]"#] {
            XCTAssertThrowsError(try experiment(bad), bad)
        }
        XCTAssertThrowsError(try experiment(#", "classes_per_batch": 4"#, batchSizes: "[8, 2]")) { error in
            XCTAssertTrue("\(error)".contains("does not divide batch size 2"), "\(error)")
        }

        // Each row names its own value of what the runs vary.
        let records = runs.map { spec in
            RunRecord(spec: spec, result: RunResult(
                testAccuracy: 0.5, preciseBNAccuracy: nil, finalLoss: 1, diverged: false, divergedAtStep: nil, steps: 1,
                seconds: 1, imagesPerSecond: 1, threads: 1, commit: "c", finishedAt: "t"))
        }
        let names = ResultTable(records: records).rows.map(\.name)
        XCTAssertEqual(names, [
            "batch norm (init ×0.1, 2 classes per batch)", "none (init ×0.1, 2 classes per batch)",
            "batch norm (init ×0.1, shuffled batches)", "none (init ×0.1, shuffled batches)",
            "batch norm (init ×1, 2 classes per batch)", "none (init ×1, 2 classes per batch)",
            "batch norm (init ×1, shuffled batches)", "none (init ×1, shuffled batches)",
        ])
    }
}
