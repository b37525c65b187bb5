import XCTest
@testable import NormLab

/// Max pooling against a per-window definition, with many ties, on widths that use the
/// eight-window vector path, an overlapping last group, and rows shorter than eight windows
/// (the last two shapes large enough to be split over the threads, so that short rows meet the
/// ends of the threads' row ranges).
final class MaxPoolTests: XCTestCase {
    func testMatchesDefinitionIncludingTies() {
        for (n, c, h, w) in [(2, 3, 4, 16), (1, 2, 6, 6), (2, 2, 28, 28), (1, 1, 2, 34), (3, 4, 14, 14), (2, 1, 2, 2), (1, 2, 4, 18), (1, 1, 2, 30),
                             (32, 16, 6, 6), (256, 16, 2, 2)] {
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

    func testNaNAndNegativeZero() {
        let nan = Float.nan
        // A NaN that comes first stays; a later NaN never replaces a value.
        let x = try! Tensor(shape: [1, 1, 2, 4], scalars: [nan, 5, 2, nan, 3, 4, 1, 0])
        let pool = MaxPool2D()
        var y = Tensor(shape: [0]), dx = Tensor(shape: [0])
        pool.forward(x, into: &y)
        XCTAssertTrue(y.scalars[0].isNaN)
        XCTAssertEqual(y.scalars[1], 2)
        // A gradient of -0 arrives as +0, as adding it to a zeroed gradient gives.
        pool.backward(try! Tensor(shape: [1, 1, 1, 2], scalars: [-0.0, 7]), into: &dx)
        XCTAssertEqual(dx.scalars.map(\.bitPattern), [Float](arrayLiteral: 0, 0, 7, 0, 0, 0, 0, 0).map(\.bitPattern))
    }
}
