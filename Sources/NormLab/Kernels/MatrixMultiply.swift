import WideKernels

/// A strided view of a row-major or transposed matrix: element (i, j) is at
/// `base[i * rowStride + j * columnStride]`, or, with `segments`, at
/// `base[i * rowStride + segments.offset(j)]`, or, with `panelStride`, at
/// `base[(j / 16) * panelStride + i * 16 + j % 16]`.
struct MatrixView {
    var base: UnsafePointer<Float>
    var rowStride: Int
    var columnStride: Int
    /// Columns in segments (then `columnStride` is 1): a batch's planes side by side.
    var segments: ColumnSegments?
    /// A right-hand operand already in the layout the product packs B into: panels of 16
    /// columns (zero past the last column), each row-major with rows of 16, `panelStride`
    /// floats apart. The product reads its panels in place instead of copying them.
    var panelStride: Int?

    /// A row-major matrix with `columns` columns.
    init(_ base: UnsafePointer<Float>, columns: Int) {
        self.base = base
        rowStride = columns
        columnStride = 1
    }

    init(_ base: UnsafePointer<Float>, rowStride: Int, columnStride: Int) {
        self.base = base
        self.rowStride = rowStride
        self.columnStride = columnStride
    }

    /// Rows `rowStride` apart whose columns come in `segments`.
    init(_ base: UnsafePointer<Float>, rowStride: Int, segments: ColumnSegments) {
        self.init(base, rowStride: rowStride, columnStride: 1)
        self.segments = segments
    }

    /// A matrix stored as 16-column panels (`panelStride`).
    init(_ base: UnsafePointer<Float>, panelStride: Int) {
        self.init(base, rowStride: MatrixMultiply.panelWidth, columnStride: 1)
        self.panelStride = panelStride
    }

    /// The transpose, without moving anything.
    var transposed: MatrixView { MatrixView(base, rowStride: columnStride, columnStride: rowStride) }
}

/// Columns that come in runs of `length`, each `stride` floats after the one before: column j
/// is position j % length of run j / length. A batch's N·P columns in an NCHW tensor are such
/// runs (length P = H·W, stride C·P, rows P apart), so a convolution multiplies straight from
/// and into its NCHW tensors, with no channel-major copy between.
struct ColumnSegments {
    var length: Int
    var stride: Int

    /// Where column j starts, from the first column's position.
    @inline(__always)
    func offset(_ j: Int) -> Int { j / length &* stride &+ j % length }

    /// Calls `body(j, count)` for each run of consecutive columns in j..<j+count that one
    /// segment holds (contiguous in memory), in order.
    @inline(__always)
    func forEachRun(_ j: Int, _ count: Int, _ body: (_ first: Int, _ count: Int) -> Void) {
        var done = 0
        while done < count {
            let run = min(count - done, length - (j + done) % length)
            body(j + done, run)
            done += run
        }
    }
}

/// Packing buffers for `MatrixMultiply`, kept by a layer so that steps allocate nothing.
final class MatrixWorkspace: @unchecked Sendable {
    fileprivate var packedA: [UnsafeMutablePointer<Float>] = []
    fileprivate var packedB: [UnsafeMutablePointer<Float>] = []
    fileprivate var packedACapacity = 0

    init() {}

    fileprivate func prepare(parts: Int, packedACount: Int) {
        if packedA.count < parts || packedACapacity < packedACount {
            release()
            packedACapacity = max(packedACount, packedACapacity)
            for _ in 0..<max(parts, packedA.count) {
                packedA.append(.allocate(capacity: packedACapacity))
                // Two panels: the 512-bit tiles take them in pairs.
                packedB.append(.allocate(capacity: 2 * MatrixMultiply.depthBlock * MatrixMultiply.panelWidth))
            }
        }
    }

    private func release() {
        packedA.forEach { $0.deallocate() }
        packedB.forEach { $0.deallocate() }
        packedA = []
        packedB = []
    }

