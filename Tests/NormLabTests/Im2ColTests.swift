import XCTest
@testable import NormLab

/// The block-copy im2col and its adjoint against plain per-element definitions, bit for bit,
/// on shapes with one row or one column, where every shifted block wraps.
final class Im2ColTests: XCTestCase {
    /// With the model's planes (28, 14 and 7 wide), and single rows and columns long enough for
    /// the fold's eight-wide path.
    private let shapes = [(2, 3, 5, 6), (1, 2, 1, 4), (1, 2, 4, 1), (2, 1, 1, 1), (3, 2, 7, 7), (2, 3, 14, 14), (1, 2, 28, 28),
                          (2, 2, 1, 17), (2, 2, 17, 1), (1, 1, 2, 4)]

    func testUnfoldMatchesDefinition() {
        for (n, c, h, w) in shapes {
            let x = randomTensor([n, c, h, w], seed: UInt64(h * 10 + w)).scalars
            let p = h * w
            var columns = [Float](repeating: .nan, count: c * 9 * n * p)
            x.withUnsafeBufferPointer { x in columns.withUnsafeMutableBufferPointer { columns in
                Im2Col.unfold(x.baseAddress!, into: columns.baseAddress!, batch: n, channels: c, height: h, width: w)
            } }
            for row in 0..<(c * 9) { for sample in 0..<n { for y in 0..<h { for xx in 0..<w {
                let channel = row / 9, ky = row % 9 / 3 - 1, kx = row % 3 - 1
                let (sy, sx) = (y + ky, xx + kx)
                let expected = sy >= 0 && sy < h && sx >= 0 && sx < w ? x[((sample * c + channel) * h + sy) * w + sx] : 0
                XCTAssertEqual(columns[row * n * p + sample * p + y * w + xx], expected, "\(n)×\(c)×\(h)×\(w) row \(row)")
            } } } }
        }
    }

    func testPanelsHoldEachSamplesTranspose() {
        // 8 × 8 tiles, with channel and position counts that leave partial tiles and a partial
        // last panel (zero past the last channel).
        for (n, c, p) in [(2, 16, 49), (1, 13, 20), (3, 8, 8), (1, 3, 7), (2, 64, 1), (2, 40, 9)] {
            let x = randomTensor([n * c * p], seed: UInt64(c * 100 + p)).scalars
            let panelStride = n * p * 16
            var panels = [Float](repeating: .nan, count: (c + 15) / 16 * panelStride)
            x.withUnsafeBufferPointer { x in panels.withUnsafeMutableBufferPointer { panels in
                Im2Col.nchwToPanels(x.baseAddress!, panels.baseAddress!, batch: n, channels: c, positions: p)
            } }
            for sample in 0..<n { for channel in 0..<((c + 15) / 16 * 16) { for position in 0..<p {
                let expected = channel < c ? x[(sample * c + channel) * p + position] : 0
                XCTAssertEqual(panels[channel / 16 * panelStride + (sample * p + position) * 16 + channel % 16].bitPattern, expected.bitPattern,
                               "\(n)×\(c)×\(p) at (\(sample), \(channel), \(position))")
            } } }
        }
    }

    func testFoldMatchesDefinitionExactly() {
        for (n, c, h, w) in shapes {
            let p = h * w
            var columns = randomTensor([c * 9 * n * p], seed: UInt64(h * 7 + w)).scalars
            // Entries that read outside the plane are never added (unfold made them 0; in a
            // column gradient they may be anything): NaN there must not reach dx.
            for row in 0..<(c * 9) { for sample in 0..<n { for y in 0..<h { for xx in 0..<w {
                let (sy, sx) = (y + row % 9 / 3 - 1, xx + row % 3 - 1)
                if sy < 0 || sy >= h || sx < 0 || sx >= w { columns[row * n * p + sample * p + y * w + xx] = .nan }
            } } } }
            var dx = [Float](repeating: .nan, count: n * c * p)
            columns.withUnsafeBufferPointer { columns in dx.withUnsafeMutableBufferPointer { dx in
                Im2Col.fold(
                    columns.baseAddress!, into: dx.baseAddress!, batch: n, channels: c, height: h, width: w,
                    keeps: Im2Col.foldKeeps(height: h, width: w))
            } }
            // The same sums in the same order: offsets (ky, kx) in row-major order, from zero.
            for sample in 0..<n { for channel in 0..<c { for y in 0..<h { for xx in 0..<w {
                var total: Float = 0
                for offset in 0..<9 {
                    let ky = offset / 3 - 1, kx = offset % 3 - 1
                    let (cy, cx) = (y - ky, xx - kx)  // the column entry that read (y, xx)
                    guard cy >= 0, cy < h, cx >= 0, cx < w else { continue }
                    total += columns[(channel * 9 + offset) * n * p + sample * p + cy * w + cx]
                }
                XCTAssertEqual(dx[((sample * c + channel) * h + y) * w + xx].bitPattern, total.bitPattern,
                               "\(n)×\(c)×\(h)×\(w) at \(sample), \(channel), \(y), \(xx)")
            } } } }
        }
    }
}
