/// The rectifier, y = max(x, 0).
public final class ReLU {
    public init() {}

    /// Elements per unit of parallel work.
    private static let chunk = 4_096

    public func forward(_ x: Tensor, into y: inout Tensor) {
        y.reshape(to: x.shape)
        let count = x.count
        x.scalars.withUnsafeBufferPointer { x in
            y.scalars.withUnsafeMutableBufferPointer { y in
                let (x, y) = (x.baseAddress!, y.baseAddress!)
                Parallelism.forEach((count + Self.chunk - 1) / Self.chunk, cost: Self.chunk) { chunks in
                    for i in (chunks.lowerBound * Self.chunk)..<min(count, chunks.upperBound * Self.chunk) {
                        y[i] = max(x[i], 0)
                    }
                }
            }
        }
    }

    /// dx = dy where the forward output was positive, else 0.
    public func backward(_ dy: Tensor, output y: Tensor, into dx: inout Tensor) {
        dx.reshape(to: dy.shape)
        let count = dy.count
        dy.scalars.withUnsafeBufferPointer { dy in
            y.scalars.withUnsafeBufferPointer { y in
                dx.scalars.withUnsafeMutableBufferPointer { dx in
                    let (dy, y, dx) = (dy.baseAddress!, y.baseAddress!, dx.baseAddress!)
                    Parallelism.forEach((count + Self.chunk - 1) / Self.chunk, cost: Self.chunk) { chunks in
                        for i in (chunks.lowerBound * Self.chunk)..<min(count, chunks.upperBound * Self.chunk) {
                            dx[i] = y[i] > 0 ? dy[i] : 0
                        }
                    }
                }
            }
        }
    }
}
