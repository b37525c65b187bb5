import XCTest
@testable import NormLab

/// Identities between the methods, which follow from their definitions.
final class NormalizerIdentityTests: XCTestCase {
    private func forwardAndBackward(_ layer: any Normalizer, _ x: Tensor, _ dy: Tensor) throws -> (Tensor, Tensor, AffineParameters) {
        var generator = SeededGenerator(seed: 9)
        let c = layer.channelCount
        try layer.setParameters(gamma: generator.normals(c, mean: 1, std: 0.3), beta: generator.normals(c))
        let y = try layer.forward(x, mode: .training)
        let dx = try layer.backward(dy)
        return (y, dx, layer.affineGradients)
    }

    private func assertSame(_ a: any Normalizer, _ b: any Normalizer, shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let x = randomTensor(shape, seed: 4, mean: 2, std: 3)
        let dy = randomTensor(shape, seed: 5)
        let (y1, dx1, g1) = try forwardAndBackward(a, x, dy)
        let (y2, dx2, g2) = try forwardAndBackward(b, x, dy)
        assertClose(y1.scalars, y2.scalars, tolerance: 1e-5, "output", file: file, line: line)
        assertClose(dx1.scalars, dx2.scalars, tolerance: 1e-5, "grad_input", file: file, line: line)
        assertClose(g1.gamma, g2.gamma, tolerance: 1e-4, "grad_gamma", file: file, line: line)
        assertClose(g1.beta, g2.beta, tolerance: 1e-4, "grad_beta", file: file, line: line)
    }

    func testRectifyingForwardIsReLUAfterTheForward() throws {
        // The fused ReLU gives the same bits as the ReLU layer after the plain forward, in both
        // modes, on shapes whose planes end in 16-, 8- and 1-float remainders, and with
        // exact zeros (beta = 0 and a zero input plane) and NaN kept as the ReLU keeps them.
        for kind in builtInKinds where makeNormalizer(kind, channels: 6) is any RectifyingNormalizer {
            let takesFeatures = (try? makeNormalizer(kind, channels: 3).forward(randomTensor([5, 3], seed: 1), mode: .training)) != nil
            for shape in [[4, 6, 5, 5], [3, 4, 7, 7], [2, 6, 4, 6], [5, 3]] where shape.count == 4 || takesFeatures {
                for mode in [NormalizationMode.training, .inference] {
                    var x = randomTensor(shape, seed: 21, mean: 0.5, std: 2)
                    x.scalars.withUnsafeMutableBufferPointer { x in
                        if shape.count == 4 { for i in 0..<(shape[2] * shape[3]) { x[i] = 0 } }
                        x[x.count - 1] = .nan
                    }
                    func output(rectifying: Bool) throws -> Tensor {
                        let layer = makeNormalizer(kind, channels: shape[1], groups: shape[1] == 6 ? 3 : nil)
                        var generator = SeededGenerator(seed: 22)
                        try layer.setParameters(gamma: generator.normals(shape[1], mean: 1, std: 0.5), beta: [Float](repeating: 0, count: shape[1]))
                        var y = Tensor(shape: [0])
                        try XCTUnwrap(layer as? any RectifyingNormalizer, "\(kind)").forward(x, mode: mode, into: &y, rectifying: rectifying)
                        return y
                    }
                    var rectified = Tensor(shape: [0])
                    ReLU().forward(try output(rectifying: false), into: &rectified)
                    let fused = try output(rectifying: true)
                    XCTAssertEqual(fused.shape, rectified.shape)
                    XCTAssertEqual(fused.scalars.map(\.bitPattern), rectified.scalars.map(\.bitPattern), "\(kind) \(shape) \(mode)")
                }
            }
        }
    }

    func testGroupNormWithOneGroupIsLayerNorm() throws {
        try assertSame(GroupNorm(channelCount: 6, groupCount: 1), GroupNorm(channelCount: 6, grouping: .layer), shape: [3, 6, 5, 5])
    }

    func testGroupNormWithOneGroupPerChannelIsInstanceNorm() throws {
        try assertSame(GroupNorm(channelCount: 6, groupCount: 6), GroupNorm(channelCount: 6, grouping: .instance), shape: [3, 6, 5, 5])
    }

    func testBatchRenormWithoutRoomToCorrectIsBatchNorm() throws {
        let renorm = try BatchRenorm(channelCount: 5, momentum: 0.1, rmax: 1, dmax: 0)
        // Running statistics that differ from the batch's: r and d would be far from 1 and 0,
        // but rmax = 1 and dmax = 0 leave no room.
        try renorm.setRunningStatistics(mean: [3, -3, 1, 0, 2], std: [4, 0.2, 1, 2, 9])
        try assertSame(renorm, BatchNorm(channelCount: 5), shape: [4, 5, 3, 3])
    }

    func testIdentityPassesValuesThrough() throws {
        let x = randomTensor([2, 3, 4, 4], seed: 1)
        let layer = try Identity(channelCount: 3)
        XCTAssertEqual(try layer.forward(x, mode: .training), x)
        XCTAssertEqual(try layer.backward(x), x)
    }
}
