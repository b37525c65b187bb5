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

    /// Each pool's backward pass through the ReLU before it, in one pass, gives the bits of the
    /// two passes it replaces (pool backward, then ReLU backward), with zeros, NaN and -0 about.
    func testBackwardThroughReLUMatchesTwoPasses() {
        let relu = ReLU()
        for (n, c, h, w) in [(2, 3, 4, 16), (1, 2, 6, 6), (2, 2, 28, 28), (1, 1, 2, 34), (3, 4, 14, 14), (1, 2, 4, 18), (32, 16, 6, 6)] {
            var generator = SeededGenerator(seed: UInt64(h * 100 + w))
            let choices: [Float] = [-1, -0.0, 0, 0.5, 2, .nan]
            let before = (0..<(n * c * h * w)).map { _ in choices[Int(generator.next() % 6)] }
            var rectified = Tensor(shape: [0]), y = Tensor(shape: [0])
            relu.forward(try! Tensor(shape: [n, c, h, w], scalars: before), into: &rectified)
            let pool = MaxPool2D()
            pool.forward(rectified, into: &y)
            let dy = try! Tensor(shape: y.shape, scalars: (0..<y.count).map { [-0.0, 1.5, -2][$0 % 3] })
            var routed = Tensor(shape: [0]), expected = Tensor(shape: [0]), fused = Tensor(shape: [0])
            pool.backward(dy, into: &routed)
            relu.backward(routed, output: rectified, into: &expected)
            pool.backward(dy, into: &fused, rectifiedOutput: y)
            XCTAssertEqual(fused.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "max pool \(n)×\(c)×\(h)×\(w)")

            let average = GlobalAveragePool()
            var features = Tensor(shape: [0])
            average.forward(rectified, into: &features)
            let df = try! Tensor(shape: features.shape, scalars: (0..<features.count).map { [3, -0.0, -1.25][$0 % 3] })
            var spread = Tensor(shape: [0])
            average.backward(df, into: &spread)
            relu.backward(spread, output: rectified, into: &expected)
            average.backward(df, into: &fused, rectifiedInput: rectified)
            XCTAssertEqual(fused.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "average pool \(n)×\(c)×\(h)×\(w)")
        }
    }
}
