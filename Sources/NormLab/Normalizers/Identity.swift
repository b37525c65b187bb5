/// No normalization: the "none" baseline, `y = x`, so experiments can compare against it.
/// It has no trainable values.
public final class Identity: RectifyingNormalizer, InputReleasingNormalizer {
    public var kind: NormalizerKind { .none }
    public let channelCount: Int
    /// None: there is nothing to train.
    public var parameters: [Parameter] { [] }
    private var lastShape: [Int]?

    public init(channelCount: Int) throws {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        self.channelCount = channelCount
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        _ = try NormalizationLayout(shape: input.shape, channelCount: channelCount, kind: kind)
        lastShape = input.shape
        if rectifying {
            output.reshape(to: input.shape)
            elementwise(input, input, into: &output) { x, _ in max(x, 0) }
        } else {
            output.copyValues(of: input)
        }
    }

    public func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        guard let lastShape else { throw NormalizerError.backwardWithoutForward }
        guard gradOutput.shape == lastShape else {
            throw NormalizerError.gradientShapeMismatch(expected: lastShape, got: gradOutput.shape)
        }
        self.lastShape = nil
        gradInput.copyValues(of: gradOutput)
    }

    public func releaseSavedInput() {
        lastShape = nil
    }
}

extension NormalizerKind {
    public static let none = NormalizerKind(registering: "none")
}

extension Identity {
    /// Its entry in the lab (`NormalizerRegistry`): models leave its slots empty.
    static let registration = NormalizerRegistration(
        kind: .none, displayName: "none", summary: "no normalization (convolutions keep their bias)", defaultEpsilon: nil,
        fillsSlots: false, pageDescription: "no normalization, convolutions with bias", benchmark: nil
    ) { _, channels in
        try Identity(channelCount: channels)
    }
}
