import XCTest
@testable import NormLab

/// Layer norm: fixtures, finite differences, the same output in both modes (it keeps no
/// statistics), its errors, a large offset and the thread count.
final class LayerNormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .layer)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("layer 4-D", shape: [2, 4, 3, 3]) { try! GroupNorm(channelCount: 4, grouping: .layer) }
        try checks.gradientsMatchFiniteDifferences("layer 2-D", shape: [3, 7]) { try! GroupNorm(channelCount: 7, grouping: .layer) }
    }

    func testInferenceEqualsTraining() throws {
        try checks.inferenceEqualsTraining(shape: [3, 6, 5, 5])
    }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertThrowsError(try GroupNorm(channelCount: 0, grouping: .layer)) { XCTAssertEqual($0 as? NormalizerError, .invalidChannelCount(0)) }
    }

    func testLargeOffset() throws { try checks.accurateWithALargeOffset(members: { NormalizerChecks.perSampleGroup($0, channelsPerGroup: $0[1]) }) }

    func testConstantInput() throws { try checks.constantInputGivesBeta() }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }
}
