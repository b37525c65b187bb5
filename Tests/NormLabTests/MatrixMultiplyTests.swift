import XCTest
@testable import NormLab

/// The packed matrix product against a plain triple loop, on the awkward sizes convolutions use.
final class MatrixMultiplyTests: XCTestCase {
    private func naive(_ a: [Float], _ aRow: Int, _ aCol: Int, _ b: [Float], _ bRow: Int, _ bCol: Int, m: Int, n: Int, k: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var total = 0.0
            for p in 0..<k { total += Double(a[i * aRow + p * aCol]) * Double(b[p * bRow + j * bCol]) }
            c[i * n + j] = Float(total)
        } }
        return c
    }

    /// Runs `body` with the 256-bit tiles, and again with the 512-bit ones where the processor
    /// has AVX-512.
    private func forEachTileWidth(_ body: (String) throws -> Void) rethrows {
        for wide in MatrixMultiply.wideTilesAvailable ? [false, true] : [false] {
            try withExecution(wideTiles: wide) { try body(wide ? "512-bit tiles" : "256-bit tiles") }
        }
    }

    func testAgainstNaiveProductWithTransposesAndEdges() {
        forEachTileWidth { tiles in assertAgainstNaiveProduct(tiles) }
    }

    private func assertAgainstNaiveProduct(_ tiles: String) {
        let workspace = MatrixWorkspace()
        // (16, 9, 4000): one column panel, so two threads split the row panels instead.
        // Row panels end with 1 to 5 rows; 4 and 2 (16, 64, 32 channels) have kernels of their own.
        // The 512-bit tiles take 8 rows and 32 columns, or 16 at an odd panel or the edge:
        // (24, 80, 70) has two pairs and a single panel, (9, 64, 300) a 1-row edge under pairs.
        for (m, n, k) in [(1, 1, 1), (6, 16, 4), (7, 17, 9), (16, 1568, 9), (13, 50, 300), (64, 288, 49), (5, 3, 600), (16, 9, 4000),
                          (32, 48, 300), (10, 32, 17), (11, 33, 5), (9, 16, 260), (24, 80, 70), (9, 64, 300)] {
            for (transposeA, transposeB) in [(false, false), (true, false), (false, true)] {
                let a = randomTensor([m * k], seed: UInt64(m * 31 + k)).scalars
                let b = randomTensor([k * n], seed: UInt64(n * 17 + k)).scalars
                let (aRow, aCol) = transposeA ? (1, m) : (k, 1)
                let (bRow, bCol) = transposeB ? (1, k) : (n, 1)
                let expected = naive(a, aRow, aCol, b, bRow, bCol, m: m, n: n, k: k)
                var c = [Float](repeating: 1, count: m * n)
                a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                    MatrixMultiply.multiply(
                        MatrixView(a.baseAddress!, rowStride: aRow, columnStride: aCol),
                        MatrixView(b.baseAddress!, rowStride: bRow, columnStride: bCol),
                        into: c.baseAddress!, cRowStride: n, m: m, n: n, k: k, accumulate: false, workspace: workspace)
                } } }
                assertClose(c, expected, tolerance: 1e-4, "\(m)×\(n)×\(k) transposes \(transposeA) \(transposeB), \(tiles)")
                // Accumulating adds the product again.
                a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                    MatrixMultiply.multiply(
                        MatrixView(a.baseAddress!, rowStride: aRow, columnStride: aCol),
                        MatrixView(b.baseAddress!, rowStride: bRow, columnStride: bCol),
                        into: c.baseAddress!, cRowStride: n, m: m, n: n, k: k, accumulate: true, workspace: workspace)
                } } }
                assertClose(c, expected.map { 2 * $0 }, tolerance: 1e-4, "accumulate \(m)×\(n)×\(k), \(tiles)")
            }
        }
    }

    func testWideTilesGiveTheSameBits() throws {
        guard MatrixMultiply.wideTilesAvailable else { throw XCTSkip("this processor has no AVX-512") }
        // The convolutions' shapes at batch 8 (forward, input gradient, weight gradient), edges,
        // and depth pieces that start and end inside depth blocks.
        for (m, n, k, pieces) in [(16, 6272, 9, [0, 9]), (32, 1568, 144, [0, 144]), (144, 1568, 32, [0, 32]),
                                  (9, 16, 6272, [0, 100, 3000, 6272]), (288, 64, 392, [0, 49, 300, 392]),
                                  (13, 50, 300, [0, 300]), (7, 17, 600, [0, 257, 600])] {
            let a = randomTensor([m * k], seed: 3).scalars, b = randomTensor([k * n], seed: 4).scalars
            let results = [false, true].map { wide in
                withExecution(wideTiles: wide) {
                    b.withUnsafeBufferPointer { b in
                        productInPieces(a, m: m, n: n, k: k, pieces: pieces) { MatrixView(b.baseAddress! + $0 * n, columns: n) }
                    }
                }
            }
            XCTAssertEqual(results[0], results[1], "\(m)×\(n)×\(k), pieces \(pieces)")
        }
    }

    func testSegmentedColumnsAreTheSameProduct() {
        // B's and C's columns in runs of `length` (an NCHW tensor's planes, `stride` apart), as
        // convolutions use them: the same bits as the plain product, written only where the
        // runs are. Runs shorter than a tile (4, 16), the convolutions' 49, 196 and 784, and
        // depths over one block (288), with both tile widths and 1 or 2 threads.
        forEachTileWidth { tiles in
            for (m, length, samples, k) in [(16, 4, 7, 9), (32, 16, 5, 20), (64, 49, 8, 288), (144, 196, 3, 32), (16, 784, 2, 9), (9, 49, 2, 64)] {
                // Planes of m + 1 (C) and k + 1 (B) rows: each sample's last row is not the product's.
                let n = length * samples, stride = (m + 1) * length, bStride = (k + 1) * length
                let a = randomTensor([m * k], seed: 11).scalars
                let plainB = randomTensor([k * n], seed: 12).scalars
                // B (k × n) as planes: row i of sample s at s·stride + i·length.
                var segmentedB = [Float](repeating: .nan, count: samples * bStride)
                for i in 0..<k { for j in 0..<n { segmentedB[j / length * bStride + i * length + j % length] = plainB[i * n + j] } }
                let segments = ColumnSegments(length: length, stride: stride)
                for accumulate in [false, true] {
                    for threads in [1, 2] {
                        withExecution(threads: threads) {
                            let start = randomTensor([m * n], seed: 13).scalars
                            var plain = start
                            var segmented = [Float](repeating: -7, count: samples * stride)
                            for i in 0..<m { for j in 0..<n { segmented[j / length * stride + i * length + j % length] = start[i * n + j] } }
                            a.withUnsafeBufferPointer { a in
                                plainB.withUnsafeBufferPointer { b in plain.withUnsafeMutableBufferPointer { c in
                                    MatrixMultiply.multiply(
                                        MatrixView(a.baseAddress!, columns: k), MatrixView(b.baseAddress!, columns: n),
                                        into: c.baseAddress!, cRowStride: n, m: m, n: n, k: k, accumulate: accumulate,
                                        workspace: MatrixWorkspace())
                                } }
                                segmentedB.withUnsafeBufferPointer { b in segmented.withUnsafeMutableBufferPointer { c in
                                    MatrixMultiply.multiply(
                                        MatrixView(a.baseAddress!, columns: k), MatrixView(b.baseAddress!, rowStride: length, segments: ColumnSegments(length: length, stride: bStride)),
                                        into: c.baseAddress!, cRowStride: length, m: m, n: n, k: k, accumulate: accumulate,
                                        workspace: MatrixWorkspace(), cSegments: segments)
                                } }
                            }
                            let label = "\(m)×\(n)×\(k) in runs of \(length), accumulate \(accumulate), \(threads) threads, \(tiles)"
                            var mismatches = 0
                            for i in 0..<m { for j in 0..<n where segmented[j / length * stride + i * length + j % length].bitPattern != plain[i * n + j].bitPattern {
                                mismatches += 1
                            } }
                            XCTAssertEqual(mismatches, 0, label)
                            // Between the planes (the rows m..<m+1 of each sample) nothing was written.
                            for sample in 0..<samples {
                                XCTAssertEqual(Array(segmented[(sample * stride + m * length)..<((sample + 1) * stride)]),
                                               [Float](repeating: -7, count: length), label)
                            }
                        }
                    }
                }
            }
        }
    }

    func testSegmentedSumIsTheSumOfTheRowLaidEndToEnd() {
        // A convolution's bias gradient: Σ over a channel's planes, read in place. Runs of 4 to
        // 784 (vectors that cross a run boundary, runs shorter than a vector), and counts that
        // end in 8- and 1-float tails.
        for (length, samples) in [(4, 9), (30, 5), (49, 8), (196, 3), (784, 2), (5, 1)] {
            let stride = 3 * length + 2
            let data = randomTensor([samples * stride], seed: UInt64(length), mean: 0.3).scalars
            let segments = ColumnSegments(length: length, stride: stride)
            for first in [0, 1] {
                let row = (0..<(length * samples)).map { data[first * length + segments.offset($0)] }
                let laidOut = row.withUnsafeBufferPointer { VectorKernels.sum($0.baseAddress!, row.count) }
                let inPlace = data.withUnsafeBufferPointer {
                    VectorKernels.sum($0.baseAddress! + first * length, row.count, segments: segments)
                }
                XCTAssertEqual(inPlace.bitPattern, laidOut.bitPattern, "runs of \(length), \(samples) of them")
            }
        }
    }

    func testSegmentedSumInPiecesIsTheWholeSum() {
        // A batch's planes of 49 positions in pieces of samples: whole blocks of 16 (16 planes),
        // pieces that end inside a block (4 planes: 196 values), pieces shorter than the rest of
        // a block, and last pieces that end in 8- and 1-float tails.
        let (length, stride) = (49, 3 * 49 + 2)
        let segments = ColumnSegments(length: length, stride: stride)
        for pieces in [[16, 16, 5], [4, 4], [3, 1, 7, 2], [1, 1, 1], [5]] {
            let samples = pieces.reduce(0, +)
            let data = randomTensor([samples * stride], seed: UInt64(samples), mean: 0.3).scalars
            data.withUnsafeBufferPointer { data in
                let whole = VectorKernels.sum(data.baseAddress!, samples * length, segments: segments)
                var running = VectorKernels.RunningSum()
                var first = 0, total = 0.0
                for (index, count) in pieces.enumerated() {
                    total = VectorKernels.sum(
                        data.baseAddress! + first * stride, count * length, segments: segments, continuing: &running,
                        finishing: index == pieces.count - 1)
                    first += count
                }
                XCTAssertEqual(total.bitPattern, whole.bitPattern, "pieces \(pieces)")
            }
        }
    }

    func testSameBitsWithAnyThreadCount() {
        // Column panels split over the threads, row panels (one column panel), and row panels
        // because M > N (a transposed weight gradient).
        forEachTileWidth { _ in
            for (m, n, k) in [(64, 3000, 300), (16, 9, 6272), (9, 16, 6272), (144, 32, 1568)] {
                assertSameBitsWithAnyThreadCount(m: m, n: n, k: k)
            }
        }
    }

    func testTransposedProductIsTheTransposeBitForBit() {
        // Convolutions compute dWᵀ = columns · dYᵀ for dW = dY · columnsᵀ: the same FMAs with
        // their two factors swapped, so the same bits.
        for (m, n, k) in [(16, 9, 6272), (32, 144, 1568), (13, 21, 300)] {
            let a = randomTensor([m * k], seed: 7).scalars, b = randomTensor([n * k], seed: 8).scalars
            var c = [Float](repeating: .nan, count: m * n), transposed = [Float](repeating: .nan, count: n * m)
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    // C (m × n) = A (m × k) · Bᵀ, B stored n × k
                    MatrixMultiply.multiply(
                        MatrixView(a.baseAddress!, columns: k), MatrixView(b.baseAddress!, columns: k).transposed,
                        into: c.baseAddress!, cRowStride: n, m: m, n: n, k: k, accumulate: false, workspace: MatrixWorkspace())
                }
                transposed.withUnsafeMutableBufferPointer { t in
                    // Cᵀ (n × m) = B (n × k) · Aᵀ
                    MatrixMultiply.multiply(
                        MatrixView(b.baseAddress!, columns: k), MatrixView(a.baseAddress!, columns: k).transposed,
                        into: t.baseAddress!, cRowStride: m, m: n, n: m, k: k, accumulate: false, workspace: MatrixWorkspace())
                }
            } }
            for i in 0..<m {
                for j in 0..<n {
                    XCTAssertEqual(c[i * n + j].bitPattern, transposed[j * m + i].bitPattern, "\(m)×\(n)×\(k) at (\(i), \(j))")
                }
            }
        }
    }

    func testPanelsAreTheSameProduct() {
        // B given already in 16-column panels (as a convolution's weight gradient gets dY) is
        // read in place: the same bits as packing the plain B, in depth pieces, with a last
        // panel that is partly padding, pairs of panels for the 512-bit tiles, and 1 or 2 threads.
        forEachTileWidth { tiles in
            for (m, n, k, pieces) in [(9, 16, 6272, [0, 100, 3000, 6272]), (144, 32, 1568, [0, 1568]), (288, 64, 392, [0, 49, 300, 392]),
                                      (13, 21, 1000, [0, 257, 1000]), (7, 50, 600, [0, 600])] {
                let a = randomTensor([m * k], seed: 21).scalars, b = randomTensor([k * n], seed: 22).scalars
                let panelStride = k * 16
                var panels = [Float](repeating: 0, count: (n + 15) / 16 * panelStride)
                for i in 0..<k { for j in 0..<n { panels[j / 16 * panelStride + i * 16 + j % 16] = b[i * n + j] } }
                for threads in [1, 2] {
                    withExecution(threads: threads) {
                        let packed = b.withUnsafeBufferPointer { b in
                            productInPieces(a, m: m, n: n, k: k, pieces: pieces) { MatrixView(b.baseAddress! + $0 * n, columns: n) }
                        }
                        let inPlace = panels.withUnsafeBufferPointer { panels in
                            productInPieces(a, m: m, n: n, k: k, pieces: pieces) {
                                MatrixView(panels.baseAddress! + $0 * 16, panelStride: panelStride)
                            }
                        }
                        XCTAssertEqual(inPlace, packed, "\(m)×\(n)×\(k), pieces \(pieces), \(threads) threads, \(tiles)")
                    }
                }
            }
        }
    }

    func testEpilogueIsTheSeparatePass() {
        // A bias and ReLU applied as each tile is stored give the bits of the product followed by
        // `VectorKernels.affine` over each row, as a convolution's separate pass did: on runs
        // shorter and longer than a tile (straddling tiles), one and two depth blocks, edge
        // tiles, both tile widths and 1 or 2 threads.
        forEachTileWidth { tiles in
            for (m, length, samples, k) in [(16, 784, 2, 9), (32, 196, 3, 144), (64, 49, 8, 288), (5, 30, 4, 27), (13, 4, 9, 300)] {
                let n = length * samples, stride = m * length
                let a = randomTensor([m * k], seed: 31).scalars, b = randomTensor([k * n], seed: 32).scalars
                let biases = randomTensor([m], seed: 33).scalars
                let segments = ColumnSegments(length: length, stride: stride)
                for (hasBias, rectifying) in [(true, true), (false, true), (true, false)] {
                    for threads in [1, 2] {
                        withExecution(threads: threads) {
                            var separate = [Float](repeating: .nan, count: samples * stride), fused = separate
                            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in biases.withUnsafeBufferPointer { biases in
                                separate.withUnsafeMutableBufferPointer { c in
                                    MatrixMultiply.multiply(
                                        MatrixView(a.baseAddress!, columns: k), MatrixView(b.baseAddress!, columns: n),
                                        into: c.baseAddress!, cRowStride: length, m: m, n: n, k: k, accumulate: false,
                                        workspace: MatrixWorkspace(), cSegments: segments)
                                    for plane in 0..<(samples * m) {
                                        let row = c.baseAddress! + plane * length
                                        VectorKernels.affine(row, row, length, scale: 1, shift: hasBias ? biases[plane % m] : 0, rectifying: rectifying)
                                    }
                                }
                                fused.withUnsafeMutableBufferPointer { c in
                                    MatrixMultiply.multiply(
                                        MatrixView(a.baseAddress!, columns: k), MatrixView(b.baseAddress!, columns: n),
                                        into: c.baseAddress!, cRowStride: length, m: m, n: n, k: k, accumulate: false,
                                        workspace: MatrixWorkspace(), cSegments: segments,
                                        epilogue: RowEpilogue(bias: hasBias ? biases.baseAddress : nil, rectifying: rectifying))
                                }
                            } } }
                            XCTAssertEqual(fused.map(\.bitPattern), separate.map(\.bitPattern),
                                           "\(m)×\(n)×\(k) in runs of \(length), bias \(hasBias), ReLU \(rectifying), \(threads) threads, \(tiles)")
                            if rectifying { XCTAssertTrue(fused.contains(0) && fused.contains { $0 > 0 }) }
                        }
                    }
                }
            }
        }
    }

    func testDepthPiecesSumExactlyAsOneProduct() {
        // dW-shaped (A row-major, B transposed), with pieces that start and end inside depth
        // blocks, one that spans several, one of a single depth, and one of none.
        forEachTileWidth { _ in
            for m in [13, 16, 32] { assertDepthPiecesSumExactlyAsOneProduct(m: m, n: 21, k: 1000) }
            assertDepthPiecesSumExactlyAsOneProduct(m: 32, n: 64, k: 1000)
        }
    }

    private func assertDepthPiecesSumExactlyAsOneProduct(m: Int, n: Int, k: Int) {
        let a = randomTensor([m * k], seed: 5).scalars, b = randomTensor([k * n], seed: 6).scalars
        func product(pieces: [Range<Int>]) -> [Float] {
            var c = [Float](repeating: .nan, count: m * n), carry = [Float](repeating: .nan, count: m * n)
            let workspace = MatrixWorkspace()
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                carry.withUnsafeMutableBufferPointer { carry in
                    for piece in pieces {
                        MatrixMultiply.multiply(
                            MatrixView(a.baseAddress! + piece.lowerBound, columns: k),
                            MatrixView(b.baseAddress! + piece.lowerBound, columns: k).transposed,
                            into: c.baseAddress!, cRowStride: n, m: m, n: n, k: piece.count, accumulate: false,
                            workspace: workspace,
                            piece: DepthPiece(offset: piece.lowerBound, total: k, carry: carry.baseAddress!))
                    }
                }
            } } }
            return c
        }
        let whole = product(pieces: [0..<k])
        for bounds in [[0, 100, 300, 600, 601, 601, 1000], [0, 256, 512, 768, 1000], [0, 1, 999, 1000], [0, 49, 98, 392, 441, 1000]] {
            let pieces = zip(bounds, bounds.dropFirst()).map { $0..<$1 }
            XCTAssertEqual(product(pieces: pieces).map(\.bitPattern), whole.map(\.bitPattern), "\(m)×\(n), pieces \(bounds)")
        }
        // And the whole product is the ordinary one.
        var plain = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in plain.withUnsafeMutableBufferPointer { c in
            MatrixMultiply.multiply(
                MatrixView(a.baseAddress!, columns: k), MatrixView(b.baseAddress!, columns: k).transposed,
                into: c.baseAddress!, cRowStride: n, m: m, n: n, k: k, accumulate: false, workspace: MatrixWorkspace())
        } } }
        XCTAssertEqual(plain.map(\.bitPattern), whole.map(\.bitPattern), "\(m)×\(n)")
    }

    /// The bits of C = A · B (A row-major, M × K), summed in the depth pieces between the
    /// bounds `pieces`; `right(low)` is B's view from depth `low` on.
    private func productInPieces(
        _ a: [Float], m: Int, n: Int, k: Int, pieces: [Int], right: (Int) -> MatrixView
    ) -> [UInt32] {
        var c = [Float](repeating: .nan, count: m * n), carry = [Float](repeating: .nan, count: m * n)
        let workspace = MatrixWorkspace()
        a.withUnsafeBufferPointer { a in c.withUnsafeMutableBufferPointer { c in carry.withUnsafeMutableBufferPointer { carry in
            for (low, high) in zip(pieces, pieces.dropFirst()) {
                MatrixMultiply.multiply(
                    MatrixView(a.baseAddress! + low, columns: k), right(low),
                    into: c.baseAddress!, cRowStride: n, m: m, n: n, k: high - low, accumulate: false,
                    workspace: workspace, piece: DepthPiece(offset: low, total: k, carry: carry.baseAddress!))
            }
        } } }
        return c.map(\.bitPattern)
    }

    private func assertSameBitsWithAnyThreadCount(m: Int, n: Int, k: Int) {
        let a = randomTensor([m * k], seed: 1).scalars, b = randomTensor([k * n], seed: 2).scalars
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            var c = [Float](repeating: 0, count: m * n)
            withExecution(threads: threads) {
                a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                    MatrixMultiply.multiply(
                        MatrixView(a.baseAddress!, columns: k), MatrixView(b.baseAddress!, columns: n),
                        into: c.baseAddress!, cRowStride: n, m: m, n: n, k: k, accumulate: false, workspace: MatrixWorkspace())
                } } }
            }
            results.append(c)
        }
        XCTAssertEqual(results[0], results[1], "\(m)×\(n)×\(k)")
        XCTAssertEqual(results[0], results[2], "\(m)×\(n)×\(k)")
    }
}
