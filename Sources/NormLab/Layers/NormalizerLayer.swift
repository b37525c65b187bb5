/// A network's norm slot: the layer that holds one normalizer.
public final class NormalizerLayer: RectifyingLayer {
    public let normalizer: any Normalizer
    var rectifiesOutput = false
    private var output = Tensor(shape: [0])
    var inputGradient = Tensor(shape: [0])
    /// The normalizer's capabilities, asked for once (`Normalizer`).
    private let rectifying: (any RectifyingNormalizer)?
    private let releasing: (any InputReleasingNormalizer)?
    /// Whether a forward pass has shown that the normalizer keeps its claim to apply the ReLU.
    private var rectifyingChecked = false

    public init(_ normalizer: any Normalizer) {
        self.normalizer = normalizer
        rectifying = normalizer as? any RectifyingNormalizer
        releasing = normalizer as? any InputReleasingNormalizer
    }

    var canRectify: Bool { rectifying != nil }

    /// - Throws: `NormalizerError.ignoresRectifying` when the normalizer, asked to apply the ReLU
    ///   after it, writes a negative value (checked on the first such pass).
    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        if let rectifying {
            try rectifying.forward(input, mode: mode, into: &output, rectifying: rectifiesOutput)
            if rectifiesOutput && !rectifyingChecked {
                guard !output.scalars.contains(where: { $0 < 0 }) else { throw NormalizerError.ignoresRectifying(normalizer.kind) }
                rectifyingChecked = true
            }
        } else {
            try normalizer.forward(input, mode: mode, into: &output)
        }
        // No backward follows an inference pass: the input the normalizer kept is let go, so the
        // layer before overwrites its buffer in place next time.
        if mode == .inference { releasing?.releaseSavedInput() }
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

    /// The normalizer's parameters (gamma and beta), which weight decay leaves alone.
    public var parameters: [Parameter] { normalizer.parameters }
}
