/// Loops over contiguous Float32 runs that every kernel is built from, written once with
/// 8-wide SIMD and several accumulators. Sums come back in Double so callers can add up many
/// runs without losing precision.
enum VectorKernels {
    typealias Vector = SIMD8<Float>

    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    static func store(_ value: Vector, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vector.self)
    }

    /// Σ x[i].
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ count: Int) -> Double {
        var reader = ContiguousReader(next: x)
        var running = RunningSum()
        return sum(count, &reader, &running, finishing: true)
    }

    /// `sum` of the `count` columns of a row whose columns come in `segments` (column j at
    /// `x + segments.offset(j)`): the same additions in the same order as `sum` over those
    /// values laid end to end, so the same bits, without copying them together first.
    static func sum(_ x: UnsafePointer<Float>, _ count: Int, segments: ColumnSegments) -> Double {
        var reader = SegmentReader(segment: x, segments: segments)
        var running = RunningSum()
        return sum(count, &reader, &running, finishing: true)
    }

    /// `sum(_:_:segments:)` of a row that arrives in pieces (a training step that takes the batch
    /// a few samples at a time): each piece's values go into `running`, and the last piece, with
    /// `finishing`, returns the sum, the same bits as `sum` over the whole row; the others return
    /// 0. The blocks of 16 stay aligned to the whole row: a piece that ends inside one leaves its
    /// values in `running` for the next piece to complete.
    static func sum(
        _ x: UnsafePointer<Float>, _ count: Int, segments: ColumnSegments, continuing running: inout RunningSum,
        finishing: Bool
    ) -> Double {
        var reader = SegmentReader(segment: x, segments: segments)
        var remaining = count
        if running.pendingCount > 0 {
            while running.pendingCount < 16 && remaining > 0 {
                running.pending[running.pendingCount] = reader.nextOne()
                running.pendingCount += 1
                remaining -= 1
            }
            if running.pendingCount < 16 {
                // Still inside the block: this was the row's end, or the next piece completes it.
                return finishing ? running.finish() : 0
            }
            running.a0 += running.pending.lowHalf
            running.a1 += running.pending.highHalf
            running.pendingCount = 0
        }
        if finishing { return sum(remaining, &reader, &running, finishing: true) }
        let whole = remaining - remaining % 16
        _ = sum(whole, &reader, &running, finishing: false)
        for _ in whole..<remaining {
            running.pending[running.pendingCount] = reader.nextOne()
            running.pendingCount += 1
        }
        return 0
    }

    /// The state of a `sum` between the pieces of its row: the two accumulators, and the values
    /// of a block of 16 that a piece left unfinished.
    struct RunningSum {
        fileprivate var a0 = Vector(), a1 = Vector()
        fileprivate var pending = SIMD16<Float>()
        fileprivate var pendingCount = 0

        /// The sum when the row ends with the values in `pending`: as `sum` ends a row, a block
        /// of 8 if there is one, then the rest one by one in Double.
        fileprivate func finish() -> Double {
            var a0 = a0, i = 0
            if pendingCount >= 8 {
                a0 += pending.lowHalf
                i = 8
            }
            var total = Double((a0 + a1).sum())
            while i < pendingCount {
                total += Double(pending[i])
                i += 1
            }
            return total
        }
    }

    /// The sum of `count` values read in order, eight or one at a time: two 8-lane accumulators
    /// over blocks of 16, one more block of 8 if there is one, then the rest one by one in Double.
    /// The accumulators start from and are left in `running`; without `finishing`, only the
    /// blocks of 16 are added.
    ///
    /// The readers are structs, not closures: a closure that advances a captured position makes
    /// the compiler box it and check exclusive access at run time on every read where it does
    /// not inline the closure (it did not inside a convolution's backward pass on one thread).
    @inline(__always)
    private static func sum<Reader: FloatReader>(
        _ count: Int, _ reader: inout Reader, _ running: inout RunningSum, finishing: Bool
    ) -> Double {
        var a0 = running.a0, a1 = running.a1
        var i = 0
        while i &+ 16 <= count {
            a0 += reader.nextEight()
            a1 += reader.nextEight()
            i &+= 16
        }
        running.a0 = a0
        running.a1 = a1
        if !finishing { return 0 }
        if i &+ 8 <= count {
            a0 += reader.nextEight()
            i &+= 8
        }
        var total = Double((a0 + a1).sum())
        while i < count {
            total += Double(reader.nextOne())
            i &+= 1
        }
        return total
    }

    /// Σ (x[i] - mean)², the second pass of a two-pass variance: exact for large common offsets,
    /// where Σx² - (Σx)²/n in Float32 loses every digit.
    @inline(__always)
    static func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, _ count: Int, mean: Float) -> Double {
        let m = Vector(repeating: mean)
        var a0 = Vector(), a1 = Vector()
        var i = 0
        while i &+ 16 <= count {
            let d0 = load(x + i) - m
            let d1 = load(x + (i &+ 8)) - m
            a0.addProduct(d0, d0)
            a1.addProduct(d1, d1)
            i &+= 16
        }
        if i &+ 8 <= count {
            let d0 = load(x + i) - m
            a0.addProduct(d0, d0)
            i &+= 8
        }
        var total = Double((a0 + a1).sum())
        while i < count {
            let d = x[i] - mean
            total += Double(d * d)
            i &+= 1
        }
        return total
    }

    /// (Σ dy[i], Σ dy[i]·(x[i] - mean)): the two reductions of every normalizer's backward pass.
    @inline(__always)
    static func gradientSums(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, mean: Float
    ) -> (sumDy: Double, sumDyCentered: Double) {
        let m = Vector(repeating: mean)
        var s0 = Vector(), s1 = Vector(), p0 = Vector(), p1 = Vector()
        var i = 0
        while i &+ 16 <= count {
            let g0 = load(dy + i), g1 = load(dy + (i &+ 8))
            s0 += g0
            s1 += g1
            p0.addProduct(g0, load(x + i) - m)
            p1.addProduct(g1, load(x + (i &+ 8)) - m)
            i &+= 16
        }
        if i &+ 8 <= count {
            let g0 = load(dy + i)
            s0 += g0
            p0.addProduct(g0, load(x + i) - m)
            i &+= 8
        }
        var sumDy = Double((s0 + s1).sum())
        var sumDyCentered = Double((p0 + p1).sum())
        while i < count {
            sumDy += Double(dy[i])
            sumDyCentered += Double(dy[i] * (x[i] - mean))
            i &+= 1
        }
        return (sumDy, sumDyCentered)
    }

    /// y[i] = x[i]·scale + shift, or with `rectifying`, max(x[i]·scale + shift, 0): the ReLU
    /// after a normalizer, in the same pass (the same bits as `ReLU.forward` on the result).
    @inline(__always)
    static func affine(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
        scale: Float, shift: Float, rectifying: Bool = false
    ) {
        if rectifying {
            affine(x, y, count, scale: scale, shift: shift) { $0.replacing(with: 0, where: $0 .<= 0) } _: { max($0, 0) }
        } else {
            affine(x, y, count, scale: scale, shift: shift) { $0 } _: { $0 }
        }
    }

    /// y[i] = f(x[i]·scale + shift), with `f` for 8 lanes and `g` for one.
    @inline(__always)
    private static func affine(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
        scale: Float, shift: Float, _ f: (Vector) -> Vector, _ g: (Float) -> Float
    ) {
        let a = Vector(repeating: scale), b = Vector(repeating: shift)
        var i = 0
        while i &+ 16 <= count {
            store(f(b.addingProduct(load(x + i), a)), y + i)
            store(f(b.addingProduct(load(x + (i &+ 8)), a)), y + (i &+ 8))
            i &+= 16
        }
        if i &+ 8 <= count {
            store(f(b.addingProduct(load(x + i), a)), y + i)
            i &+= 8
        }
        while i < count {
            y[i] = g(shift + x[i] * scale)
            i &+= 1
        }
    }

    /// e^t in each lane, within 2 ulp of the exact value for t in [−87.3, 88.3], outside it
    /// e^t at the nearer end (Cephes' `expf`: t = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-6
    /// polynomial for e^r, and 2^n written into the exponent bits). One rule for every lane, so
    /// a value's result does not depend on where it sits in a run. Separate multiplies and adds:
    /// the standard library's fused `addingProduct` on SIMD vectors runs lane by lane.
    @inline(__always)
    static func exp(_ t: Vector) -> Vector {
        var t = t
        t.replace(with: 88.3, where: t .> 88.3)
        t.replace(with: -87.3, where: t .< -87.3)
        // 1.5·2²³ + 127: adding t·log2(e) to it rounds that to an integer n, kept as n + 127 in
        // the lowest bits of the sum.
        let shifter = Vector(repeating: 12_582_912 + 127)
        let shifted = t * Vector(repeating: 1.442_695_04) + shifter
        let n = shifted - shifter
        // r = t − n·ln 2, with ln 2 in two parts so that n·(first part) is exact.
        let r = t - n * Vector(repeating: 0.693_359_375) + n * Vector(repeating: 2.121_944_4e-4)
        var p = Vector(repeating: 1.987_569_15e-4)
        p = p * r + Vector(repeating: 1.398_199_950_7e-3)
        p = p * r + Vector(repeating: 8.333_451_907_3e-3)
        p = p * r + Vector(repeating: 4.166_579_589_4e-2)
        p = p * r + Vector(repeating: 1.666_666_545_9e-1)
        p = p * r + Vector(repeating: 5.000_000_120_1e-1)
        let expR = p * (r * r) + r + Vector(repeating: 1)
        let twoToN = unsafeBitCast(unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &<< 23, to: Vector.self)
        return expR * twoToN
    }

    /// A gated scaling (a normalizer-activation's): s[i] = sigmoid(slope·x[i]) and y[i] =
    /// x[i]·s[i]·scale + shift, the gates kept for the backward pass. Every value by the 8-lane rule (the last
    /// few of a run in a vector of their own), so the same bits wherever a value sits.
    @inline(__always)
    static func gatedScale(
        _ x: UnsafePointer<Float>, gates: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
        slope: Float, scale: Float, shift: Float
    ) {
        let (a, g, b, one) = (Vector(repeating: -slope), Vector(repeating: scale), Vector(repeating: shift), Vector(repeating: 1))
        @inline(__always) func gate(_ x: Vector) -> (s: Vector, y: Vector) {
            let s = one / (one + exp(x * a))
            return (s, x * s * g + b)
        }
        var i = 0
        while i &+ 8 <= count {
            let (s, value) = gate(load(x + i))
            store(s, gates + i)
            store(value, y + i)
            i &+= 8
        }
        guard i < count else { return }
        var tail = Vector()
        for lane in 0..<(count &- i) { tail[lane] = x[i &+ lane] }
        let (s, value) = gate(tail)
        for lane in 0..<(count &- i) {
            gates[i &+ lane] = s[lane]
            y[i &+ lane] = value[lane]
        }
    }

    /// dx[i] = dy[i]·a + x[i]·b + c: every normalizer's input gradient, once its per-run
    /// coefficients are known.
    @inline(__always)
    static func linearCombination(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
        _ count: Int, a: Float, b: Float, c: Float
    ) {
        let va = Vector(repeating: a), vb = Vector(repeating: b), vc = Vector(repeating: c)
        var i = 0
        while i &+ 16 <= count {
            store(vc.addingProduct(load(dy + i), va).addingProduct(load(x + i), vb), dx + i)
            store(vc.addingProduct(load(dy + (i &+ 8)), va).addingProduct(load(x + (i &+ 8)), vb), dx + (i &+ 8))
            i &+= 16
        }
        if i &+ 8 <= count {
            store(vc.addingProduct(load(dy + i), va).addingProduct(load(x + i), vb), dx + i)
            i &+= 8
        }
        while i < count {
            dx[i] = c + dy[i] * a + x[i] * b
            i &+= 1
        }
    }

    /// Eight rows of eight: an 8 × 8 block of a matrix.
    typealias Block = (Vector, Vector, Vector, Vector, Vector, Vector, Vector, Vector)

    /// The block's transpose: three rounds of interleaving rows i and i + 4 (a perfect shuffle;
    /// it compiles to unpack and lane-permute instructions).
    @inline(__always)
    static func transposed(_ block: Block) -> Block {
        @inline(__always) func zip(_ a: Vector, _ b: Vector) -> (Vector, Vector) {
            var pair = SIMD16<Float>()
            pair.evenHalf = a
            pair.oddHalf = b
            // The two halves, as a reinterpretation: `lowHalf` and `highHalf` were left as calls
            // where this was inlined into a large function (a convolution's backward pass).
            return unsafeBitCast(pair, to: (Vector, Vector).self)
        }
        var r = block
        for _ in 0..<3 {
            let (a0, a1) = zip(r.0, r.4), (a2, a3) = zip(r.1, r.5), (a4, a5) = zip(r.2, r.6), (a6, a7) = zip(r.3, r.7)
            r = (a0, a1, a2, a3, a4, a5, a6, a7)
        }
        return r
    }

    /// target[j · targetStride + i] = source[i · sourceStride + j] for an R × C matrix.
    static func transpose(
        _ source: UnsafePointer<Float>, rows: Int, columns: Int, sourceStride: Int,
        into target: UnsafeMutablePointer<Float>, targetStride: Int
    ) {
        var column = 0
        while column < columns {
            // Eight columns (target rows) at a time, so each target row is written in one go.
            let width = min(8, columns - column)
            var row = 0
            if width == 8 {
                while row + 8 <= rows {
                    let s = source + row * sourceStride + column
                    let t = transposed((
                        load(s), load(s + sourceStride), load(s + 2 * sourceStride), load(s + 3 * sourceStride),
                        load(s + 4 * sourceStride), load(s + 5 * sourceStride), load(s + 6 * sourceStride),
                        load(s + 7 * sourceStride)))
                    let d = target + column * targetStride + row
                    store(t.0, d); store(t.1, d + targetStride)
                    store(t.2, d + 2 * targetStride); store(t.3, d + 3 * targetStride)
                    store(t.4, d + 4 * targetStride); store(t.5, d + 5 * targetStride)
                    store(t.6, d + 6 * targetStride); store(t.7, d + 7 * targetStride)
                    row += 8
                }
            }
            for j in column..<(column + width) {
                for i in row..<rows { target[j * targetStride + i] = source[i * sourceStride + j] }
            }
            column += width
        }
    }
}

