import Foundation
import XCTest
@testable import NormLab

/// EvoNorm-S0: fixtures, finite differences (γ, β and v), the same output in both modes, its
/// errors, a large offset (x·sigmoid(x) over the group's standard deviation) and the thread count.
final class EvoNormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .evonorm, groups: 2)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        try checks.gradientsMatchFiniteDifferences("evonorm G=2", shape: [2, 4, 3, 3]) { try! EvoNorm(channelCount: 4, groupCount: 2) }
        try checks.gradientsMatchFiniteDifferences("evonorm G=1", shape: [3, 3, 2, 2]) { try! EvoNorm(channelCount: 3, groupCount: 1) }
    }

    func testInferenceEqualsTraining() throws { try checks.inferenceEqualsTraining(shape: [3, 6, 5, 5]) }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertThrowsError(try EvoNorm(channelCount: 6, groupCount: 4)) {
            XCTAssertEqual($0 as? NormalizerError, .groupsDoNotDivideChannels(channels: 6, groups: 4))
        }
        XCTAssertThrowsError(try EvoNorm(channelCount: 4, groupCount: 2).forward(Tensor(shape: [2, 4]), mode: .training)) {
            XCTAssertEqual($0 as? NormalizerError, .needsSpatialInput(shape: [2, 4], kind: .evonorm))
        }
        XCTAssertThrowsError(try SmallCNN.make(normalizer: NormalizerSettings(kind: .evonorm), placement: .after, seed: 1))
    }

    func testLargeOffset() throws {
        try checks.accurateWithALargeOffset(
            members: { NormalizerChecks.perSampleGroup($0, channelsPerGroup: $0[1] / 2) },
            reference: { values in
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
                return values.map { $0 / (1 + exp(-$0)) / (variance + 1e-5).squareRoot() }
            })
    }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }
}
