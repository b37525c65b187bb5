/// The rectifier, y = max(x, 0).
public final class ReLU: Layer {
    /// Whether the layer before has applied max(·, 0) already (`Sequential`): then the forward
    /// pass only keeps its input, which is its output, for the backward pass.
    var inputIsRectified = false
    /// Whether the layer after takes this layer's backward pass into its own
    /// (`ReLUAbsorbingLayer`): then the backward pass passes the gradient through.
    var backwardIsAbsorbed = false
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])

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

    /// y = max(y, 0) in place: the same bits as `forward` into another tensor.
    public static func rectify(_ y: inout Tensor) {
        let count = y.count
        guard count > 0 else { return }
        y.scalars.withUnsafeMutableBufferPointer { y in
            let y = y.baseAddress!
            Parallelism.forEach((count + chunk - 1) / chunk, cost: chunk) { chunks in
                for i in (chunks.lowerBound * chunk)..<min(count, chunks.upperBound * chunk) { y[i] = max(y[i], 0) }
            }
        }
    }

    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        if inputIsRectified {
            // The backward pass needs the output, which is the input; an inference pass keeps
            // no reference, so the layer before overwrites its buffer in place next time.
            output = mode == .training ? input : Tensor(shape: [0])
            return input
        } else {
            forward(input, into: &output)
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        // Lets go of the output, which may be the layer before's buffer, so that its next
        // forward overwrites it in place.
        defer { output = Tensor(shape: [0]) }
        if backwardIsAbsorbed { return outputGradient }
        backward(outputGradient, output: output, into: &inputGradient)
        return inputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] { shape }

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
