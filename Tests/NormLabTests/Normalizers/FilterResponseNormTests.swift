import XCTest
@testable import NormLab

/// FRN with TLU: fixtures, finite differences (through the threshold), the same output in both
/// modes, its errors, a large offset (x / rms over each plane) and the thread count; in a model
/// its threshold takes the place of the ReLU.
final class FilterResponseNormTests: XCTestCase {
    private let checks = NormalizerChecks(kind: .frn)

    func testFixtures() throws { try checks.fixturesPass() }

    func testFiniteDifferences() throws {
        // τ is drawn around 0, so some outputs are the threshold: its gradient is checked too.
        // A smaller step than the others', so that a difference quotient does not straddle the
        // threshold's kink.
        try checks.gradientsMatchFiniteDifferences("frn", shape: [2, 3, 4, 4], step: 1e-3) { try! FilterResponseNorm(channelCount: 3) }
        try checks.gradientsMatchFiniteDifferences("frn 1×2", shape: [3, 2, 1, 2], step: 1e-3) { try! FilterResponseNorm(channelCount: 2) }
    }

    func testInferenceEqualsTraining() throws { try checks.inferenceEqualsTraining(shape: [3, 6, 5, 5]) }

    func testErrors() throws {
        try checks.commonErrors()
        XCTAssertThrowsError(try FilterResponseNorm(channelCount: 3).forward(Tensor(shape: [2, 3]), mode: .training)) {
            XCTAssertEqual($0 as? NormalizerError, .needsSpatialInput(shape: [2, 3], kind: .frn))
        }
        XCTAssertThrowsError(try FilterResponseNorm(channelCount: 3, epsilon: 0)) { XCTAssertEqual($0 as? NormalizerError, .invalidEpsilon(0)) }
    }

    func testLargeOffset() throws {
        try checks.accurateWithALargeOffset(
            members: NormalizerChecks.perPlane,
            reference: { values in
                let meanSquare = values.reduce(0) { $0 + $1 * $1 } / Double(values.count)
                return values.map { max($0 / (meanSquare + 1e-6).squareRoot(), 0) }
            })
    }

    func testThreadCount() throws { try checks.sameBitsOnAnyThreadCount() }

    func testItsThresholdReplacesTheReLUAndItCannotBePlacedAfterIt() throws {
        let network = try SmallCNN.make(normalizer: NormalizerSettings(kind: .frn), seed: 1)
        let layers = network.body.layers
        for (index, layer) in layers.enumerated() where layer is NormalizerLayer {
            XCTAssertFalse(layers[index + 1] is ReLU, "a ReLU after FRN at layer \(index)")
        }
        XCTAssertFalse(layers.contains { $0 is ReLU })
        XCTAssertThrowsError(try SmallCNN.make(normalizer: NormalizerSettings(kind: .frn), placement: .after, seed: 1)) {
            XCTAssertTrue("\($0)".contains("cannot be placed after the ReLU"), "\($0)")
        }
        XCTAssertThrowsError(try ModelSettings(name: "smallcnn").validate(normalizer: NormalizerSettings(kind: .frn), placement: .after))
    }
}
