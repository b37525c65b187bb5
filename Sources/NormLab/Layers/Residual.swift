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
        try backward(outputGradient, through: { try $0.backward($1) })
    }

    /// `backward`, each branch's pass by `pass`.
    func backward(_ outputGradient: Tensor, through pass: (Sequential, Tensor) throws -> Tensor) throws -> Tensor {
        sumGradient.reshape(to: outputGradient.shape)
        elementwise(outputGradient, output, into: &sumGradient) { $1 > 0 ? $0 : 0 }
        let throughBody = try pass(body, sumGradient)
        let throughShortcut = try shortcut.map { try pass($0, sumGradient) } ?? sumGradient
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
