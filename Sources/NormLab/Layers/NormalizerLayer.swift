/// A network's norm slot: the layer that holds one normalizer.
public final class NormalizerLayer: RectifyingLayer {
    public let normalizer: any Normalizer
    var rectifiesOutput = false
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])

    public init(_ normalizer: any Normalizer) {
        self.normalizer = normalizer
    }

    var canRectify: Bool { normalizer is any RectifyingNormalizer }

    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        try normalizer.forward(input, mode: mode, into: &output, rectifying: rectifiesOutput)
        // No backward follows an inference pass: the input the normalizer kept is let go, so the
        // layer before overwrites its buffer in place next time.
        if mode == .inference { normalizer.releaseSavedInputIfAny() }
        return output
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        try normalizer.backward(outputGradient, into: &inputGradient)
        return inputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 4 || shape.count == 2, shape[1] == normalizer.channelCount else {
            throw ModelError.invalidShape("a normalizer of \(normalizer.channelCount) channels cannot take input of shape \(shape)")
        }
        return shape
    }

    /// gamma and beta, which weight decay leaves alone.
    public func visitOwnParameters(_ body: ParameterVisitor) {
        guard !normalizer.parameters.gamma.isEmpty else { return }
        let gradients = normalizer.gradients
        body(&normalizer.parameters.gamma, gradients.gamma, false)
        body(&normalizer.parameters.beta, gradients.beta, false)
    }
}
