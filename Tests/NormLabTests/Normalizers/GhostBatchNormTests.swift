import XCTest
@testable import NormLab

/// Ghost batch norm: fixtures, finite differences over virtual batches of unequal size, batch
/// norm exactly when V ≥ N, its errors (checked before any running statistic moves), a large
/// offset over each virtual batch and the thread count.
final class GhostBatchNormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .ghostbatch)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("ghost V=4 of 6", shape: [6, 3, 2, 2]) { try! GhostBatchNorm(channelCount: 3, virtualBatchSize: 4) }
        try checks.gradientsMatchFiniteDifferences("ghost V=2 2-D", shape: [6, 4]) { try! GhostBatchNorm(channelCount: 4, virtualBatchSize: 2) }
        try checks.gradientsMatchFiniteDifferences("ghost inference", shape: [5, 3, 2, 2], mode: .inference) { try! GhostBatchNorm(channelCount: 3, virtualBatchSize: 2) }
    }

    func testAVirtualBatchAtLeastTheBatchIsBatchNormExactly() throws {
        let x = randomTensor([8, 3, 4, 4], seed: 3, mean: 0.5, std: 2), dy = randomTensor([8, 3, 4, 4], seed: 4)
        for size in [8, 100] {
            let ghost = try GhostBatchNorm(channelCount: 3, virtualBatchSize: size), batch = try BatchNorm(channelCount: 3)
            XCTAssertEqual(try ghost.forward(x, mode: .training), try batch.forward(x, mode: .training))
            XCTAssertEqual(try ghost.backward(dy), try batch.backward(dy))
            XCTAssertEqual(ghost.parameters.map(\.gradient), batch.parameters.map(\.gradient))
            XCTAssertEqual(ghost.state, batch.state)
        }
    }

    func testEachVirtualBatchIsBatchNormOfItsSamplesForwardAndBackwardAndTheRunningStatisticsFollowInOrder() throws {
        let x = randomTensor([5, 2, 3, 3], seed: 5, mean: 1, std: 3), dy = randomTensor([5, 2, 3, 3], seed: 6)
        let ghost = try GhostBatchNorm(channelCount: 2, virtualBatchSize: 2)
        let y = try ghost.forward(x, mode: .training), dx = try ghost.backward(dy)
        let batch = try BatchNorm(channelCount: 2)
        var (expected, expectedGradient) = ([Float](), [Float]())
        var parameterGradients = [[Float]](repeating: [0, 0], count: 2)
        for samples in [0..<2, 2..<4, 4..<5] {
            var (part, partGradient) = (Tensor(shape: [0]), Tensor(shape: [0]))
            copySamples(samples, of: x, into: &part)
            copySamples(samples, of: dy, into: &partGradient)
            expected += try batch.forward(part, mode: .training).scalars
            expectedGradient += try batch.backward(partGradient).scalars
            for (index, parameter) in batch.parameters.enumerated() {
                for channel in 0..<2 { parameterGradients[index][channel] += parameter.gradient[channel] }
            }
        }
        // The same bits as batch norm on each virtual batch alone, and γ's and β's gradients
        // its virtual batches' added in order.
        XCTAssertEqual(y.scalars, expected)
        XCTAssertEqual(ghost.state, batch.state)
        XCTAssertEqual(dx.scalars, expectedGradient)
        XCTAssertEqual(ghost.parameters.map(\.gradient), parameterGradients)
    }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertThrowsError(try GhostBatchNorm(channelCount: 2, virtualBatchSize: 0))
        // The last virtual batch of one 2-D sample: an error, and no running statistic moved.
        let ghost = try GhostBatchNorm(channelCount: 2, virtualBatchSize: 2)
        let before = ghost.state
        XCTAssertThrowsError(try ghost.forward(randomTensor([3, 2], seed: 1), mode: .training)) {
            XCTAssertEqual($0 as? NormalizerError, .singleValuePerChannel(kind: .ghostbatch, shape: [1, 2]))
        }
        XCTAssertEqual(ghost.state, before)
        XCTAssertThrowsError(try NormalizerSettings(kind: .ghostbatch, ["virtual_batch_size": -1]).makeNormalizer(channelCount: 2))
    }

    func testLargeOffset() throws {
        // Virtual batches of 4 samples: each channel standardized over its 4 samples' planes.
        let checks = NormalizerChecks(kind: .ghostbatch, settings: ["virtual_batch_size": 4])
        try checks.accurateWithALargeOffset(members: { shape in
            let quarter = [4] + shape.dropFirst()
            return (0..<shape[0] / 4).flatMap { group in
                NormalizerChecks.perChannel(quarter).map { $0.map { $0 + group * quarter.reduce(1, *) } }
            }
        })
    }

    func testThreadCount() throws { try NormalizerChecks(kind: .ghostbatch, settings: ["virtual_batch_size": 8]).sameBitsOnAnyThreadCount() }
}
