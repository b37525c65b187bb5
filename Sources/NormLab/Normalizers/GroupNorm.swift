/// Group normalization (Wu & He 2018, https://arxiv.org/abs/1803.08494): each sample's channels
/// are split into `groupCount` contiguous groups, each standardized over its channels and
/// spatial positions. Independent of the batch, so training and inference are the same.
public final class GroupNorm: PerSampleNormalizer {
    public var kind: NormalizerKind { .group }
    public let channelCount: Int
    /// G; it divides `channelCount`.
    public let groupCount: Int
    public let epsilon: Float
    public var parameters: AffineParameters
    public private(set) var gradients: AffineParameters
    private var pass = GroupNormalizationPass()

    /// - Throws: `NormalizerError` when the group count is not positive or does not divide the
    ///   channel count, or epsilon is not positive.
    public init(channelCount: Int, groupCount: Int, epsilon: Float = 1e-5) throws {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        guard groupCount > 0 else { throw NormalizerError.invalidGroupCount(groupCount) }
        guard channelCount % groupCount == 0 else {
            throw NormalizerError.groupsDoNotDivideChannels(channels: channelCount, groups: groupCount)
        }
        try NormalizerError.checkEpsilon(epsilon)
        self.channelCount = channelCount
        self.groupCount = groupCount
        self.epsilon = epsilon
        parameters = AffineParameters(channelCount: channelCount)
        gradients = .zeros(channelCount: channelCount)
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        try pass.forward(
            input, groups: groupCount, epsilon: epsilon, parameters: parameters, kind: kind, into: &output,
            rectifying: rectifying)
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

extension GroupNorm {
    /// Its entry in the lab (`NormalizerKind.registration`).
    static let registration = NormalizerRegistration(displayName: "group norm", settingKeys: ["eps", "groups"]) { settings, channels in
        try GroupNorm(channelCount: channels, groupCount: settings.groups ?? min(8, channels), epsilon: settings.epsilon)
    }
}
