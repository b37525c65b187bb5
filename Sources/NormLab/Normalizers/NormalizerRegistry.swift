/// The normalization methods, by the names used on the command line, in experiment files and in
/// results.
///
/// Adding a normalizer to the lab: its own file, with its class and its `registration`; a case
/// here and a line in `registration` below; and its reference fixtures. Every model's norm slots,
/// the command line, experiment files and reports then have it.
public enum NormalizerKind: String, CaseIterable, Codable, Sendable {
    case none, batch, layer, instance, group, batchrenorm

    /// What the lab knows of each normalizer besides its type.
    public var registration: NormalizerRegistration {
        switch self {
        case .none: return Identity.registration
        case .batch: return BatchNorm.registration
        case .layer: return LayerNorm.registration
        case .instance: return InstanceNorm.registration
        case .group: return GroupNorm.registration
        case .batchrenorm: return BatchRenorm.registration
        }
    }

    /// A human-readable name for tables.
    public var displayName: String { registration.displayName }
}

/// A normalizer's entry in the lab: its name for tables, the settings an experiment file may
/// give it, and how to build one for a layer.
public struct NormalizerRegistration: Sendable {
    public let displayName: String
    /// The keys of an experiment file's normalizer entry it takes besides `kind` and `label`
    /// (`eps`, `momentum`, `groups`, `renorm_schedule`).
    public let settingKeys: Set<String>
    /// Builds the normalizer for a layer of `channelCount` channels.
    public let make: @Sendable (_ settings: NormalizerSettings, _ channelCount: Int) throws -> any Normalizer
}
