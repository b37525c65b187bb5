import XCTest
@testable import NormLab

/// Batch renorm: fixtures, finite differences with and without corrections, its running mean
/// and standard deviation, clipping, its errors, a large offset and the thread count.
final class BatchRenormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .batchrenorm)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("batchrenorm r=1 d=0", shape: [3, 4, 3, 3]) { try! BatchRenorm(channelCount: 4) }
        // Running statistics far from the batch's clip r and d at their bounds, where they are
        // truly constant, so the algorithm's gradient is the true gradient.
        try checks.gradientsMatchFiniteDifferences("batchrenorm clipped", shape: [3, 4, 3, 3]) {
            let layer = try! BatchRenorm(channelCount: 4, momentum: 0.1, rmax: 2, dmax: 0.5)
            try! layer.setRunningStatistics(mean: [20, -20, 20, -20], std: [10, 10, 0.1, 0.1])
            return layer
        }
    }

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

    /// PreciseBN's estimate: the running mean and standard deviation become the plain averages
    /// of the batches' means and standard deviations (√(var + ε)), with no correction applied.
    func testPopulationEstimateIsThePlainAverageOfBatchStatistics() throws {
        let layer = try BatchRenorm(channelCount: 2, momentum: 0.3, rmax: 3, dmax: 5)
        try layer.setRunningStatistics(mean: [5, -5], std: [0.1, 9])
        let batches = (0..<3).map { randomTensor([5, 2, 3, 3], seed: 51 + UInt64($0), mean: Float($0), std: 1 + Float($0)) }
        layer.beginPopulationEstimate()
        var outputs: [Tensor] = []
        for batch in batches { outputs.append(try layer.forward(batch, mode: .training)) }
        layer.endPopulationEstimate()
        var means = [Double](repeating: 0, count: 2), stds = [Double](repeating: 0, count: 2)
        for batch in batches {
            for (channel, indices) in NormalizerChecks.perChannel(batch.shape).enumerated() {
                let values = indices.map { Double(batch.scalars[$0]) }
                let mean = values.reduce(0, +) / Double(values.count)
                means[channel] += mean / 3
                stds[channel] += (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count) + 1e-5).squareRoot() / 3
            }
        }
        assertClose(layer.runningMean, means.map(Float.init), tolerance: 1e-5)
        assertClose(layer.runningStd, stds.map(Float.init), tolerance: 1e-5)
        // No correction while estimating: the outputs are plain batch norm's.
        let plain = try BatchNorm(channelCount: 2)
        for (batch, output) in zip(batches, outputs) {
            assertClose(output.scalars, try plain.forward(batch, mode: .training).scalars, tolerance: 1e-5)
        }
    }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertThrowsError(try BatchRenorm(channelCount: 3, momentum: -0.1)) { XCTAssertEqual($0 as? NormalizerError, .invalidMomentum(-0.1)) }
        XCTAssertThrowsError(try BatchRenorm(channelCount: 3, rmax: 0.9)) { XCTAssertEqual($0 as? NormalizerError, .invalidRmax(0.9)) }
        XCTAssertThrowsError(try BatchRenorm(channelCount: 3, dmax: -1)) { XCTAssertEqual($0 as? NormalizerError, .invalidDmax(-1)) }
        try assertOneValuePerChannelIsRefusedInTraining(.batchrenorm)
    }

    func testLargeOffset() throws { try checks.accurateWithALargeOffset(members: NormalizerChecks.perChannel) }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }
}