    deinit { release() }
}

/// Where a product's K range sits in a longer sum that arrives in pieces, as a convolution's
/// weight gradient does when the batch is processed a few samples at a time.
///
/// Depth blocks stay aligned to `offset + k`'s global positions, and a block that a piece starts
/// but does not finish leaves its partial sums in `carry` (M × N, row stride N) for the next
/// piece to continue, so the pieces sum every element in exactly the order one whole product
/// would. Pieces must come in order, each starting where the last one ended.
struct DepthPiece {
    /// The global depth index of this piece's first depth.
    var offset: Int
    /// The global depth of the whole sum.
    var total: Int
    var carry: UnsafeMutablePointer<Float>
}

/// What a product does to each element of C once its sum is complete, in the pass that stores
/// the tile: add its row's `bias` (if any), then with `rectifying` take max(·, 0). A
/// convolution's bias and the ReLU after it, without a pass of their own over the output; done
/// by the same `VectorKernels.affine` as that pass, so with the same bits.
struct RowEpilogue {
    var bias: UnsafePointer<Float>?
    var rectifying: Bool

    @inline(__always)
    func apply(_ row: UnsafeMutablePointer<Float>, _ count: Int, row index: Int) {
        VectorKernels.affine(row, row, count, scale: 1, shift: bias?[index] ?? 0, rectifying: rectifying)
    }
}

/// C (M×N) = A (M×K) · B (K×N), or C += A · B: the single-precision matrix product every
/// convolution runs on.
///
/// A is packed in blocks of `depthBlock` along K and panels of 6 rows (8 with `Execution.wideTiles`); B in
/// panels of `panelWidth` columns (or read in place when it comes in that layout, as dY does for
/// a weight gradient); a register-blocked kernel computes each tile, summing each
/// depth block from zero and then adding it to C: 6×16 in 256-bit vectors, or, on a processor
/// with AVX-512, 8×32 and 8×16 in 512-bit ones (`WideTiles`: the same sums in the same order, so
/// the same bits). Work is split by column panels or row panels over the threads, and every
/// element is summed in the same order whatever the split, so results are bit-identical with any
/// thread count. Built for the lab's shapes: one of M and N is a channel
/// count (times 9), the other positions × batch, or both are small (a weight gradient).
public enum MatrixMultiply {
    static let panelHeight = 6
    static let panelWidth = 16
    static let depthBlock = 256

    typealias Vector = SIMD8<Float>

    /// Whether this processor can run the 512-bit tiles (AVX-512). Products use them unless
    /// `Execution.wideTiles` is off; the bits are the same either way.
    public static var wideTilesAvailable: Bool { WideTiles.available }

