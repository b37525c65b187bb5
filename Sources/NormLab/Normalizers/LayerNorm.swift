/// Layer normalization (Ba, Kiros & Hinton 2016, https://arxiv.org/abs/1607.06450): each sample
/// is standardized over all its channels and spatial positions, with a per-channel gamma and
/// beta (PyTorch's `GroupNorm(1, C)` on images, `LayerNorm(C)` on features). Group norm with
/// one group.
public final class LayerNorm: PerSampleNormalizer {
    public var kind: NormalizerKind { .layer }
    public let channelCount: Int
    public let epsilon: Float
    public var parameters: AffineParameters
    public private(set) var gradients: AffineParameters
    private var pass = GroupNormalizationPass()

    /// - Throws: `NormalizerError` for a non-positive channel count or epsilon.
    public init(channelCount: Int, epsilon: Float = 1e-5) throws {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        try NormalizerError.checkEpsilon(epsilon)
        self.channelCount = channelCount
        self.epsilon = epsilon
        parameters = AffineParameters(channelCount: channelCount)
        gradients = .zeros(channelCount: channelCount)
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        try pass.forward(
            input, groups: 1, epsilon: epsilon, parameters: parameters, kind: kind, into: &output, rectifying: rectifying)
    }

    public func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        gradients = try pass.backward(gradOutput, gamma: parameters.gamma, into: &gradInput)
    }

    public func gradients(continuing partial: AffineParameters) -> AffineParameters {
        pass.gradients(continuing: partial)
    }

    public func setGradients(_ gradients: AffineParameters) {
        self.gradients = gradients
    }

    public func releaseSavedInput() {
        pass.releaseInput()
    }
}

extension LayerNorm {
    /// Its entry in the lab (`NormalizerKind.registration`).
    static let registration = NormalizerRegistration(displayName: "layer norm", settingKeys: ["eps"]) { settings, channels in
        try LayerNorm(channelCount: channels, epsilon: settings.epsilon)
    }
}
