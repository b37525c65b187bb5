import CPUFeatures

/// The matrix product's register tiles in 512-bit vectors, for processors with AVX-512.
///
/// This module alone is compiled for AVX-512 (Package.swift), so nothing here may run before
/// `WideTiles.available` says yes; `MatrixMultiply` asks once and keeps to its 256-bit tiles
/// otherwise. The operands are packed as `MatrixMultiply` packs them: A in panels of 8 rows
/// stored depth-major (`a[p · 8 + i]`), B in panels of 16 columns (`b[p · 16 + j]`). Each element
/// of C is the same sum, in the same order, as in the 256-bit tiles (one fused multiply-add per
/// depth, from zero or from `start`), so the two give the same bits.
public enum WideTiles {
    public static let rows = 8

    /// Whether this processor and its operating system run AVX-512 (F, BW, DQ and VL).
    public static let available: Bool = {
        #if arch(x86_64)
        return normlab_runs_avx512() != 0
        #else
        return false
        #endif
    }()

    /// C[0..<8, 0..<32] (+)= A · [B₀ B₁], two adjacent 16-column panels of B, the second
    /// `secondPanel` floats after the first. The sums start from zero, or from `start` (row
    /// stride `lds`): the partial sums of an earlier piece of the depth.
    @inline(never)
    public static func tile8x32(
        depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, secondPanel: Int,
        start: UnsafePointer<Float>?, lds: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    ) {
        tile(panels: 2, depth, a, b, secondPanel, start, lds, c, ldc, accumulate)
    }

    /// C[0..<8, 0..<16] (+)= A · B, one 16-column panel.
    @inline(never)
    public static func tile8x16(
        depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        start: UnsafePointer<Float>?, lds: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    ) {
        tile(panels: 1, depth, a, b, 0, start, lds, c, ldc, accumulate)
    }

    typealias Vector = SIMD16<Float>

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    private static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

    /// `panels` (1 or 2, a constant at each call, so the second panel's registers compile away).
    @inline(__always)
    private static func tile(
        panels: Int, _ depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ secondPanel: Int,
        _ start: UnsafePointer<Float>?, _ lds: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool
    ) {
        var c00 = Vector(), c10 = Vector(), c20 = Vector(), c30 = Vector()
        var c40 = Vector(), c50 = Vector(), c60 = Vector(), c70 = Vector()
        var c01 = Vector(), c11 = Vector(), c21 = Vector(), c31 = Vector()
        var c41 = Vector(), c51 = Vector(), c61 = Vector(), c71 = Vector()
        if let s = start {
            c00 = load(s); c10 = load(s + lds); c20 = load(s + 2 * lds); c30 = load(s + 3 * lds)
            c40 = load(s + 4 * lds); c50 = load(s + 5 * lds); c60 = load(s + 6 * lds); c70 = load(s + 7 * lds)
            if panels > 1 {
                c01 = load(s + 16); c11 = load(s + lds + 16); c21 = load(s + 2 * lds + 16); c31 = load(s + 3 * lds + 16)
                c41 = load(s + 4 * lds + 16); c51 = load(s + 5 * lds + 16)
                c61 = load(s + 6 * lds + 16); c71 = load(s + 7 * lds + 16)
            }
        }
        var pa = a, pb = b
        for _ in 0..<depth {
            let b0 = load(pb)
            let b1 = panels > 1 ? load(pb + secondPanel) : Vector()
            var s = Vector(repeating: pa[0])
            c00.addProduct(s, b0); if panels > 1 { c01.addProduct(s, b1) }
            s = Vector(repeating: pa[1])
            c10.addProduct(s, b0); if panels > 1 { c11.addProduct(s, b1) }
            s = Vector(repeating: pa[2])
            c20.addProduct(s, b0); if panels > 1 { c21.addProduct(s, b1) }
            s = Vector(repeating: pa[3])
            c30.addProduct(s, b0); if panels > 1 { c31.addProduct(s, b1) }
            s = Vector(repeating: pa[4])
            c40.addProduct(s, b0); if panels > 1 { c41.addProduct(s, b1) }
            s = Vector(repeating: pa[5])
            c50.addProduct(s, b0); if panels > 1 { c51.addProduct(s, b1) }
            s = Vector(repeating: pa[6])
            c60.addProduct(s, b0); if panels > 1 { c61.addProduct(s, b1) }
            s = Vector(repeating: pa[7])
            c70.addProduct(s, b0); if panels > 1 { c71.addProduct(s, b1) }
            pa += 8
            pb += 16
        }
        if accumulate {
            c00 += load(c); c10 += load(c + ldc); c20 += load(c + 2 * ldc); c30 += load(c + 3 * ldc)
            c40 += load(c + 4 * ldc); c50 += load(c + 5 * ldc); c60 += load(c + 6 * ldc); c70 += load(c + 7 * ldc)
            if panels > 1 {
                c01 += load(c + 16); c11 += load(c + ldc + 16); c21 += load(c + 2 * ldc + 16); c31 += load(c + 3 * ldc + 16)
                c41 += load(c + 4 * ldc + 16); c51 += load(c + 5 * ldc + 16)
                c61 += load(c + 6 * ldc + 16); c71 += load(c + 7 * ldc + 16)
            }
        }
        store(c00, c); store(c10, c + ldc); store(c20, c + 2 * ldc); store(c30, c + 3 * ldc)
        store(c40, c + 4 * ldc); store(c50, c + 5 * ldc); store(c60, c + 6 * ldc); store(c70, c + 7 * ldc)
        if panels > 1 {
            store(c01, c + 16); store(c11, c + ldc + 16); store(c21, c + 2 * ldc + 16); store(c31, c + 3 * ldc + 16)
            store(c41, c + 4 * ldc + 16); store(c51, c + 5 * ldc + 16)
            store(c61, c + 6 * ldc + 16); store(c71, c + 7 * ldc + 16)
        }
    }
}
