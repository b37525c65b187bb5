import XCTest
@testable import NormLab

/// RMSNorm: fixtures, finite differences, the same output in both modes, its errors, a large
/// offset (it does not centre: x / rms(x)) and the thread count.
final class RMSNormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .rms)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("rms 4-D", shape: [2, 4, 3, 3]) { try! RMSNorm(channelCount: 4) }
        try checks.gradientsMatchFiniteDifferences("rms 2-D", shape: [3, 7]) { try! RMSNorm(channelCount: 7) }
    }

    func testInferenceEqualsTraining() throws { try checks.inferenceEqualsTraining(shape: [3, 6, 5, 5]) }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertEqual(RMSNorm.registration.kind.registration.displayName, "RMSNorm")
        XCTAssertThrowsError(try RMSNorm(channelCount: 0)) { XCTAssertEqual($0 as? NormalizerError, .invalidChannelCount(0)) }
        XCTAssertThrowsError(try RMSNorm(channelCount: 3).setParameter(named: "beta", to: [0, 0, 0])) {
            XCTAssertEqual($0 as? NormalizerError, .unknownParameter(kind: .rms, name: "beta"))
        }
    }

    func testLargeOffset() throws {
        try checks.accurateWithALargeOffset(
            members: { NormalizerChecks.perSampleGroup($0, channelsPerGroup: $0[1]) },
            reference: { values in
                let meanSquare = values.reduce(0) { $0 + $1 * $1 } / Double(values.count)
                return values.map { $0 / (meanSquare + 1e-5).squareRoot() }
            })
    }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }
}
