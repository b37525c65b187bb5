import XCTest
@testable import NormLab

/// The residual block, SkipInit's scale and the norm slot: finite differences, and the addition
/// and its ReLU exactly.
final class ResidualTests: XCTestCase {
    /// A block whose sum stays well above zero (betas of 3), so that the ReLU after the addition
    /// has no kink for the finite differences to straddle.
    private func block(projection: Bool, seed: UInt64) throws -> Residual {
        var generator = SeededGenerator(seed: seed)
        let (input, output) = projection ? (3, 4) : (4, 4)
        func norm(_ channels: Int) throws -> NormalizerLayer {
            let layer = NormalizerLayer(try GroupNorm(channelCount: channels, groupCount: 2))
            layer.normalizer.affine = AffineParameters(
                gamma: generator.normals(channels, mean: 1, std: 0.2), beta: [Float](repeating: 3, count: channels))
            return layer
        }
        let body = Sequential([
            Conv2D(inputChannels: input, outputChannels: output, geometry: .init(kernel: 3, stride: projection ? 2 : 1, padding: 1), bias: false, generator: &generator),
            try norm(output), ReLU(),
            Conv2D(inputChannels: output, outputChannels: output, bias: false, generator: &generator),
            try norm(output),
        ])
        let shortcut = projection
            ? Sequential([Conv2D(inputChannels: input, outputChannels: output, geometry: .init(kernel: 1, stride: 2, padding: 0), bias: false, generator: &generator), try norm(output)])
            : nil
        return Residual(body: body, shortcut: shortcut)
    }

    func testIdentityShortcutMatchesFiniteDifferences() throws {
        try LayerCheck(tolerance: 5e-3).check(try block(projection: false, seed: 1), input: randomTensor([2, 4, 5, 6], seed: 2, mean: 3))
    }

    func testProjectionShortcutMatchesFiniteDifferences() throws {
        try LayerCheck(tolerance: 5e-3).check(try block(projection: true, seed: 3), input: randomTensor([2, 3, 6, 6], seed: 4))
    }

    func testTheAdditionAndItsReLU() throws {
        // Body: a scale of 1 (y = x); shortcut: the identity. Output max(2x, 0); gradient 2·dy where x > 0.
        let residual = Residual(body: Sequential([Scale(initialValue: 1)]))
        let x = try Tensor(shape: [1, 1, 2, 2], scalars: [1.5, -2, 0, 3])
        let y = try residual.forward(x, mode: .training)
        XCTAssertEqual(y.scalars, [3, 0, 0, 6])
        let dx = try residual.backward(try Tensor(shape: [1, 1, 2, 2], scalars: [1, 1, 1, -1]))
        XCTAssertEqual(dx.scalars, [2, 0, 0, -2])
        XCTAssertThrowsError(try Residual(body: Sequential([MaxPool2D()])).outputShape(for: [1, 1, 4, 4])) {
            XCTAssertTrue("\($0)".contains("needs a projection"), "\($0)")
        }
    }

    func testScaleMatchesFiniteDifferences() throws {
        try LayerCheck().check(Scale(initialValue: 0.7), input: randomTensor([2, 3, 4, 4], seed: 5))
        // At 0 (SkipInit's start) the branch passes nothing, but α still learns.
        let scale = Scale(initialValue: 0)
        let x = randomTensor([1, 2, 2, 2], seed: 6)
        XCTAssertEqual(try scale.forward(x, mode: .training).scalars, [Float](repeating: 0, count: 8))
        _ = try scale.backward(x)
        XCTAssertEqual(Double(scale.scale.gradient[0]), x.scalars.reduce(0.0) { $0 + Double($1 * $1) }, accuracy: 1e-5)
    }

    func testNormSlotAndPoolsMatchFiniteDifferences() throws {
        // (A normalizer that draws noise redraws it at each forward: its own test case checks its
        // gradients with one draw.)
        for kind in builtInKinds where kind.registration.fillsSlots && !kind.registration.drawsNoise {
            let layer = NormalizerLayer(makeNormalizer(kind, channels: 4, groups: 2))
            layer.normalizer.affine = AffineParameters(gamma: [1.2, 0.8, 1.1, 0.9], beta: [0.1, -0.2, 0.3, 0])
            try LayerCheck(tolerance: 5e-3).check(layer, input: randomTensor([3, 4, 3, 3], seed: 7))
        }
        try LayerCheck().check(GlobalAveragePool(), input: randomTensor([2, 3, 4, 5], seed: 8))
        var generator = SeededGenerator(seed: 9)
        try LayerCheck().check(Linear(inputCount: 5, outputCount: 3, generator: &generator), input: randomTensor([4, 5], seed: 10))
    }
}
