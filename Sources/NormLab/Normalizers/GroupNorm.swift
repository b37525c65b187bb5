/// Group normalization (Wu & He 2018, https://arxiv.org/abs/1803.08494): each sample's channels
/// are split into G contiguous groups, each standardized over its channels and spatial
/// positions, then scaled and shifted per channel by gamma and beta. Independent of the batch,
/// so training and inference are the same.
///
/// Two of its group counts are methods of their own, registered under their own names:
/// - layer norm (Ba, Kiros & Hinton 2016, https://arxiv.org/abs/1607.06450), one group: each
///   sample over all its channels and positions (PyTorch's `GroupNorm(1, C)` on images,
///   `LayerNorm(C)` on features);
/// - instance norm (Ulyanov, Vedaldi & Lempitsky 2016, https://arxiv.org/abs/1607.08022), one
///   group per channel: each (sample, channel) plane over H and W; it needs `[N, C, H, W]` input.
public final class GroupNorm: PerSampleNormalizer, RectifyingNormalizer {
    /// How the channels are grouped.
    public enum Grouping: Equatable, Sendable {
        /// One group: layer norm.
        case layer
        /// One group per channel: instance norm.
        case instance
        /// G groups: group norm.
        case groups(Int)
    }

    public let kind: NormalizerKind
    public let channelCount: Int
    /// G; it divides `channelCount`.
    public let groupCount: Int
    public let epsilon: Float
    /// The per-channel scale, also known as gamma, and shift, beta.
    public let gamma: Parameter, beta: Parameter
    /// gamma and beta, in that order (kept, so that a training step asks without allocating).
    public let parameters: [Parameter]
    /// Whether the input must be `[N, C, H, W]` (instance norm: a plane of one value has no spread).
    private let requiresSpatial: Bool
    private var pass = GroupNormalizationPass()

    /// - Throws: `NormalizerError` when the channel count or group count is not positive, the
    ///   group count does not divide the channel count, or epsilon is not positive.
    public init(channelCount: Int, grouping: Grouping, epsilon: Float = NormalizerSettings.defaultEpsilon) throws {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        switch grouping {
        case .layer: (kind, groupCount, requiresSpatial) = (.layer, 1, false)
        case .instance: (kind, groupCount, requiresSpatial) = (.instance, channelCount, true)
        case .groups(let groups):
            guard groups > 0 else { throw NormalizerError.invalidGroupCount(groups) }
            guard channelCount % groups == 0 else {
                throw NormalizerError.groupsDoNotDivideChannels(channels: channelCount, groups: groups)
            }
            (kind, groupCount, requiresSpatial) = (.group, groups, false)
        }
        try NormalizerError.checkEpsilon(epsilon)
        self.channelCount = channelCount
        self.epsilon = epsilon
        gamma = .gamma(channelCount: channelCount)
        beta = .beta(channelCount: channelCount)
        parameters = [gamma, beta]
    }

    /// A copy with the same settings and the same `gamma` and `beta` objects.
    private init(sharingParametersOf other: GroupNorm) {
        (kind, channelCount, groupCount, epsilon) = (other.kind, other.channelCount, other.groupCount, other.epsilon)
        (gamma, beta, requiresSpatial) = (other.gamma, other.beta, other.requiresSpatial)
        parameters = other.parameters
    }

    /// Group norm with `groupCount` groups.
    public convenience init(channelCount: Int, groupCount: Int, epsilon: Float = NormalizerSettings.defaultEpsilon) throws {
        try self.init(channelCount: channelCount, grouping: .groups(groupCount), epsilon: epsilon)
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        try pass.forward(
            input, groups: groupCount, epsilon: epsilon, gamma: gamma.value, beta: beta.value, kind: kind,
            requiresSpatial: requiresSpatial, into: &output, rectifying: rectifying)
    }

    public func sharingParameters() -> any PerSampleNormalizer { GroupNorm(sharingParametersOf: self) }

    public func inputGradient(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        try pass.backward(gradOutput, gamma: gamma.value, into: &gradInput)
    }

    public func addParameterGradients(to parameters: [Parameter]) {
        parameters[0].gradient.withUnsafeMutableBufferPointer { gamma in
            parameters[1].gradient.withUnsafeMutableBufferPointer { beta in
                pass.addGradients(gamma: gamma, beta: beta)
            }
        }
    }

    public func releaseSavedInput() {
        pass.releaseInput()
    }
}

extension NormalizerKind {
    public static let layer = NormalizerKind(registering: "layer")
    public static let instance = NormalizerKind(registering: "instance")
    public static let group = NormalizerKind(registering: "group")
}

extension GroupNorm {
    /// Layer norm's entry in the lab (`NormalizerRegistry`).
    static let layerRegistration = NormalizerRegistration(
        kind: .layer, displayName: "layer norm", summary: "per sample, over C, H, W"
    ) { settings, channels in
        try GroupNorm(channelCount: channels, grouping: .layer, epsilon: settings.epsilon)
    }

    /// Instance norm's entry in the lab (`NormalizerRegistry`).
    static let instanceRegistration = NormalizerRegistration(
        kind: .instance, displayName: "instance norm", summary: "per sample and channel, over H, W"
    ) { settings, channels in
        try GroupNorm(channelCount: channels, grouping: .instance, epsilon: settings.epsilon)
    }

    /// Group norm's entry in the lab (`NormalizerRegistry`).
    static let registration = NormalizerRegistration(
        kind: .group, displayName: "group norm", summary: "per sample and group of C/G channels, over H, W",
        settings: [.groups],
        benchmark: .init(settings: ["groups": 8])
    ) { settings, channels in
        try GroupNorm(channelCount: channels, groupCount: settings.value("groups") ?? min(8, channels), epsilon: settings.epsilon)
    }
}

extension NormalizerSetting {
    /// G, the groups of channels of group norm and of any normalizer over such groups.
    static let groups = NormalizerSetting(
        "groups", default: Int?.none, help: "G, the number of groups; it must divide every norm slot's channels (default min(8, C))",
        places: [.experiment, .record, .fixture, .commandLine],
        problem: { $0 > 0 ? nil : "the group count must be positive, got \($0)" },
        describe: { "\($0.map(String.init) ?? "min(8, C)") groups" }, layerDefault: { min(8, $0) })
}