    static func multiply(
        _ a: MatrixView, _ b: MatrixView, into c: UnsafeMutablePointer<Float>, cRowStride: Int,
        m: Int, n: Int, k: Int, accumulate: Bool, workspace: MatrixWorkspace, piece: DepthPiece? = nil,
        cSegments: ColumnSegments? = nil, epilogue: RowEpilogue? = nil
    ) {
        if m == 0 || n == 0 { return }
        precondition(piece == nil || cSegments == nil, "a product in depth pieces writes plain rows")
        precondition(piece == nil || epilogue == nil, "a product in depth pieces has no epilogue")
        precondition(a.segments == nil && (b.segments == nil || b.columnStride == 1), "segments are for B's and C's columns")
        precondition(a.panelStride == nil && (b.panelStride == nil || b.segments == nil), "panels are for B")
        let offset = piece?.offset ?? 0, total = piece?.total ?? k
        precondition(offset >= 0 && offset + k <= total, "depth piece \(offset)..<\(offset + k) of \(total)")
        if k == 0 {
            if !accumulate && total == 0 {
                for i in 0..<m {
                    let row = c + i * cRowStride
                    if let cSegments {
                        cSegments.forEachRun(0, n) { j, count in
                            (row + cSegments.offset(j)).update(repeating: 0, count: count)
                            epilogue?.apply(row + cSegments.offset(j), count, row: i)
                        }
                    } else {
                        row.update(repeating: 0, count: n)
                        epilogue?.apply(row, n, row: i)
                    }
                }
            }
            return
        }
        let execution = Execution.current
        let wide = execution.wideTiles
        let tileRows = wide ? WideTiles.rows : panelHeight
        let panels = (n + panelWidth - 1) / panelWidth
        let rowPanels = (m + tileRows - 1) / tileRows
        let paddedM = rowPanels * tileRows
        let cost = 2 * m * n * k
        let threads = cost < Parallelism.minimumParallelCost ? 1 : execution.threads
        // Split the column panels over the threads, or the row panels: each thread packs all of
        // the operand that is not split, so split the larger one's side (rows when M > N, as in
        // a weight gradient), or whichever side has panels enough for every thread.
        let splitRows = (m > n && rowPanels >= threads) || (panels < threads && rowPanels > panels)
        let parts = min(threads, splitRows ? rowPanels : panels)
        workspace.prepare(parts: parts, packedACount: paddedM * depthBlock)
        Parallelism.forEach(parts, cost: Parallelism.minimumParallelCost) { partRange in
            for part in partRange {
                let (firstRow, endRow) = splitRows
                    ? (rowPanels * part / parts * tileRows, min(m, rowPanels * (part + 1) / parts * tileRows))
                    : (0, m)
                let (firstPanel, endPanel) = splitRows ? (0, panels) : (panels * part / parts, panels * (part + 1) / parts)
                let rows = MatrixView(a.base + firstRow * a.rowStride, rowStride: a.rowStride, columnStride: a.columnStride)
                let packedA = workspace.packedA[part]
                let packedB = workspace.packedB[part]
                var depthStart = 0
                while depthStart < k {
                    // Blocks end at multiples of depthBlock in the global depth.
                    let global = offset + depthStart
                    let depth = min(depthBlock - global % depthBlock, k - depthStart)
                    let continues = global % depthBlock != 0
                    let finishes = (global + depth) % depthBlock == 0 || global + depth == total
                    // The sums are complete after this block: the epilogue, if any, follows each tile.
                    let completes = global + depth == total
                    packA(rows, rows: endRow - firstRow, lanes: tileRows, depthStart: depthStart, depth: depth, into: packedA)
                    let add = accumulate || global >= depthBlock
                    var panel = firstPanel
                    while panel < endPanel {
                        let column = panel * panelWidth
                        // The 512-bit tiles take two full panels at a time where they can.
                        let pair = wide && panel + 1 < endPanel && n - column >= 2 * panelWidth
                        let width = min(panelWidth, n - column)
                        // This depth block of B's panel (and the next, for a pair), and how far apart the two are.
                        let (panelB, nextPanel): (UnsafePointer<Float>, Int)
                        if let stride = b.panelStride {
                            (panelB, nextPanel) = (b.base + panel * stride + depthStart * panelWidth, stride)
                        } else {
                            packB(b, depthStart: depthStart, depth: depth, column: column, width: width, into: packedB)
                            if pair {
                                packB(b, depthStart: depthStart, depth: depth, column: column + panelWidth, width: panelWidth,
                                      into: packedB + depth * panelWidth)
                            }
                            (panelB, nextPanel) = (UnsafePointer(packedB), depth * panelWidth)
                        }
                        let tileWidth = pair ? 2 * panelWidth : width
                        // Where C's tile columns start, and whether they are contiguous there.
                        let cColumn = cSegments?.offset(column) ?? column
                        let straddles = cSegments.map { $0.offset(column + tileWidth - 1) - cColumn != tileWidth - 1 } ?? false
                        var row = firstRow
                        while row < endRow {
                            let height = min(tileRows, endRow - row)
                            let carried = piece.map { $0.carry + row * n + column }
                            let start = continues ? carried.map { UnsafePointer($0) } : nil
                            let (target, ldt) = finishes ? (c + row * cRowStride + cColumn, cRowStride) : (carried!, n)
                            let panelA = packedA + (row - firstRow) * depth
                            let addToTarget = finishes && add
                            if straddles {
                                // C's tile spans two segments: computed aside, then stored run by run.
                                straddlingTile(
                                    wide: wide, pair: pair, depth, panelA, panelB, nextPanel, c + row * cRowStride, cRowStride,
                                    cSegments!, column: column, addToTarget, height, width,
                                    epilogue: completes ? epilogue : nil, firstRow: row)
                            } else {
                                tile(wide: wide, pair: pair, depth, panelA, panelB, nextPanel, start, n, target, ldt, addToTarget, height, width)
                                if completes, let epilogue {
                                    for i in 0..<height { epilogue.apply(target + i * ldt, pair ? 2 * panelWidth : width, row: row + i) }
                                }
                            }
                            row += tileRows
                        }
                        panel += pair ? 2 : 1
                    }
                    depthStart += depth
                }
            }
        }
    }

