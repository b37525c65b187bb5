import XCTest
@testable import NormLab

/// Instance norm: fixtures, finite differences, the same output in both modes (it keeps no
/// statistics), its errors, a large offset and the thread count.
final class InstanceNormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .instance)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("instance", shape: [2, 3, 4, 4]) { try! GroupNorm(channelCount: 3, grouping: .instance) }
    }

    func testInferenceEqualsTraining() throws {
        try checks.inferenceEqualsTraining(shape: [3, 6, 5, 5])
    }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertThrowsError(try GroupNorm(channelCount: 3, grouping: .instance, epsilon: -1)) { XCTAssertEqual($0 as? NormalizerError, .invalidEpsilon(-1)) }
        // Instance norm needs spatial positions: [N, C] is refused.
        XCTAssertThrowsError(try GroupNorm(channelCount: 4, grouping: .instance).forward(Tensor(shape: [2, 4]), mode: .training)) {
            XCTAssertEqual($0 as? NormalizerError, .needsSpatialInput(shape: [2, 4], kind: .instance))
        }
    }

    func testLargeOffset() throws { try checks.accurateWithALargeOffset(members: { NormalizerChecks.perSampleGroup($0, channelsPerGroup: 1) }) }

    func testConstantInput() throws { try checks.constantInputGivesBeta() }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }
}