/// Values read in order, eight or one at a time, for `VectorKernels.sum`.
private protocol FloatReader {
    mutating func nextEight() -> SIMD8<Float>
    mutating func nextOne() -> Float
}

/// A contiguous run.
private struct ContiguousReader: FloatReader {
    var next: UnsafePointer<Float>

    @inline(__always)
    mutating func nextEight() -> SIMD8<Float> {
        defer { next += 8 }
        return VectorKernels.load(next)
    }

    @inline(__always)
    mutating func nextOne() -> Float {
        defer { next += 1 }
        return next.pointee
    }
}

/// A row whose columns come in segments (`ColumnSegments`), read as if laid end to end.
private struct SegmentReader: FloatReader {
    var segment: UnsafePointer<Float>
    let segments: ColumnSegments
    var position = 0

    init(segment: UnsafePointer<Float>, segments: ColumnSegments) {
        self.segment = segment
        self.segments = segments
    }

    @inline(__always)
    private mutating func advance(_ step: Int) {
        position &+= step
        if position == segments.length {
            segment += segments.stride
            position = 0
        }
    }

    @inline(__always)
    mutating func nextEight() -> SIMD8<Float> {
        if position &+ 8 <= segments.length {
            let value = VectorKernels.load(segment + position)
            advance(8)
            return value
        }
        var value = SIMD8<Float>()
        for lane in 0..<8 { value[lane] = nextOne() }
        return value
    }

    @inline(__always)
    mutating func nextOne() -> Float {
        let value = segment[position]
        advance(1)
        return value
    }
}
