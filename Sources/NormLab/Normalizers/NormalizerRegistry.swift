import Synchronization

/// The normalizers the lab knows, in the order commands, reports and benches list them.
///
/// Adding a normalizer to the lab: its own file, with its class and its `registration`, and one
/// line in `builtIn` below (and its reference fixtures). Every model's norm slots, the command
/// line, experiment files, results records, reports, `bench kernels` and the tests that iterate
/// the registry then have it. A program that uses the library — a test, say — can `register` one
/// of its own.
public enum NormalizerRegistry {
    /// The lab's own normalizers, one line each.
    static let builtIn: [NormalizerRegistration] = [
        Identity.registration,
        BatchNorm.registration,
        GroupNorm.layerRegistration,
        GroupNorm.instanceRegistration,
        GroupNorm.registration,
        BatchRenorm.registration,
        GhostBatchNorm.registration,
        RMSNorm.registration,
        FilterResponseNorm.registration,
        EvoNorm.registration,
        NoisyBatchNorm.registration,
    ]

    private static let entries = Mutex<[NormalizerRegistration]>(builtIn)

    /// Every registered normalizer, the lab's own first.
    public static var all: [NormalizerRegistration] { entries.withLock { $0 } }

    /// Every registered kind, in order.
    public static var kinds: [NormalizerKind] { all.map(\.kind) }

    /// The registration of the normalizer named `name`, if there is one.
    public static func registration(named name: String) -> NormalizerRegistration? {
        entries.withLock { entries in entries.first { $0.kind.rawValue == name } }
    }

    /// Adds a normalizer; from then on its name is accepted wherever a normalizer is named.
    /// - Throws: `NormalizerError.alreadyRegistered` when the name is taken.
    public static func register(_ registration: NormalizerRegistration) throws {
        try entries.withLock { entries in
            guard !entries.contains(where: { $0.kind == registration.kind }) else {
                throw NormalizerError.alreadyRegistered(registration.kind.rawValue)
            }
            entries.append(registration)
        }
    }

    /// "none, batch, layer, …": the names a user may write.
    public static var nameList: String { kinds.map(\.rawValue).joined(separator: ", ") }
}

/// A normalization method, by the name used on the command line, in experiment files and in
/// results (`batch`, `group`, …). Only registered names make kinds (`NormalizerRegistry`).
public struct NormalizerKind: RawRepresentable, Hashable, Codable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// The kind named `rawValue`, if a normalizer of that name is registered.
    public init?(rawValue: String) {
        guard NormalizerRegistry.registration(named: rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    /// A kind by its name, for its own registration.
    public init(registering name: String) { rawValue = name }

    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let kind = NormalizerKind(rawValue: name) else {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: decoder.codingPath,
                debugDescription: "unknown normalizer \"\(name)\"; the lab has \(NormalizerRegistry.nameList)"))
        }
        self = kind
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// What the lab knows of this normalizer besides its type.
    public var registration: NormalizerRegistration {
        guard let registration = NormalizerRegistry.registration(named: rawValue) else {
            preconditionFailure("normalizer \"\(rawValue)\" is not registered")
        }
        return registration
    }

    /// A human-readable name for tables ("batch norm").
    public var displayName: String { registration.displayName }

    public var description: String { rawValue }
}

/// A normalizer's entry in the lab: everything commands, experiment files, records, reports,
/// fixtures and benches know of it.
public struct NormalizerRegistration: Sendable {
    /// Its name.
    public let kind: NormalizerKind
    /// Its name in tables and messages ("batch norm").
    public let displayName: String
    /// One line for `--help`: which values share statistics.
    public let summary: String
    /// ε's default, or nil for a method without one (its records still say 1e-5).
    public let defaultEpsilon: Float?
    /// The settings it takes besides ε, in the order pages describe them.
    public let settings: [NormalizerSetting]
    /// Whether a model's norm slots hold it; false for the identity, whose slots stay empty
    /// (and whose convolutions keep their bias).
    public let fillsSlots: Bool
    /// Whether its output already has its own non-linearity (a learned threshold, a sigmoid
    /// gate), which takes the place of the ReLU that would follow it; such a normalizer
    /// cannot be placed after the ReLU.
    public let replacesReLU: Bool
    /// Whether it draws random numbers in training (a `SeededNormalizer`), so that a training
    /// forward is not a function of its input alone: it has no reference fixtures, and a check
    /// that repeats a forward (finite differences through a whole model) cannot apply to it.
    public let drawsNoise: Bool
    /// How a page describes a run of it when that is not its settings (the identity's "no
    /// normalization").
    public let pageDescription: String?
    /// Whether `bench kernels` times it, with which settings besides the defaults, on which
    /// input shapes.
    public let benchmark: Benchmark?
    /// Builds the normalizer for a layer of `channelCount` channels.
    let make: @Sendable (_ settings: NormalizerSettings, _ channelCount: Int) throws -> any Normalizer

    /// What `bench kernels` times.
    public struct Benchmark: Sendable {
        /// Settings to time it with instead of the defaults (batch renorm's clipping, say).
        public var settings: [String: any SettingValue]
        /// The `[N, C, H, W]` input shapes.
        public var shapes: [[Int]]

        public init(settings: [String: any SettingValue] = [:], shapes: [[Int]] = Benchmark.defaultShapes) {
            self.settings = settings
            self.shapes = shapes
        }

        /// A small CNN's early layers and a large feature map.
        public static let defaultShapes: [[Int]] = [[2, 16, 28, 28], [32, 16, 28, 28], [128, 32, 14, 14], [64, 64, 56, 56]]
    }

    public init(
        kind: NormalizerKind, displayName: String, summary: String, defaultEpsilon: Float? = NormalizerSettings.defaultEpsilon,
        settings: [NormalizerSetting] = [], fillsSlots: Bool = true, replacesReLU: Bool = false, drawsNoise: Bool = false,
        pageDescription: String? = nil,
        benchmark: Benchmark? = Benchmark(),
        make: @escaping @Sendable (_ settings: NormalizerSettings, _ channelCount: Int) throws -> any Normalizer
    ) {
        self.kind = kind
        self.displayName = displayName
        self.summary = summary
        self.defaultEpsilon = defaultEpsilon
        self.settings = settings
        self.fillsSlots = fillsSlots
        self.replacesReLU = replacesReLU
        self.drawsNoise = drawsNoise
        self.pageDescription = pageDescription
        self.benchmark = benchmark
        self.make = make
    }

    /// The setting with experiment-file key `key`.
    public func setting(_ key: String) -> NormalizerSetting? { settings.first { $0.key == key } }

    /// The settings that may be written in `place`.
    public func settings(in place: NormalizerSetting.Place) -> [NormalizerSetting] { settings.filter { $0.places.contains(place) } }
}
