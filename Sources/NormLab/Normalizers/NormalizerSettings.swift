/// Everything needed to build a normalizer of any kind for a given channel count: what
/// experiment files and fixtures describe.
public struct NormalizerSettings: Equatable, Codable, Sendable {
    public var kind: NormalizerKind
    /// ε, added to the variance inside the square root.
    public var epsilon: Float = defaultEpsilon
    /// Batch norm and batch renorm: the default weight of the current batch in the running
    /// statistics, PyTorch's (batch renorm's paper uses 0.01; the lab's `brn-momentum`
    /// experiment compares the two).
    public static let defaultMomentum: Float = 0.1
    public static let defaultEpsilon: Float = 1e-5

    /// Batch norm and batch renorm: the weight of the current batch in the running statistics.
    public var momentum: Float = defaultMomentum
    /// Group norm: the number of groups; nil means `min(8, C)`.
    public var groups: Int?
    /// Batch renorm: the initial clipping bounds.
    public var rmax: Float = 1
    public var dmax: Float = 0

    public init(
        kind: NormalizerKind, epsilon: Float = defaultEpsilon, momentum: Float = defaultMomentum, groups: Int? = nil,
        rmax: Float = 1, dmax: Float = 0
    ) {
        self.kind = kind
        self.epsilon = epsilon
        self.momentum = momentum
        self.groups = groups
        self.rmax = rmax
        self.dmax = dmax
    }

    /// Builds the normalizer for a layer with `channelCount` channels.
    /// - Throws: `NormalizerError` when a setting is impossible for that layer.
    public func makeNormalizer(channelCount: Int) throws -> any Normalizer {
        try kind.registration.make(self, channelCount)
    }
}
