/// Rearrangements between NCHW tensors and the matrices a 3×3, stride-1, padding-1 convolution
/// multiplies: columns (K × N·P, row k = (channel, dy, dx)) and position-major panels (N·P × C).
enum Im2Col {
    /// columns[(c·9 + ky·3 + kx)][n·P + y·W + x] = x[n, c, y + ky - 1, x + kx - 1], or 0 outside.
    ///
    /// Row (ky, kx) of a sample is its plane shifted by (ky - 1)·W + (kx - 1) positions, so each
    /// is one block copy, after which the positions that read outside the plane — a top or
    /// bottom row, and a left or right column that the shift wrapped around — are zeroed.
    static func unfold(
        _ input: UnsafePointer<Float>, into columns: UnsafeMutablePointer<Float>,
        batch: Int, channels: Int, height: Int, width: Int
    ) {
        let p = height * width, columnCount = batch * p
        Parallelism.forEach(channels * 9, cost: columnCount) { rows in
            for row in rows {
                let channel = row / 9, ky = row % 9 / 3 - 1, kx = row % 3 - 1
                let shift = ky * width + kx
                let (first, end) = shiftedRange(shift, p)
                for sample in 0..<batch {
                    let plane = input + (sample * channels + channel) * p
                    let out = columns + row * columnCount + sample * p
                    out.update(repeating: 0, count: first)
                    (out + first).update(from: plane + first + shift, count: end - first)
                    (out + end).update(repeating: 0, count: p - end)
                    if kx != 0 {
                        // Column 0 (kx = -1) or W - 1 (kx = +1) read across a row boundary.
                        var x = kx < 0 ? 0 : width - 1
                        while x < p {
                            out[x] = 0
                            x += width
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `unfold`: dx[n, c, y, x] = Σ over (ky, kx) of the column entries that
    /// read it, added in a fixed order (offsets in row-major order, from zero).
    ///
    /// One pass per plane: eight outputs at a time gather their nine terms, each from its
    /// column row shifted by that offset, with the terms of entries that never read the output
    /// (past the plane's edge, or across a row boundary) replaced by +0. Adding +0 is the same
    /// as skipping the term, because a sum that starts from +0 is never -0.
    ///
    /// `keeps` is `foldKeeps(height:width:)`, which depends on the plane's shape only, so a layer
    /// makes it once.
    static func fold(
        _ columns: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
        batch: Int, channels: Int, height: Int, width: Int, keeps: [UInt32]
    ) {
        let p = height * width, columnCount = batch * p
        precondition(keeps.count == 9 * p, "fold masks for another plane shape")
        // The eight-wide gathers also read up to W + 1 entries before or after a plane's own
        // part of a column row (terms that are then replaced by +0). Those reads stay inside the
        // matrix: rows 5...8, which read behind, come after row 0, and rows 0...3, which read
        // ahead, before row 8, once a row has at least W + 8 entries.
        let vectorEnd = columnCount >= width + 8 ? p - p % 8 : 0
        keeps.withUnsafeBufferPointer { keeps in
            let keeps = keeps.baseAddress!
            // Planes in channel-major order (a channel's samples in turn), so that each column
            // row is read front to back.
            Parallelism.forEach(batch * channels, cost: 9 * p) { planes in
                for planeIndex in planes {
                    let channel = planeIndex / batch, sample = planeIndex % batch
                    let plane = output + (sample * channels + channel) * p
                    // Offset o's term for output i is at terms[o] + i (its column row, shifted),
                    // kept where keeps[o·P + i] says.
                    let rows = columns + channel * 9 * columnCount + sample * p
                    @inline(__always) func term(_ offset: Int) -> UnsafePointer<Float> {
                        rows + (offset &* columnCount &- (offset / 3 - 1) &* width &- (offset % 3 - 1))
                    }
                    let terms = (term(0), term(1), term(2), term(3), term(4), term(5), term(6), term(7), term(8))
                    @inline(__always) func kept(_ offset: Int, _ term: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
                        let keep = UnsafeRawPointer(keeps + (offset &* p &+ i)).loadUnaligned(as: SIMD8<UInt32>.self)
                        return unsafeBitCast(unsafeBitCast(VectorKernels.load(term + i), to: SIMD8<UInt32>.self) & keep, to: SIMD8<Float>.self)
                    }
                    var i = 0
                    while i < vectorEnd {
                        var total = SIMD8<Float>() + kept(0, terms.0, i)
                        total += kept(1, terms.1, i)
                        total += kept(2, terms.2, i)
                        total += kept(3, terms.3, i)
                        total += kept(4, terms.4, i)
                        total += kept(5, terms.5, i)
                        total += kept(6, terms.6, i)
                        total += kept(7, terms.7, i)
                        total += kept(8, terms.8, i)
                        VectorKernels.store(total, plane + i)
                        i &+= 8
                    }
                    while i < p {
                        var total: Float = 0
                        for offset in 0..<9 where keeps[offset * p + i] != 0 { total += term(offset)[i] }
                        plane[i] = total
                        i += 1
                    }
                }
            }
        }
    }

    /// The masks `fold` takes for planes of `height` × `width`: entry o·P + i is all ones where
    /// offset o's column entry reads output position i, else 0, so that a bitwise AND keeps
    /// the term or makes it +0.
    static func foldKeeps(height: Int, width: Int) -> [UInt32] {
        let p = height * width
        var keeps = [UInt32](repeating: 0, count: 9 * p)
        for offset in 0..<9 {
            let ky = offset / 3 - 1, kx = offset % 3 - 1
            for y in 0..<height {
                for x in 0..<width {
                    let (cy, cx) = (y - ky, x - kx)
                    keeps[offset * p + y * width + x] = cy >= 0 && cy < height && cx >= 0 && cx < width ? ~0 : 0
                }
            }
        }
        return keeps
    }

    /// The column entries i in 0..<p whose input position i + shift lies in 0..<p (empty when
    /// the shift reaches past the plane, as on a 1-pixel one).
    private static func shiftedRange(_ shift: Int, _ p: Int) -> (first: Int, end: Int) {
        let first = min(p, max(0, -shift))
        return (first, max(first, min(p, p - shift)))
    }

    /// x [N, C, P] as the N·P × C matrix of its positions (row n·P + p holds x[n, ·, p]), in the
    /// layout the matrix product packs its right-hand operand into, so that the product reads it
    /// in place: panels of 16 channels, each N·P rows of 16 (channels past C zero), panel q at
    /// `panels + q · N·P · 16` (`MatrixView(_:panelStride:)`).
    static func nchwToPanels(
        _ input: UnsafePointer<Float>, _ panels: UnsafeMutablePointer<Float>, batch: Int, channels: Int, positions p: Int
    ) {
        let lanes = MatrixMultiply.panelWidth, panelStride = batch * p * lanes
        Parallelism.forEach(batch, cost: channels * p) { samples in
            for sample in samples {
                var channel = 0
                while channel < channels {
                    let count = min(lanes, channels - channel)
                    // This sample's rows of the panel: its P × `count` block transposed.
                    let rows = panels + channel / lanes * panelStride + sample * p * lanes
                    VectorKernels.transpose(
                        input + (sample * channels + channel) * p, rows: count, columns: p, sourceStride: p,
                        into: rows, targetStride: lanes)
                    if count < lanes {
                        for position in 0..<p { (rows + position * lanes + count).update(repeating: 0, count: lanes - count) }
                    }
                    channel += lanes
                }
            }
        }
    }
}
