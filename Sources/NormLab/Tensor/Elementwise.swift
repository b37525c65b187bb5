/// z[i] = f(x[i], y[i]) over tensors of one size, split across threads (each element is one
/// thread's, so the bits do not depend on the thread count).
@inline(__always)
func elementwise(_ x: Tensor, _ y: Tensor, into z: inout Tensor, _ f: (Float, Float) -> Float) {
    let count = z.count, chunk = 4_096
    precondition(x.count == count && y.count == count)
    guard count > 0 else { return }
    x.scalars.withUnsafeBufferPointer { x in
        y.scalars.withUnsafeBufferPointer { y in
            z.scalars.withUnsafeMutableBufferPointer { z in
                let (x, y, z) = (x.baseAddress!, y.baseAddress!, z.baseAddress!)
                Parallelism.forEach((count + chunk - 1) / chunk, cost: chunk) { chunks in
                    for i in (chunks.lowerBound * chunk)..<min(count, chunks.upperBound * chunk) { z[i] = f(x[i], y[i]) }
                }
            }
        }
    }
}