    /// Packs rows 0..<m, depths depthStart..<depthStart+depth of A as consecutive panels of
    /// `lanes` (6 or 8) rows, each stored depth-major (`panel[p * lanes + i]`), zero-padded.
    private static func packA(
        _ a: MatrixView, rows m: Int, lanes: Int, depthStart: Int, depth: Int, into packed: UnsafeMutablePointer<Float>
    ) {
        var row = 0
        var out = packed
        while row < m {
            packLines(
                a.base + row &* a.rowStride + depthStart &* a.columnStride, lines: min(lanes, m - row),
                lineStride: a.rowStride, depth: depth, depthStride: a.columnStride, lanes: lanes, into: out)
            out += lanes * depth
            row += lanes
        }
    }

    /// Packs a depth × width block of B as `packed[p * 16 + j]`, zero-padded to 16 columns.
    private static func packB(
        _ b: MatrixView, depthStart: Int, depth: Int, column: Int, width: Int, into packed: UnsafeMutablePointer<Float>
    ) {
        let columnOffset = b.segments?.offset(column) ?? column &* b.columnStride
        if let segments = b.segments, segments.offset(column + width - 1) - columnOffset != width - 1 {
            // The panel spans two segments: each depth's row copied run by run.
            for p in 0..<depth {
                let source = b.base + (depthStart + p) &* b.rowStride, target = packed + p &* panelWidth
                segments.forEachRun(column, width) { j, count in
                    (target + (j - column)).update(from: source + segments.offset(j), count: count)
                }
                for j in width..<panelWidth { target[j] = 0 }
            }
            return
        }
        let block = b.base + depthStart &* b.rowStride + columnOffset
        if b.columnStride == 1 && width == panelWidth {
            // Two vector moves per row: a memmove call per 16 floats would cost more than the copy.
            for p in 0..<depth {
                let source = block + p &* b.rowStride, target = packed + p &* panelWidth
                store(load(source), target)
                store(load(source + 8), target + 8)
            }
            return
        }
        packLines(
            block, lines: width, lineStride: b.columnStride, depth: depth, depthStride: b.rowStride,
            lanes: panelWidth, into: packed)
    }

