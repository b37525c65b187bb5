import XCTest
@testable import NormLab

/// Batch norm: fixtures, finite differences, both modes, its running statistics, its errors,
/// a large offset and the thread count.
final class BatchNormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .batch)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("batch 4-D", shape: [3, 4, 3, 3]) { try! BatchNorm(channelCount: 4) }
        try checks.gradientsMatchFiniteDifferences("batch 2-D", shape: [6, 5]) { try! BatchNorm(channelCount: 5) }
        try checks.gradientsMatchFiniteDifferences("batch inference", shape: [2, 3, 3, 3], mode: .inference) {
            let layer = try! BatchNorm(channelCount: 3)
            try! layer.setRunningStatistics(mean: [0.1, -0.2, 0.3], variance: [0.5, 1.5, 2])
            return layer
        }
    }

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

    /// PreciseBN's estimate: after `beginPopulationEstimate`, the running mean and variance are
    /// the plain averages of the batches' means and unbiased variances, whatever came before.
    func testPopulationEstimateIsThePlainAverageOfBatchStatistics() throws {
        let layer = try BatchNorm(channelCount: 2, momentum: 0.3)
        _ = try layer.forward(randomTensor([4, 2, 3, 3], seed: 40, mean: 9, std: 4), mode: .training)
        let batches = (0..<3).map { randomTensor([5, 2, 3, 3], seed: 41 + UInt64($0), mean: Float($0), std: 1 + Float($0)) }
        layer.beginPopulationEstimate()
        for batch in batches { _ = try layer.forward(batch, mode: .training) }
        layer.endPopulationEstimate()
        var means = [Double](repeating: 0, count: 2), variances = [Double](repeating: 0, count: 2)
        for batch in batches {
            for (channel, indices) in NormalizerChecks.perChannel(batch.shape).enumerated() {
                let values = indices.map { Double(batch.scalars[$0]) }
                let mean = values.reduce(0, +) / Double(values.count)
                means[channel] += mean / 3
                variances[channel] += values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1) / 3
            }
        }
        assertClose(layer.runningMean, means.map(Float.init), tolerance: 1e-5)
        assertClose(layer.runningVariance, variances.map(Float.init), tolerance: 1e-5)
        // Afterwards, back to the exponential average with the layer's momentum.
        let before = layer.runningMean
        _ = try layer.forward(batches[0], mode: .training)
        let firstMeans = NormalizerChecks.perChannel(batches[0].shape).map { indices in
            indices.reduce(0.0) { $0 + Double(batches[0].scalars[$1]) } / Double(indices.count)
        }
        assertClose(layer.runningMean, zip(before, firstMeans).map { Float(0.7 * Double($0) + 0.3 * $1) }, tolerance: 1e-5)
    }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertThrowsError(try BatchNorm(channelCount: 3, epsilon: 0)) { XCTAssertEqual($0 as? NormalizerError, .invalidEpsilon(0)) }
        XCTAssertThrowsError(try BatchNorm(channelCount: 3, momentum: 1.5)) { XCTAssertEqual($0 as? NormalizerError, .invalidMomentum(1.5)) }
        XCTAssertThrowsError(try BatchNorm(channelCount: 3).setRunningStatistics(mean: [0, 0, 0], variance: [1])) {
            XCTAssertEqual($0 as? NormalizerError, .parameterLength(name: "running variance", expected: 3, got: 1))
        }
        try assertOneValuePerChannelIsRefusedInTraining(.batch)
    }

    func testLargeOffset() throws { try checks.accurateWithALargeOffset(members: NormalizerChecks.perChannel) }

    func testConstantInput() throws { try checks.constantInputGivesBeta() }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }
}

/// Batch statistics need two values per channel in training: one sample of one value is refused,
/// one sample with several positions, and inference on one value, are fine.
func assertOneValuePerChannelIsRefusedInTraining(_ kind: NormalizerKind, file: StaticString = #filePath, line: UInt = #line) throws {
    let layer = makeNormalizer(kind, channels: 4)
    for shape in [[1, 4], [1, 4, 1, 1]] {
        XCTAssertThrowsError(try layer.forward(Tensor(shape: shape), mode: .training), file: file, line: line) {
            XCTAssertEqual($0 as? NormalizerError, .singleValuePerChannel(kind: kind, shape: shape), file: file, line: line)
        }
    }
    XCTAssertNoThrow(try layer.forward(Tensor(shape: [1, 4, 2, 2]), mode: .training), file: file, line: line)
    XCTAssertNoThrow(try layer.forward(Tensor(shape: [1, 4]), mode: .inference), file: file, line: line)
}
