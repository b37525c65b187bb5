import XCTest
@testable import NormLab

/// Batch norm's state: running statistics over several steps, and inference leaving it alone.
final class BatchNormTests: XCTestCase {
    func testRunningStatisticsFollowPyTorchOverSeveralSteps() throws {
        let layer = try BatchNorm(channelCount: 3, momentum: 0.2)
        var expectedMean = [Double](repeating: 0, count: 3)
        var expectedVariance = [Double](repeating: 1, count: 3)
        for step in 0..<5 {
            let x = randomTensor([4, 3, 2, 2], seed: UInt64(step), mean: Float(step), std: 2)
            _ = try layer.forward(x, mode: .training)
            for c in 0..<3 {
                var values: [Double] = []
                for n in 0..<4 { for s in 0..<4 { values.append(Double(x.scalars[(n * 3 + c) * 4 + s])) } }
                let mean = values.reduce(0, +) / 16
                // The running variance is fed the unbiased estimate (divide by m - 1).
                let unbiased = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 15
                expectedMean[c] = 0.8 * expectedMean[c] + 0.2 * mean
                expectedVariance[c] = 0.8 * expectedVariance[c] + 0.2 * unbiased
            }
        }
        assertClose(layer.runningMean, expectedMean.map(Float.init), tolerance: 1e-5)
        assertClose(layer.runningVariance, expectedVariance.map(Float.init), tolerance: 1e-5)
    }

    func testInferenceLeavesStateUnchangedAndUsesRunningStatistics() throws {
        let layer = try BatchNorm(channelCount: 2)
        try layer.setRunningStatistics(mean: [1, -1], variance: [4, 0.25])
        try layer.setParameters(gamma: [2, 3], beta: [0.5, -0.5])
        let x = try Tensor(shape: [2, 2], scalars: [3, 0, 1, -1.5])
        let y = try layer.forward(x, mode: .inference)
        _ = try layer.backward(Tensor(shape: [2, 2], repeating: 1))
        XCTAssertEqual(layer.runningMean, [1, -1])
        XCTAssertEqual(layer.runningVariance, [4, 0.25])
        let e: Float = 1e-5
        assertClose(y.scalars, [
            2 * (3 - 1) / (4 + e).squareRoot() + 0.5, 3 * (0 + 1) / (0.25 + e).squareRoot() - 0.5,
            2 * (1 - 1) / (4 + e).squareRoot() + 0.5, 3 * (-1.5 + 1) / (0.25 + e).squareRoot() - 0.5,
        ], tolerance: 1e-6)
    }

    func testTrainingOutputIsStandardizedPerChannel() throws {
        let layer = try BatchNorm(channelCount: 4)
        let y = try layer.forward(randomTensor([8, 4, 5, 5], seed: 7, mean: 3, std: 5), mode: .training)
        for c in 0..<4 {
            var values: [Double] = []
            for n in 0..<8 { values += y.scalars[(n * 4 + c) * 25..<(n * 4 + c + 1) * 25].map(Double.init) }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(variance, 1, accuracy: 1e-3)
        }
    }
}

/// Batch renorm's state and clipping.
final class BatchRenormTests: XCTestCase {
    func testRunningStdAndMeanUpdateAndInferenceLeavesThem() throws {
        let layer = try BatchRenorm(channelCount: 1, momentum: 0.5, rmax: 3, dmax: 5)
        let x = try Tensor(shape: [4, 1], scalars: [1, 2, 3, 4])
        _ = try layer.forward(x, mode: .training)
        let batchStd = (1.25 as Float + 1e-5).squareRoot()
        XCTAssertEqual(layer.runningMean[0], 0.5 * 2.5, accuracy: 1e-6)
        XCTAssertEqual(layer.runningStd[0], 0.5 + 0.5 * batchStd, accuracy: 1e-6)
        let (mean, std) = (layer.runningMean, layer.runningStd)
        _ = try layer.forward(x, mode: .inference)
        XCTAssertEqual(layer.runningMean, mean)
        XCTAssertEqual(layer.runningStd, std)
    }

    func testCorrectionsAreClippedAndUsed() throws {
        // Batch: mean 2.5, std ≈ 1.118. Running: mean 0, std 0.1 → r = 11.2 clipped to 2,
        // d = 25 clipped to 1.5.
        let layer = try BatchRenorm(channelCount: 1, momentum: 0, rmax: 2, dmax: 1.5)
        try layer.setRunningStatistics(mean: [0], std: [0.1])
        let x = try Tensor(shape: [4, 1], scalars: [1, 2, 3, 4])
        let y = try layer.forward(x, mode: .training)
        let batchStd = (1.25 as Float + 1e-5).squareRoot()
        assertClose(y.scalars, x.scalars.map { ($0 - 2.5) / batchStd * 2 + 1.5 }, tolerance: 1e-6)
    }

    func testClippingBoundsCanBeRampedAndAreValidated() throws {
        let layer = try BatchRenorm(channelCount: 2)
        try layer.setClipping(rmax: 2.5, dmax: 3)
        XCTAssertEqual(layer.rmax, 2.5)
        XCTAssertEqual(layer.dmax, 3)
        XCTAssertThrowsError(try layer.setClipping(rmax: 0.5, dmax: 0))
        XCTAssertThrowsError(try layer.setClipping(rmax: 1, dmax: -1))
    }
}
