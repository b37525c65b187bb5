import XCTest

@testable import NormLab

/// A sample's training-mode output beside random batch mates: exactly the same every time for
/// a normalizer of per-sample statistics, spread for batch norm (more at batch 8 than 32), and
/// the trained network's running statistics left as they were.
final class BatchDependenceTests: XCTestCase {
    private static let data = try! FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 640)

    func testOnlyBatchStatisticsMakeTheOutputDependOnTheBatchMates() throws {
        for kind in [NormalizerKind.batch, .group] {
            var settings = TrainingSettings(normalizer: NormalizerSettings(kind: kind), batchSize: 32, epochs: 2, baseLearningRate: 0.1, seed: 4)
            settings.recordings = [.batchDependence]
            let outcome = try Trainer.train(settings, train: Self.data.train, test: Self.data.test.prefix(200))
            let dependence = try XCTUnwrap(outcome.recordings.batchDependence)
            XCTAssertEqual(Set(dependence.keys), ["8", "32"])
            let states = outcome.model.normalizers.compactMap { ($0 as? any StatefulNormalizer)?.state }
            let again = try BatchDependence.measure(outcome.model, train: Self.data.train, test: Self.data.test)
            XCTAssertEqual(again, dependence, "seeded, and the statistics restored in between")
            XCTAssertEqual(outcome.model.normalizers.compactMap { ($0 as? any StatefulNormalizer)?.state }, states)
            let small = try XCTUnwrap(dependence["8"]), large = try XCTUnwrap(dependence["32"])
            if kind == .group {
                XCTAssertEqual(small, BatchDependence(logitStd: 0, predictionChanges: 0))
                XCTAssertEqual(large, small)
            } else {
                XCTAssertGreaterThan(large.logitStd, 0)
                XCTAssertGreaterThan(small.logitStd, large.logitStd, "fewer mates, noisier statistics")
                XCTAssertLessThan(small.predictionChanges, 0.5)
            }
        }
    }
}
