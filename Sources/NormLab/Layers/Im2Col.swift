/// Rearrangements between NCHW tensors and the matrices a 3×3, stride-1, padding-1 convolution
/// multiplies: columns (K × N·P, row k = (channel, dy, dx)) and channel-major (C × N·P).
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
    /// read it, added in a fixed order.
    ///
    /// As in `unfold`, each (ky, kx) row is added as one shifted block. With kx ≠ 0 that block
    /// also adds the entries that read across a row boundary; they all land in the one column
    /// that this (ky, kx) never reaches otherwise (x = 0 for kx = +1, x = W − 1 for kx = −1), so
    /// that column is saved before and put back after, which leaves every sum exactly as if
    /// those entries had been skipped.
    static func fold(
        _ columns: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
        batch: Int, channels: Int, height: Int, width: Int
    ) {
        let p = height * width, columnCount = batch * p
        // Planes in channel-major order (a channel's samples in turn), so that each column row
        // is read front to back.
        Parallelism.forEach(batch * channels, cost: 9 * p) { planes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: height) { saved in
                let saved = saved.baseAddress!
                for planeIndex in planes {
                    let channel = planeIndex / batch, sample = planeIndex % batch
                    let plane = output + (sample * channels + channel) * p
                    plane.update(repeating: 0, count: p)
                    for offset in 0..<9 {
                        let ky = offset / 3 - 1, kx = offset % 3 - 1
                        let source = columns + (channel * 9 + offset) * columnCount + sample * p
                        // Column entry i read input position i + shift.
                        let shift = ky * width + kx
                        let (first, end) = shiftedRange(shift, p)
                        let untouched = kx > 0 ? 0 : width - 1
                        if kx != 0 {
                            for y in 0..<height { saved[y] = plane[y * width + untouched] }
                        }
                        let target = plane + shift
                        for i in first..<end { target[i] += source[i] }
                        if kx != 0 {
                            for y in 0..<height { plane[y * width + untouched] = saved[y] }
                        }
                    }
                }
            }
        }
    }

    /// The column entries i in 0..<p whose input position i + shift lies in 0..<p (empty when
    /// the shift reaches past the plane, as on a 1-pixel one).
    private static func shiftedRange(_ shift: Int, _ p: Int) -> (first: Int, end: Int) {
        let first = min(p, max(0, -shift))
        return (first, max(first, min(p, p - shift)))
    }

    /// y[n, c, p] += add[c], a convolution's bias (none: 0), then with `rectifying` max(y, 0).
    static func addToPlanes(
        _ add: [Float]?, _ y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, positions p: Int,
        rectifying: Bool
    ) {
        Parallelism.forEach(batch * channels, cost: p) { planes in
            for plane in planes {
                VectorKernels.affine(
                    y + plane * p, y + plane * p, p, scale: 1, shift: add?[plane % channels] ?? 0, rectifying: rectifying)
            }
        }
    }

    /// matrix[n·P + p][c] = x[n, c, p]: each sample's C × P plane transposed.
    static func nchwToPositionMajor(
        _ input: UnsafePointer<Float>, _ matrix: UnsafeMutablePointer<Float>, batch: Int, channels: Int, positions p: Int
    ) {
        Parallelism.forEach(batch, cost: channels * p) { samples in
            for sample in samples {
                VectorKernels.transpose(
                    input + sample * channels * p, rows: channels, columns: p, sourceStride: p,
                    into: matrix + sample * p * channels, targetStride: channels)
            }
        }
    }
}
