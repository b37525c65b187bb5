import XCTest
@testable import NormLab

/// Everything a user can get wrong is a typed error with a message, never a crash.
final class NormalizerErrorTests: XCTestCase {
    private func assertError(
        _ expected: NormalizerError, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual(error as? NormalizerError, expected, file: file, line: line)
            XCTAssertFalse("\(error)".isEmpty)
        }
    }

    func testConstructionErrors() {
        assertError(.groupsDoNotDivideChannels(channels: 6, groups: 4)) { _ = try GroupNorm(channelCount: 6, groupCount: 4) }
        assertError(.invalidGroupCount(0)) { _ = try GroupNorm(channelCount: 6, groupCount: 0) }
        assertError(.invalidGroupCount(-2)) { _ = try GroupNorm(channelCount: 6, groupCount: -2) }
        assertError(.invalidChannelCount(0)) { _ = try LayerNorm(channelCount: 0) }
        assertError(.invalidEpsilon(0)) { _ = try BatchNorm(channelCount: 3, epsilon: 0) }
        assertError(.invalidEpsilon(-1)) { _ = try InstanceNorm(channelCount: 3, epsilon: -1) }
        assertError(.invalidMomentum(1.5)) { _ = try BatchNorm(channelCount: 3, momentum: 1.5) }
        assertError(.invalidMomentum(-0.1)) { _ = try BatchRenorm(channelCount: 3, momentum: -0.1) }
        assertError(.invalidRmax(0.9)) { _ = try BatchRenorm(channelCount: 3, rmax: 0.9) }
        assertError(.invalidDmax(-1)) { _ = try BatchRenorm(channelCount: 3, dmax: -1) }
        XCTAssertEqual(
            "\(NormalizerError.groupsDoNotDivideChannels(channels: 6, groups: 4))".prefix(40),
            "6 channels cannot be split into 4 groups")
    }

    func testParameterLengths() throws {
        let layer = try BatchNorm(channelCount: 3)
        assertError(.parameterLength(name: "gamma", expected: 3, got: 2)) { try layer.setParameters(gamma: [1, 1], beta: [0, 0, 0]) }
        assertError(.parameterLength(name: "beta", expected: 3, got: 4)) { try layer.setParameters(gamma: [1, 1, 1], beta: [0, 0, 0, 0]) }
        assertError(.parameterLength(name: "running variance", expected: 3, got: 1)) {
            try layer.setRunningStatistics(mean: [0, 0, 0], variance: [1])
        }
    }

    func testShapeErrors() throws {
        for kind in NormalizerKind.allCases {
            let layer = makeNormalizer(kind, channels: 4)
            assertError(.unsupportedRank(shape: [2, 4, 3], kind: kind)) { _ = try layer.forward(Tensor(shape: [2, 4, 3]), mode: .training) }
            assertError(.channelMismatch(expected: 4, shape: [2, 5, 3, 3])) { _ = try layer.forward(Tensor(shape: [2, 5, 3, 3]), mode: .training) }
            assertError(.emptyInput(shape: [0, 4, 3, 3])) { _ = try layer.forward(Tensor(shape: [0, 4, 3, 3]), mode: .training) }
        }
        assertError(.unsupportedRank(shape: [2, 4], kind: .instance)) {
            _ = try InstanceNorm(channelCount: 4).forward(Tensor(shape: [2, 4]), mode: .training)
        }
    }

    func testOneValuePerChannelInTraining() throws {
        for kind in [NormalizerKind.batch, .batchrenorm] {
            let layer = makeNormalizer(kind, channels: 4)
            assertError(.singleValuePerChannel(kind: kind, shape: [1, 4])) { _ = try layer.forward(Tensor(shape: [1, 4]), mode: .training) }
            assertError(.singleValuePerChannel(kind: kind, shape: [1, 4, 1, 1])) { _ = try layer.forward(Tensor(shape: [1, 4, 1, 1]), mode: .training) }
            // One sample with several spatial positions, and inference on one value, are fine.
            XCTAssertNoThrow(try layer.forward(Tensor(shape: [1, 4, 2, 2]), mode: .training))
            XCTAssertNoThrow(try layer.forward(Tensor(shape: [1, 4]), mode: .inference))
        }
    }

    func testBackwardErrors() throws {
        for kind in NormalizerKind.allCases {
            let layer = makeNormalizer(kind, channels: 4)
            assertError(.backwardWithoutForward) { _ = try layer.backward(Tensor(shape: [2, 4, 2, 2])) }
            _ = try layer.forward(Tensor(shape: [2, 4, 2, 2]), mode: .training)
            assertError(.gradientShapeMismatch(expected: [2, 4, 2, 2], got: [2, 4, 2, 3])) {
                _ = try layer.backward(Tensor(shape: [2, 4, 2, 3]))
            }
            // A rejected gradient leaves the forward in place; a forward serves one backward.
            _ = try layer.backward(Tensor(shape: [2, 4, 2, 2], repeating: 1))
            assertError(.backwardWithoutForward) { _ = try layer.backward(Tensor(shape: [2, 4, 2, 2])) }
            // Releasing the saved input ends the forward's claim to a backward, in either mode.
            for mode in [NormalizationMode.training, .inference] {
                _ = try layer.forward(Tensor(shape: [2, 4, 2, 2], repeating: 1), mode: mode)
                try XCTUnwrap(layer as? any InputReleasingNormalizer, "\(kind)").releaseSavedInput()
                assertError(.backwardWithoutForward) { _ = try layer.backward(Tensor(shape: [2, 4, 2, 2])) }
            }
        }
    }

    func testTensorErrors() {
        XCTAssertThrowsError(try Tensor(shape: [2, 2], scalars: [1, 2, 3]))
        XCTAssertThrowsError(try Tensor(shape: [-1, 2], scalars: []))
        XCTAssertThrowsError(try Tensor(shape: [], scalars: []))
    }
}
