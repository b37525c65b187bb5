/// 2×2 max pooling with stride 2; H and W must be even.
public final class MaxPool2D {
    /// For each output, the flat index of the input element it took.
    private var argmax: [Int32] = []
    private var inputShape: [Int] = []

    public init() {}

    public func forward(_ x: Tensor, into y: inout Tensor) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(h % 2 == 0 && w % 2 == 0, "max pooling needs even H and W, got \(x.shape)")
        inputShape = x.shape
        y.reshape(to: [n, c, h / 2, w / 2])
        if argmax.count != y.count { argmax = [Int32](repeating: 0, count: y.count) }
        x.scalars.withUnsafeBufferPointer { x in
            y.scalars.withUnsafeMutableBufferPointer { y in
                argmax.withUnsafeMutableBufferPointer { argmax in
                    Parallelism.forEach(n * c, cost: 3 * h * w) { planes in
                        for plane in planes {
                            Self.pool(plane: plane, x.baseAddress!, h, w, y.baseAddress!, argmax.baseAddress!)
                        }
                    }
                }
            }
        }
    }

    /// Pools one H×W plane into its (H/2)×(W/2) outputs and their argmax: each window's
    /// top-left value, replaced by top-right, bottom-left, bottom-right in turn when strictly
    /// larger. Eight windows at a time (their 16 columns split into even and odd), the rest
    /// one by one, with the same comparisons.
    private static func pool(
        plane: Int, _ x: UnsafePointer<Float>, _ h: Int, _ w: Int,
        _ y: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>
    ) {
        let (oh, ow) = (h / 2, w / 2)
        let vectorOutputs = ow / 8 * 8
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        for oy in 0..<oh {
            let top = plane * h * w + 2 * oy * w
            let out = (plane * oh + oy) * ow
            var ox = 0
            while ox < vectorOutputs {
                let topLeft = top + 2 * ox
                let upper = UnsafeRawPointer(x + topLeft).loadUnaligned(as: SIMD16<Float>.self)
                let lower = UnsafeRawPointer(x + topLeft + w).loadUnaligned(as: SIMD16<Float>.self)
                var value = upper.evenHalf
                var offset = SIMD8<Int32>(repeating: 0)
                // Selects instead of branches: which element wins is data-dependent.
                @inline(__always) func consider(_ candidate: SIMD8<Float>, _ candidateOffset: Int) {
                    let larger = candidate .> value
                    value.replace(with: candidate, where: larger)
                    offset.replace(with: Int32(candidateOffset), where: larger)
                }
                consider(upper.oddHalf, 1)
                consider(lower.evenHalf, w)
                consider(lower.oddHalf, w + 1)
                UnsafeMutableRawPointer(y + out + ox).storeBytes(of: value, as: SIMD8<Float>.self)
                let index = SIMD8<Int32>(repeating: Int32(topLeft)) &+ lanes &+ offset
                UnsafeMutableRawPointer(argmax + out + ox).storeBytes(of: index, as: SIMD8<Int32>.self)
                ox += 8
            }
            while ox < ow {
                let topLeft = top + 2 * ox
                var best = topLeft
                var value = x[topLeft]
                @inline(__always) func consider(_ candidate: Int) {
                    let larger = x[candidate] > value
                    value = larger ? x[candidate] : value
                    best = larger ? candidate : best
                }
                consider(topLeft + 1)
                consider(topLeft + w)
                consider(topLeft + w + 1)
                y[out + ox] = value
                argmax[out + ox] = Int32(best)
                ox += 1
            }
        }
    }

    /// Routes each output's gradient to the input element it took.
    public func backward(_ dy: Tensor, into dx: inout Tensor) {
        dx.reshape(to: inputShape)
        let planes = inputShape[0] * inputShape[1]
        dy.scalars.withUnsafeBufferPointer { dy in
            argmax.withUnsafeBufferPointer { argmax in
                dx.scalars.withUnsafeMutableBufferPointer { dx in
                    // Each output's argmax lies in its own plane, so planes split cleanly.
                    let planeSize = dx.count / max(1, planes), outputsPerPlane = dy.count / max(1, planes)
                    Parallelism.forEach(planes, cost: 2 * planeSize) { range in
                        let dx = dx.baseAddress!
                        (dx + range.lowerBound * planeSize).update(repeating: 0, count: range.count * planeSize)
                        for i in (range.lowerBound * outputsPerPlane)..<(range.upperBound * outputsPerPlane) {
                            dx[Int(argmax[i])] += dy[i]
                        }
                    }
                }
            }
        }
    }
}

/// Global average pooling: [N, C, H, W] → [N, C], each plane's mean.
public final class GlobalAveragePool {
    private var inputShape: [Int] = []

    public init() {}

    public func forward(_ x: Tensor, into y: inout Tensor) {
        inputShape = x.shape
        let (n, c, p) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        y.reshape(to: [n, c])
        x.scalars.withUnsafeBufferPointer { x in
            for plane in 0..<(n * c) {
                y.scalars[plane] = Float(VectorKernels.sum(x.baseAddress! + plane * p, p) / Double(p))
            }
        }
    }

    public func backward(_ dy: Tensor, into dx: inout Tensor) {
        let p = inputShape[2] * inputShape[3]
        dx.reshape(to: inputShape)
        dx.scalars.withUnsafeMutableBufferPointer { dx in
            for plane in 0..<dy.count {
                (dx.baseAddress! + plane * p).update(repeating: dy.scalars[plane] / Float(p), count: p)
            }
        }
    }
}