    /// The packing both operands share: `lines` lines of a strided operand (element (l, p) at
    /// `source[l · lineStride + p · depthStride]`) stored depth-major as `packed[p · lanes + l]`,
    /// lanes `lines..<lanes` zero. Loops run along whichever direction is contiguous, so reads
    /// stream; the padding goes a lane at a time, since a loop over a step's few padding lanes
    /// would compile to a `memset` call per depth step.
    private static func packLines(
        _ source: UnsafePointer<Float>, lines: Int, lineStride: Int, depth: Int, depthStride: Int, lanes: Int,
        into packed: UnsafeMutablePointer<Float>
    ) {
        if depthStride == 1 && (lanes == 6 || lanes == 8) {
            // A transposing pack of A (the columns, in a weight gradient): 8 depths of up to
            // `lanes` lines at a time as an 8 × 8 block (missing lines zero), each transposed
            // row's first `lanes` lanes stored.
            var p = 0
            while p + 8 <= depth {
                if lanes == 8 && lines == 8 {
                    // A full 8-line panel (every one but a matrix's last): no per-line checks.
                    let s = source + p
                    let t = VectorKernels.transposed((
                        load(s), load(s + lineStride), load(s + 2 &* lineStride), load(s + 3 &* lineStride),
                        load(s + 4 &* lineStride), load(s + 5 &* lineStride), load(s + 6 &* lineStride), load(s + 7 &* lineStride)))
                    let target = packed + p &* 8
                    store(t.0, target); store(t.1, target + 8); store(t.2, target + 16); store(t.3, target + 24)
                    store(t.4, target + 32); store(t.5, target + 40); store(t.6, target + 48); store(t.7, target + 56)
                    p += 8
                    continue
                }
                @inline(__always) func line(_ l: Int) -> Vector { l < lines ? load(source + (l &* lineStride &+ p)) : Vector() }
                let t = VectorKernels.transposed((line(0), line(1), line(2), line(3), line(4), line(5), line(6), line(7)))
                @inline(__always) func put(_ v: Vector, _ j: Int) {
                    let target = packed + (p &+ j) &* lanes
                    if lanes == 8 { return store(v, target) }
                    UnsafeMutableRawPointer(target).storeBytes(of: v.lowHalf, as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(target).storeBytes(of: v.highHalf.lowHalf, toByteOffset: 16, as: SIMD2<Float>.self)
                }
                put(t.0, 0); put(t.1, 1); put(t.2, 2); put(t.3, 3); put(t.4, 4); put(t.5, 5); put(t.6, 6); put(t.7, 7)
                p += 8
            }
            for p in p..<depth {
                for l in 0..<lanes { packed[p &* lanes &+ l] = l < lines ? source[l &* lineStride &+ p] : 0 }
            }
            return
        } else if depthStride == 1 {
            for l in 0..<lines {
                let line = source + l &* lineStride
                for p in 0..<depth { packed[p &* lanes &+ l] = line[p] }
            }
        } else {
            for p in 0..<depth {
                let step = source + p &* depthStride
                for l in 0..<lines { packed[p &* lanes &+ l] = step[l &* lineStride] }
            }
        }
        for l in lines..<lanes {
            for p in 0..<depth { packed[p &* lanes &+ l] = 0 }
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    private static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

    /// A tile of `rows` (6, 4 or 2: a constant at each call, so the unused rows compile away)
    /// by 16: C[0..<rows, 0..<16] (+)= Apanel · Bpanel, the sum starting from zero or from
    /// `start` (row stride `lds`), the partial sums a previous depth piece left. Each row's sums
    /// are the same whatever `rows` is.
    @inline(__always)
    private static func kernel(
        rows: Int, _ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ start: UnsafePointer<Float>?, _ lds: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool
    ) {
        var c00 = Vector(), c01 = Vector(), c10 = Vector(), c11 = Vector()
        var c20 = Vector(), c21 = Vector(), c30 = Vector(), c31 = Vector()
        var c40 = Vector(), c41 = Vector(), c50 = Vector(), c51 = Vector()
        if let s = start {
            c00 = load(s); c01 = load(s + 8)
            c10 = load(s + lds); c11 = load(s + lds + 8)
            if rows > 2 {
                c20 = load(s + 2 * lds); c21 = load(s + 2 * lds + 8)
                c30 = load(s + 3 * lds); c31 = load(s + 3 * lds + 8)
            }
            if rows > 4 {
                c40 = load(s + 4 * lds); c41 = load(s + 4 * lds + 8)
                c50 = load(s + 5 * lds); c51 = load(s + 5 * lds + 8)
            }
        }
        var pa = a, pb = b
        for _ in 0..<depth {
            let b0 = load(pb), b1 = load(pb + 8)
            var s = Vector(repeating: pa[0])
            c00.addProduct(s, b0); c01.addProduct(s, b1)
            s = Vector(repeating: pa[1])
            c10.addProduct(s, b0); c11.addProduct(s, b1)
            if rows > 2 {
                s = Vector(repeating: pa[2])
                c20.addProduct(s, b0); c21.addProduct(s, b1)
                s = Vector(repeating: pa[3])
                c30.addProduct(s, b0); c31.addProduct(s, b1)
            }
            if rows > 4 {
                s = Vector(repeating: pa[4])
                c40.addProduct(s, b0); c41.addProduct(s, b1)
                s = Vector(repeating: pa[5])
                c50.addProduct(s, b0); c51.addProduct(s, b1)
            }
            pa += 6
            pb += 16
        }
        if accumulate {
            c00 += load(c); c01 += load(c + 8)
            c10 += load(c + ldc); c11 += load(c + ldc + 8)
            if rows > 2 {
                c20 += load(c + 2 * ldc); c21 += load(c + 2 * ldc + 8)
                c30 += load(c + 3 * ldc); c31 += load(c + 3 * ldc + 8)
            }
            if rows > 4 {
                c40 += load(c + 4 * ldc); c41 += load(c + 4 * ldc + 8)
                c50 += load(c + 5 * ldc); c51 += load(c + 5 * ldc + 8)
            }
        }
        store(c00, c); store(c01, c + 8)
        store(c10, c + ldc); store(c11, c + ldc + 8)
        if rows > 2 {
            store(c20, c + 2 * ldc); store(c21, c + 2 * ldc + 8)
            store(c30, c + 3 * ldc); store(c31, c + 3 * ldc + 8)
        }
        if rows > 4 {
            store(c40, c + 4 * ldc); store(c41, c + 4 * ldc + 8)
            store(c50, c + 5 * ldc); store(c51, c + 5 * ldc + 8)
        }
    }

    /// One tile of C, `height` rows by one panel's `width` columns or a pair's 32, by the kernel
    /// that fits it: C (+)= A panel · B panel(s) (a pair's second panel `nextPanel` floats after
    /// the first), the sums starting from zero or from `start` (row stride `lds`).
    @inline(__always)
    private static func tile(
        wide: Bool, pair: Bool, _ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ nextPanel: Int,
        _ start: UnsafePointer<Float>?, _ lds: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool, _ height: Int, _ width: Int
    ) {
        if wide {
            if pair && height == WideTiles.rows {
                WideTiles.tile8x32(
                    depth: depth, a: a, b: b, secondPanel: nextPanel,
                    start: start, lds: lds, c: c, ldc: ldc, accumulate: accumulate)
            } else {
                for half in 0..<(pair ? 2 : 1) {
                    let shift = half * panelWidth
                    wideTile(
                        depth, a, b + half * nextPanel, start.map { $0 + shift }, lds,
                        c + shift, ldc, accumulate, height, width)
                }
            }
        } else if width == panelWidth && height == 6 {
            kernel(rows: 6, depth, a, b, start, lds, c, ldc, accumulate)
        } else if width == panelWidth && height == 4 {
            // A channel count of 16 or 64 ends in a 4-row panel, 32 in a 2-row one.
            kernel(rows: 4, depth, a, b, start, lds, c, ldc, accumulate)
        } else if width == panelWidth && height == 2 {
            kernel(rows: 2, depth, a, b, start, lds, c, ldc, accumulate)
        } else {
            edgeKernel(depth, a, b, start, lds, c, ldc, accumulate, height, width)
        }
    }

    /// A tile whose columns in C span two segments (or more): computed into a tile on the stack
    /// by `tile`, so with the same sums, then stored (or added) one run at a time, each run
    /// followed by the `epilogue` if there is one (the tile's rows are C's rows `firstRow...`).
    private static func straddlingTile(
        wide: Bool, pair: Bool, _ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ nextPanel: Int,
        _ cRow: UnsafeMutablePointer<Float>, _ ldc: Int, _ segments: ColumnSegments, column: Int,
        _ accumulate: Bool, _ height: Int, _ width: Int, epilogue: RowEpilogue?, firstRow: Int
    ) {
        let ldt = 2 * panelWidth
        withUnsafeTemporaryAllocation(of: Float.self, capacity: WideTiles.rows * ldt) { tile in
            let t = tile.baseAddress!
            Self.tile(wide: wide, pair: pair, depth, a, b, nextPanel, nil, 0, t, ldt, false, height, width)
            let tileWidth = pair ? 2 * panelWidth : width
            for i in 0..<height {
                let source = t + i * ldt, target = cRow + i * ldc
                segments.forEachRun(column, tileWidth) { j, count in
                    let from = source + (j - column), to = target + segments.offset(j)
                    for q in 0..<count { to[q] = accumulate ? to[q] + from[q] : from[q] }
                    epilogue?.apply(to, count, row: firstRow + i)
                }
            }
        }
    }

    /// A 512-bit tile of one panel: direct when it is 8 × 16, at the matrix's edge (fewer rows
    /// or columns) through `edgeTile`.
    private static func wideTile(
        _ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ start: UnsafePointer<Float>?, _ lds: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool, _ height: Int, _ width: Int
    ) {
        if height == WideTiles.rows && width == panelWidth {
            return WideTiles.tile8x16(depth: depth, a: a, b: b, start: start, lds: lds, c: c, ldc: ldc, accumulate: accumulate)
        }
        edgeTile(rows: WideTiles.rows, start, lds, c, ldc, accumulate, height, width) { start, tile in
            WideTiles.tile8x16(
                depth: depth, a: a, b: b, start: start, lds: panelWidth, c: tile, ldc: panelWidth, accumulate: false)
        }
    }

    /// A 256-bit tile at the matrix's edge that no direct kernel fits (narrower than 16 columns,
    /// or 1, 3 or 5 rows).
    private static func edgeKernel(
        _ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ start: UnsafePointer<Float>?, _ lds: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool, _ height: Int, _ width: Int
    ) {
        edgeTile(rows: panelHeight, start, lds, c, ldc, accumulate, height, width) { start, tile in
            kernel(rows: 6, depth, a, b, start, panelWidth, tile, panelWidth, false)
        }
    }

    /// The `height` × `width` corner of a full `rows` × 16 tile that `fullTile(start, tile)`
    /// computes on the stack (row stride 16, from the partial sums `start` copied in when there
    /// are any), stored or added into C.
    private static func edgeTile(
        rows: Int, _ start: UnsafePointer<Float>?, _ lds: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool, _ height: Int, _ width: Int,
        _ fullTile: (_ start: UnsafePointer<Float>?, _ tile: UnsafeMutablePointer<Float>) -> Void
    ) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * panelWidth) { tile in
            let t = tile.baseAddress!
            if let start {
                t.initialize(repeating: 0, count: rows * panelWidth)
                for i in 0..<height {
                    for j in 0..<width { t[i * panelWidth + j] = start[i * lds + j] }
                }
            }
            fullTile(start == nil ? nil : UnsafePointer(t), t)
            for i in 0..<height {
                for j in 0..<width {
                    c[i * ldc + j] = accumulate ? c[i * ldc + j] + t[i * panelWidth + j] : t[i * panelWidth + j]
                }
            }
        }
    }
}
