import XCTest
@testable import NormLab

/// Group norm: fixtures, finite differences, the same output in both modes (it keeps no
/// statistics), its errors, a large offset and the thread count.
final class GroupNormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .group, groups: 2)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("group G=2", shape: [2, 6, 3, 3]) { try! GroupNorm(channelCount: 6, groupCount: 2) }
        try checks.gradientsMatchFiniteDifferences("group 2-D", shape: [3, 8]) { try! GroupNorm(channelCount: 8, groupCount: 4) }
    }

    func testInferenceEqualsTraining() throws {
        try checks.inferenceEqualsTraining(shape: [3, 6, 5, 5])
    }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertThrowsError(try GroupNorm(channelCount: 6, groupCount: 4)) {
            XCTAssertEqual($0 as? NormalizerError, .groupsDoNotDivideChannels(channels: 6, groups: 4))
            XCTAssertEqual("\($0)".prefix(40), "6 channels cannot be split into 4 groups")
        }
        XCTAssertThrowsError(try GroupNorm(channelCount: 6, groupCount: 0)) { XCTAssertEqual($0 as? NormalizerError, .invalidGroupCount(0)) }
        XCTAssertThrowsError(try GroupNorm(channelCount: 6, groupCount: -2)) { XCTAssertEqual($0 as? NormalizerError, .invalidGroupCount(-2)) }
    }

    func testLargeOffset() throws { try checks.accurateWithALargeOffset(members: { NormalizerChecks.perSampleGroup($0, channelsPerGroup: 2) }) }

    func testConstantInput() throws { try checks.constantInputGivesBeta() }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }
}
