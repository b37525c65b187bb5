import XCTest
@testable import NormLab

/// Max pooling against a per-window definition, with many ties, on widths that use the
/// eight-window vector path, the one-by-one path, and both.
final class MaxPoolTests: XCTestCase {
    func testMatchesDefinitionIncludingTies() {
        for (n, c, h, w) in [(2, 3, 4, 16), (1, 2, 6, 6), (2, 2, 28, 28), (1, 1, 2, 34), (3, 4, 14, 14)] {
            // Values from a small set, so windows often hold equal maxima; the first wins.
            var generator = SeededGenerator(seed: UInt64(h * 100 + w))
            let values = (0..<(n * c * h * w)).map { _ in Float(Int(generator.next() % 4)) - 1 }
            let x = try! Tensor(shape: [n, c, h, w], scalars: values)
            let pool = MaxPool2D()
            var y = Tensor(shape: [0]), dx = Tensor(shape: [0])
            pool.forward(x, into: &y)
            let (oh, ow) = (h / 2, w / 2)
            var expectedY: [Float] = [], expectedDx = [Float](repeating: 0, count: x.count)
            let dy = (0..<(n * c * oh * ow)).map { Float($0 + 1) }
            for plane in 0..<(n * c) { for oy in 0..<oh { for ox in 0..<ow {
                let window = [0, 1, w, w + 1].map { plane * h * w + 2 * oy * w + 2 * ox + $0 }
                var best = window[0]
                for index in window.dropFirst() where values[index] > values[best] { best = index }
                expectedY.append(values[best])
                expectedDx[best] = dy[expectedY.count - 1]
            } } }
            XCTAssertEqual(y.shape, [n, c, oh, ow])
            XCTAssertEqual(y.scalars, expectedY, "\(n)×\(c)×\(h)×\(w)")
            pool.backward(try! Tensor(shape: y.shape, scalars: dy), into: &dx)
            XCTAssertEqual(dx.scalars, expectedDx, "\(n)×\(c)×\(h)×\(w): each window's gradient goes to its first maximum")
        }
    }
}
