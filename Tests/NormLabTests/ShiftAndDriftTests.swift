import XCTest

@testable import NormLab

/// The shifted test sets (their formulas, pixel by pixel), the accuracies recorded on them with
/// and without re-estimated statistics, and the activation drift: zero for a frozen network, and
/// each slot's statistics those of the convolution's own output before any ReLU.
final class ShiftAndDriftTests: XCTestCase {
    private static let data = try! FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 640)
    private static let test = data.test.prefix(400)

    /// Two 2×2 grey images.
    private let images = try! Dataset(
        pixels: [0, 50, 100, 250, 255, 255, 0, 0], labels: [0, 1], channels: 1, rows: 2, columns: 2, classes: 2,
        mean: [0.5], std: [0.25], description: "two images")

    func testContrastMovesEachPixelTowardsItsImagesMean() throws {
        let shifted = try InputShift(.contrast, 0.5).apply(to: images)
        // Image 0: mean (0 + 50 + 100 + 250) / 4 = 100 levels; x' = 100 + 0.5 (x − 100).
        XCTAssertEqual(Array(shifted.pixels[0..<4]), [50, 75, 100, 175])
        XCTAssertEqual(Array(shifted.pixels[4..<8]), [191, 191, 64, 64])  // mean 127.5: 191.25, 63.75
        XCTAssertEqual(try InputShift(.contrast, 1).apply(to: images).pixels, images.pixels)
        XCTAssertEqual(Array(try InputShift(.contrast, 0).apply(to: images).pixels[0..<4]), [100, 100, 100, 100])
        XCTAssertEqual(shifted.labels, images.labels)
        XCTAssertEqual(shifted.mean, images.mean, "the dataset's standardization is kept")
    }

    func testBrightnessAddsAndClipsAtWhite() throws {
        XCTAssertEqual(try InputShift(.brightness, 0.2).apply(to: images).pixels, [51, 101, 151, 255, 255, 255, 51, 51])
        XCTAssertEqual(try InputShift(.brightness, -0.2).apply(to: images).pixels, [0, 0, 49, 199, 204, 204, 0, 0])
    }

    func testNoiseIsSeededClippedAndOfItsStandardDeviation() throws {
        let grey = try Dataset(
            pixels: [UInt8](repeating: 128, count: 2000 * 4), labels: [UInt8](repeating: 0, count: 2000), channels: 1,
            rows: 2, columns: 2, classes: 1, mean: [0.5], std: [0.25], description: "grey")
        let noisy = try InputShift(.noise, 0.1).apply(to: grey)
        XCTAssertEqual(noisy.pixels, try InputShift(.noise, 0.1).apply(to: grey).pixels, "the same noise every time")
        let values = noisy.pixels.map { Double($0) / 255 }
        let mean = values.reduce(0, +) / Double(values.count)
        let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
        XCTAssertEqual(mean, 128.0 / 255, accuracy: 0.003)
        XCTAssertEqual(std, 0.1, accuracy: 0.003)
        XCTAssertEqual(try InputShift(.noise, 0).apply(to: images).pixels, images.pixels)
        // σ = 5: nine values in ten fall outside [0, 1], clipped to its ends, half at each.
        let clipped = try InputShift(.noise, 5).apply(to: grey).pixels
        XCTAssertEqual(Double(clipped.filter { $0 == 0 }.count) / Double(clipped.count), 0.46, accuracy: 0.03)
        XCTAssertEqual(Double(clipped.filter { $0 == 255 }.count) / Double(clipped.count), 0.46, accuracy: 0.03)
    }

    func testAShiftOutsideItsRangeIsRefused() {
        XCTAssertThrowsError(try InputShift(.contrast, -0.5))
        XCTAssertThrowsError(try InputShift(.noise, .nan))
        XCTAssertThrowsError(try InputShift(.brightness, 1.5))
    }

    /// Every default shift is recorded; re-estimated accuracies only with running statistics,
    /// each equal to re-estimating a copy of the trained network by hand; the trained network's
    /// statistics are left as they were.
    func testShiftedAccuraciesWithAndWithoutReestimatedStatistics() throws {
        for kind in [NormalizerKind.batch, .group] {
            var settings = TrainingSettings(normalizer: NormalizerSettings(kind: kind), batchSize: 64, epochs: 2, baseLearningRate: 0.1, seed: 3)
            settings.recordings = [.shiftedAccuracy]
            let outcome = try Trainer.train(settings, train: Self.data.train, test: Self.test)
            let table = try XCTUnwrap(outcome.recordings.shiftedAccuracy)
            XCTAssertEqual(table.mapValues { Set($0.keys) }, ["contrast": ["0.5", "0.25"], "brightness": ["0.2", "0.4"], "noise": ["0.1", "0.2"]])
            for shift in InputShift.defaults {
                XCTAssertEqual(table[shift.family.rawValue]?[shift.levelKey], try Trainer.accuracy(of: outcome.model, on: shift.apply(to: Self.test)))
            }
            XCTAssertEqual(try Trainer.accuracy(of: outcome.model, on: Self.test), outcome.testAccuracy, "statistics restored")
            guard kind == .batch else {
                XCTAssertNil(outcome.recordings.shiftedAccuracyReestimated)
                continue
            }
            let reestimated = try XCTUnwrap(outcome.recordings.shiftedAccuracyReestimated)
            let shift = try InputShift(.contrast, 0.25)
            let shifted = shift.apply(to: Self.test)
            try PreciseBN.recompute(outcome.model, onFirst: 2000, of: shifted, batchSize: 200)
            XCTAssertEqual(reestimated["contrast"]?["0.25"], try Trainer.accuracy(of: outcome.model, on: shifted))
            XCTAssertNotEqual(reestimated["contrast"]?["0.25"], table["contrast"]?["0.25"])
        }
    }

    func testTheDriftOfAFrozenNetworkIsZero() throws {
        let model = try ModelSettings(name: "resnet-8").make(
            normalizer: NormalizerSettings(kind: .batch), placement: .before, image: Self.data.train.imageShape, classes: 10, seed: 1)
        let probe = Self.data.train.prefix(ActivationDrift.probeImages)
        var drift = ActivationDrift()
        drift.append(try ActivationProbe.statistics(of: model, on: probe))
        drift.append(try ActivationProbe.statistics(of: model, on: probe))
        XCTAssertEqual(drift.mean.count, 2)
        XCTAssertEqual(drift.mean[0].count, model.convolutionWeights.count, "one slot per convolution")
        XCTAssertEqual(drift.meanChange, [[Double?](repeating: 0, count: model.convolutionWeights.count)])
        XCTAssertEqual(drift.stdChange, drift.meanChange)
    }

    /// The probe sees each convolution's output before the ReLU that a missing normalizer lets
    /// the convolution fuse, and the drift is the change in units of the earlier std.
    func testASlotsStatisticsAreItsConvolutionsOutputBeforeTheReLU() throws {
        let model = try ModelSettings.smallCNN.make(
            normalizer: NormalizerSettings(kind: .none), placement: .before, image: Self.data.train.imageShape, classes: 10, seed: 1)
        let probe = Self.data.train.prefix(50)
        let statistics = try ActivationProbe.statistics(of: model, on: probe)
        let first = try XCTUnwrap((model as? Network)?.body.allLayers.compactMap { $0 as? Conv2D }.first)
        var images = Tensor(shape: [0]), output = Tensor(shape: [0])
        probe.batch(0..<probe.count, into: &images)
        first.forward(images, into: &output, keepingInput: false)
        let plane = output.shape[2] * output.shape[3]
        let channels = output.shape[1]
        for channel in [0, 5] {
            var values: [Double] = []
            for sample in 0..<probe.count {
                let start = (sample * channels + channel) * plane
                values += output.scalars[start..<start + plane].map { Double($0) }
            }
            let count = Double(values.count)
            let mean = values.reduce(0, +) / count
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / count
            XCTAssertEqual(statistics[0].mean[channel], mean, accuracy: 1e-9)
            XCTAssertEqual(statistics[0].variance[channel], variance, accuracy: 1e-9 * variance)
        }
        XCTAssertTrue(statistics[0].mean.contains { $0 < 0 }, "not rectified")

        var drift = ActivationDrift()
        drift.append([(mean: [0, 1], variance: [4, 0])])
        drift.append([(mean: [1, 5], variance: [1, 3])])
        // Channel 1 had σ = 0 and is left out: |1 − 0| / 2 and |1 − 2| / 2.
        XCTAssertEqual(drift.meanChange, [[0.5]])
        XCTAssertEqual(drift.stdChange, [[0.5]])
    }
}
