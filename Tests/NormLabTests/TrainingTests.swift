import XCTest
@testable import NormLab

/// Training on real data: it learns, it is reproducible whatever the thread count, and it stops
/// cleanly when it diverges.
final class TrainingTests: XCTestCase {
    private static let data = try! FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 3200)

    private func weights(_ model: any Model) -> [[Float]] {
        var arrays: [[Float]] = []
        model.visitParameters { value, _, _ in arrays.append(value) }
        return arrays
    }

    func testAFewHundredStepsDriveTheLossDown() throws {
        let settings = TrainingSettings(
            normalizer: NormalizerSettings(kind: .group), batchSize: 16, epochs: 2, baseLearningRate: 0.05, seed: 0)
        var losses: [Double] = []
        let outcome = try Trainer.train(settings, train: Self.data.train, test: Self.data.test) { losses.append($0.loss) }
        XCTAssertEqual(outcome.steps, 400)
        XCTAssertFalse(outcome.diverged)
        // Untrained, the loss is about ln 10 = 2.3.
        XCTAssertLessThan(try XCTUnwrap(losses.first), 2.4)
        XCTAssertLessThan(outcome.finalLoss, 1.1)
        XCTAssertGreaterThan(try XCTUnwrap(outcome.testAccuracy), 0.6)
    }

    func testSameSeedSameBitsWithOneOrTwoThreads() throws {
        for kind in [NormalizerKind.batch, .group, .batchrenorm] {
            var runs: [(TrainingOutcome, [[Float]])] = []
            for threads in [1, 2, 2] {
                try withExecution(threads: threads) {
                    // Batch 64 makes the kernels split their work across threads.
                    let settings = TrainingSettings(
                        normalizer: NormalizerSettings(kind: kind), batchSize: 64, epochs: 1,
                        baseLearningRate: 0.1, seed: 3)
                    let outcome = try Trainer.train(settings, train: Self.data.train.prefix(640), test: Self.data.test.prefix(500))
                    runs.append((outcome, weights(outcome.model)))
                }
            }
            for run in runs.dropFirst() {
                XCTAssertEqual(run.0.finalLoss, runs[0].0.finalLoss, "\(kind)")
                XCTAssertEqual(run.0.testAccuracy, runs[0].0.testAccuracy, "\(kind)")
                XCTAssertEqual(run.1, runs[0].1, "\(kind) weights")
            }
        }
        let other = try Trainer.train(
            TrainingSettings(normalizer: NormalizerSettings(kind: .batch), batchSize: 64, epochs: 1, baseLearningRate: 0.1, seed: 4),
            train: Self.data.train.prefix(640), test: Self.data.test.prefix(500))
        XCTAssertNotEqual(other.finalLoss, try Trainer.train(
            TrainingSettings(normalizer: NormalizerSettings(kind: .batch), batchSize: 64, epochs: 1, baseLearningRate: 0.1, seed: 3),
            train: Self.data.train.prefix(640), test: Self.data.test.prefix(500)).finalLoss, "a different seed trains differently")
    }

    func testSameBitsWithWideOrNarrowMatrixTiles() throws {
        guard MatrixMultiply.wideTilesAvailable else { throw XCTSkip("this processor has no AVX-512") }
        for batchSize in [8, 64] {
            var runs: [(TrainingOutcome, [[Float]])] = []
            for wide in [false, true] {
                try withExecution(wideTiles: wide) {
                    let settings = TrainingSettings(
                        normalizer: NormalizerSettings(kind: .group), batchSize: batchSize, epochs: 1, baseLearningRate: 0.1, seed: 3)
                    let outcome = try Trainer.train(settings, train: Self.data.train.prefix(320), test: Self.data.test.prefix(200))
                    runs.append((outcome, weights(outcome.model)))
                }
            }
            XCTAssertEqual(runs[1].0.finalLoss, runs[0].0.finalLoss, "batch \(batchSize)")
            XCTAssertEqual(runs[1].1, runs[0].1, "batch \(batchSize) weights")
        }
    }

    func testDivergenceIsReportedNotCrashedOn() throws {
        let settings = TrainingSettings(
            normalizer: NormalizerSettings(kind: .none), batchSize: 32, epochs: 1, baseLearningRate: 1e4, seed: 0)
        let outcome = try Trainer.train(settings, train: Self.data.train.prefix(640), test: Self.data.test.prefix(100))
        XCTAssertTrue(outcome.diverged)
        XCTAssertNil(outcome.testAccuracy)
        XCTAssertNotNil(outcome.divergedAtStep)
    }

    func testInvalidSettingsAreRejected() {
        let data = Self.data
        for settings in [
            TrainingSettings(normalizer: NormalizerSettings(kind: .batch), batchSize: 0, epochs: 1, baseLearningRate: 0.1, seed: 0),
            TrainingSettings(normalizer: NormalizerSettings(kind: .batch), batchSize: 8, epochs: 0, baseLearningRate: 0.1, seed: 0),
            TrainingSettings(normalizer: NormalizerSettings(kind: .batch), batchSize: 8, epochs: 1, baseLearningRate: -1, seed: 0),
            TrainingSettings(normalizer: NormalizerSettings(kind: .batch), batchSize: 5000, epochs: 1, baseLearningRate: 0.1, seed: 0),
        ] {
            XCTAssertThrowsError(try Trainer.train(settings, train: data.train, test: data.test)) { error in
                XCTAssertTrue(error is TrainingError, "\(error)")
            }
        }
    }

    func testSchedules() {
        let cosine = CosineSchedule(initialRate: 0.2, totalSteps: 100)
        XCTAssertEqual(cosine.rate(atStep: 0), 0.2)
        XCTAssertEqual(cosine.rate(atStep: 50), 0.1, accuracy: 1e-6)
        XCTAssertEqual(cosine.rate(atStep: 99), 0.2 * Float((1 + cos(Double.pi * 0.99)) / 2), accuracy: 1e-7)
        let renorm = RenormSchedule()
        XCTAssertTrue(renorm.bounds(atStep: 4, of: 100) == (1, 0))
        XCTAssertEqual(renorm.bounds(atStep: 30, of: 100).dmax, 5, accuracy: 1e-5)
        XCTAssertEqual(renorm.bounds(atStep: 30, of: 100).rmax, 1 + 2 * Float(25.0 / 45), accuracy: 1e-5)
        XCTAssertTrue(renorm.bounds(atStep: 60, of: 100) == (3, 5))
    }

    func testSGDStepDecaysOnlyWeights() throws {
        let model = try SmallCNN.make(normalizer: NormalizerSettings(kind: .batch), seed: 0)
        let before = weights(model)
        // With zero gradients, only weight decay moves anything.
        let optimizer = SGD(learningRate: 0.5, momentum: 0.9, weightDecay: 0.1)
        optimizer.step(model)
        let after = weights(model)
        var decaying: [Bool] = []
        model.visitParameters { _, _, decays in decaying.append(decays) }
        XCTAssertEqual(decaying, [true, false, false, true, false, false, true, false, false, true, false])
        for (index, (old, new)) in zip(before, after).enumerated() {
            let factor: Float = decaying[index] ? 1 - 0.5 * 0.1 : 1
            assertClose(new, old.map { $0 * factor }, tolerance: 1e-6, "array \(index)")
        }
    }
}
