import XCTest
@testable import NormLab

/// Convolutions of other kernels, strides and paddings than 3×3, stride 1: the direct definition,
/// finite differences, and chunks.
final class ConvolutionGeometryTests: XCTestCase {
    private let geometries = [
        ConvolutionGeometry(kernel: 3, stride: 2, padding: 1), ConvolutionGeometry(kernel: 1, stride: 2, padding: 0),
        ConvolutionGeometry(kernel: 1, stride: 1, padding: 0), ConvolutionGeometry(kernel: 3, stride: 1, padding: 0),
    ]

    func testOutputSizes() {
        XCTAssertEqual(ConvolutionGeometry(kernel: 3, stride: 2, padding: 1).outputSize(28), 14)
        XCTAssertEqual(ConvolutionGeometry(kernel: 3, stride: 2, padding: 1).outputSize(7), 4)
        XCTAssertEqual(ConvolutionGeometry(kernel: 1, stride: 2, padding: 0).outputSize(7), 4)
        XCTAssertEqual(ConvolutionGeometry.same3x3.outputSize(5), 5)
    }

    func testMatchesDirectDefinition() {
        for geometry in geometries {
            var generator = SeededGenerator(seed: 8)
            let conv = Conv2D(inputChannels: 2, outputChannels: 3, geometry: geometry, bias: true, generator: &generator)
            conv.bias!.value = generator.normals(3)
            let (h, w) = (7, 6)
            let x = randomTensor([2, 2, h, w], seed: 9)
            var y = Tensor(shape: [0])
            conv.forward(x, into: &y)
            let (oh, ow, k) = (geometry.outputSize(h), geometry.outputSize(w), geometry.kernel)
            XCTAssertEqual(y.shape, [2, 3, oh, ow], "\(geometry)")
            for n in 0..<2 { for o in 0..<3 { for r in 0..<oh { for c in 0..<ow {
                var total: Float = 0
                for i in 0..<2 { for ky in 0..<k { for kx in 0..<k {
                    let (rr, cc) = (r * geometry.stride + ky - geometry.padding, c * geometry.stride + kx - geometry.padding)
                    guard rr >= 0, rr < h, cc >= 0, cc < w else { continue }
                    total += conv.weight.value[((o * 2 + i) * k + ky) * k + kx] * x.scalars[((n * 2 + i) * h + rr) * w + cc]
                } } }
                let got = y.scalars[((n * 3 + o) * oh + r) * ow + c]
                XCTAssertEqual(got, total + conv.bias!.value[o], accuracy: 1e-4, "\(geometry) at \(n), \(o), \(r), \(c)")
            } } } }
        }
    }

    func testBackwardMatchesFiniteDifferences() throws {
        for geometry in geometries {
            var generator = SeededGenerator(seed: 5)
            let conv = Conv2D(inputChannels: 3, outputChannels: 4, geometry: geometry, bias: true, generator: &generator)
            try LayerCheck().check(conv, input: randomTensor([2, 3, 7, 6], seed: 6))
        }
    }

    func testChunksGiveTheSameBitsAsOneWholeBatch() throws {
        for geometry in geometries {
            var generator = SeededGenerator(seed: 10)
            let whole = Conv2D(inputChannels: 3, outputChannels: 5, geometry: geometry, bias: true, generator: &generator)
            generator = SeededGenerator(seed: 10)
            let chunked = Conv2D(inputChannels: 3, outputChannels: 5, geometry: geometry, bias: true, generator: &generator)
            chunked.kernel.chunkEntries = 3 * 3 * geometry.windowSize * 12
            let x = randomTensor([20, 3, 7, 6], seed: 11)
            var results: [[UInt32]] = []
            for conv in [whole, chunked] {
                let y = try conv.forward(x, mode: .training)
                let dx = try conv.backward(randomTensor(y.shape, seed: 13))
                results.append((y.scalars + dx.scalars + conv.weight.gradient + conv.bias!.gradient).map(\.bitPattern))
            }
            XCTAssertEqual(results[0], results[1], "\(geometry)")
        }
    }

    func testAPlaneTooSmallForTheWindowIsAClearError() {
        var generator = SeededGenerator(seed: 1)
        let conv = Conv2D(inputChannels: 1, outputChannels: 2, geometry: ConvolutionGeometry(kernel: 3, stride: 1, padding: 0), bias: false, generator: &generator)
        XCTAssertThrowsError(try conv.outputShape(for: [1, 1, 2, 2])) { XCTAssertTrue("\($0)".contains("cannot take a 2×2 plane"), "\($0)") }
        XCTAssertThrowsError(try conv.outputShape(for: [1, 3, 8, 8])) { XCTAssertTrue("\($0)".contains("from 1 channels"), "\($0)") }
    }
}
