/// A residual block (He et al. 2016, https://arxiv.org/abs/1512.03385): `ReLU(body(x) + shortcut(x))`,
/// the shortcut the identity or a projection.
public final class Residual: Layer {
    public let body: Sequential
    /// nil: the identity.
    public let shortcut: Sequential?
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])
    private var sumGradient = Tensor(shape: [0])

    public init(body: Sequential, shortcut: Sequential? = nil) {
        self.body = body
        self.shortcut = shortcut
    }

    /// max(body(x) + shortcut(x), 0), the addition and the ReLU in one pass.
    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        let branch = try body.forward(input, mode: mode)
        let skip = try shortcut?.forward(input, mode: mode) ?? input
        precondition(branch.shape == skip.shape, "a residual body of shape \(branch.shape), a shortcut of \(skip.shape)")
        output.reshape(to: branch.shape)
        elementwise(branch, skip, into: &output) { max($0 + $1, 0) }
        return output
    }

    /// The ReLU's mask, then each branch's backward pass; their input gradients add up.
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        sumGradient.reshape(to: outputGradient.shape)
        elementwise(outputGradient, output, into: &sumGradient) { $1 > 0 ? $0 : 0 }
        let throughBody = try body.backward(sumGradient)
        let throughShortcut = try shortcut?.backward(sumGradient) ?? sumGradient
        inputGradient.reshape(to: throughBody.shape)
        elementwise(throughBody, throughShortcut, into: &inputGradient) { $0 + $1 }
        return inputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        let branch = try body.outputShape(for: shape)
        let skip = try shortcut?.outputShape(for: shape) ?? shape
        guard branch == skip else {
            throw ModelError.invalidShape("a residual block's body gives \(branch) but its shortcut \(skip): the shape changes, so it needs a projection")
        }
        return branch
    }

    public var sublayers: [any Layer] { [body] + (shortcut.map { [$0] } ?? []) }
}

/// A learnable scalar times its input, y = α·x (α also known as the SkipInit gain, De & Smith
/// 2020, https://arxiv.org/abs/2002.10444: at the end of a residual branch, starting at 0, it
/// lets a network without normalization train as if shallow at first).
public final class Scale: Layer {
    /// [α]
    public let scale: Parameter
    private var input = Tensor(shape: [0])
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])

    public init(initialValue: Float) {
        scale = Parameter([initialValue])
    }

    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        self.input = mode == .training ? input : Tensor(shape: [0])
        let alpha = scale.value[0]
        output.reshape(to: input.shape)
        elementwise(input, input, into: &output) { x, _ in alpha * x }
        return output
    }

    /// dα = Σ dy·x, in element order (in Double); dx = α·dy.
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        var total = 0.0
        for (dy, x) in zip(outputGradient.scalars, input.scalars) { total += Double(dy * x) }
        scale.gradient[0] = Float(total)
        input = Tensor(shape: [0])
        let alpha = scale.value[0]
        inputGradient.reshape(to: outputGradient.shape)
        elementwise(outputGradient, outputGradient, into: &inputGradient) { dy, _ in alpha * dy }
        return inputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] { shape }

    /// α, which weight decay leaves alone (like gamma).
    public func visitOwnParameters(_ body: ParameterVisitor) {
        body(&scale.value, scale.gradient, false)
    }
}

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
