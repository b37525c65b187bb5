/// The rectifier, y = max(x, 0).
public final class ReLU {
    public init() {}

    public func forward(_ x: Tensor, into y: inout Tensor) {
        y.reshape(to: x.shape)
        x.scalars.withUnsafeBufferPointer { x in
            y.scalars.withUnsafeMutableBufferPointer { y in
                for i in 0..<x.count { y[i] = max(x[i], 0) }
            }
        }
    }

    /// dx = dy where the forward output was positive, else 0.
    public func backward(_ dy: Tensor, output y: Tensor, into dx: inout Tensor) {
        dx.reshape(to: dy.shape)
        dy.scalars.withUnsafeBufferPointer { dy in
            y.scalars.withUnsafeBufferPointer { y in
                dx.scalars.withUnsafeMutableBufferPointer { dx in
                    for i in 0..<dy.count { dx[i] = y[i] > 0 ? dy[i] : 0 }
                }
            }
        }
    }
}
