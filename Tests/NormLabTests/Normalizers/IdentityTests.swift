import XCTest
@testable import NormLab

/// "none": the identity in a norm slot. Finite differences, its errors and the thread count.
final class IdentityTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .none)

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("none", shape: [2, 3, 2, 2]) { try! Identity(channelCount: 3) }
    }

    func testInferenceEqualsTraining() throws { try checks.inferenceEqualsTraining(shape: [3, 6, 5, 5]) }

    func testErrors() throws { try checks.commonErrors() }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }
}
