import Synchronization

/// The networks the lab can build, in the order `--help` lists them.
///
/// Adding a model to the lab: its own file, with a type that conforms to `Architecture` and its
/// `registration`, and one line in `builtIn` below. Training, evaluation, SGD, PreciseBN, the engine,
/// experiment files and report pages then have it. A program that uses the library can
/// `register` one of its own.
public enum ModelRegistry {
    /// The lab's own models, one line each.
    static let builtIn: [ModelRegistration] = [
        SmallCNN.registration,
        ResNet.registration,
        ResNet.plainRegistration,
    ]

    private static let entries = Mutex<[ModelRegistration]>(builtIn)

    /// Every registered model family, the lab's own first.
    public static var all: [ModelRegistration] { entries.withLock { $0 } }

    /// Adds a model family; from then on its names are accepted wherever a model is named.
    /// - Throws: `ModelError.unsupported` when a family of that name is registered already.
    public static func register(_ registration: ModelRegistration) throws {
        try entries.withLock { entries in
            guard !entries.contains(where: { $0.name == registration.name }) else {
                throw ModelError.unsupported("a model named \"\(registration.name)\" is already registered")
            }
            entries.append(registration)
        }
    }

    /// The architecture named `name` (any case), or nil when no family has that name.
    /// - Throws: `ModelError.unknownModel` when a family recognizes the name but not its
    ///   parameters ("resnet-9").
    static func architecture(named name: String) throws -> (any Architecture)? {
        let lowered = name.lowercased()
        for registration in all {
            if let architecture = try registration.parse(lowered) { return architecture }
        }
        return nil
    }

    /// "smallcnn, resnet-D and plain-D (D = 6n + 2: 8, 14, 20, 32, …)": the names a user may write.
    public static var nameList: String { all.map(\.name).joined(separator: ", ") }
}

/// A family of networks in the lab: how its names read, and how to make one from a name.
public struct ModelRegistration: Sendable {
    /// The name as `--help` shows it (`smallcnn`, `resnet-D`).
    public let name: String
    /// One line for `--help`.
    public let summary: String
    /// The architecture for a lower-cased name, nil when the name is not this family's.
    let parse: @Sendable (_ name: String) throws -> (any Architecture)?

    public init(name: String, summary: String, parse: @escaping @Sendable (_ name: String) throws -> (any Architecture)?) {
        self.name = name
        self.summary = summary
        self.parse = parse
    }
}

/// One network of the lab, with everything the lab knows of it: what its slots hold, what it
/// can take, how a page describes it, and how to build it.
public protocol Architecture: Sendable {
    /// The name users write (`smallcnn`, `resnet-20`).
    var name: String { get }
    /// The channel counts of its norm slots.
    var normalizedWidths: [Int] { get }
    /// Whether it has residual branches (which `zero_init_residual` starts at zero; a norm slot
    /// after the ReLU does not fit them).
    var hasResidualBranches: Bool { get }
    /// Its depth D, for tables whose columns are depths; nil for a model that has no family of
    /// depths.
    var tableDepth: Int? { get }
    /// The network as a page states it ("smallcnn: conv3×3(C→16) → norm → …").
    func pageDescription(zeroInitResidual: Bool) -> String
    /// - Throws: `ModelError.invalidShape` for images it cannot take.
    func validate(image: ImageShape) throws
    /// Builds it with its layers' initial values drawn from `slots`, which also fills its norm
    /// slots.
    /// - Throws: `ModelError` or `NormalizerError` when it cannot be built for this data.
    func make(image: ImageShape, classes: Int, zeroInitResidual: Bool, slots: inout NormSlots) throws -> Network
}

extension Architecture {
    public var hasResidualBranches: Bool { false }
    public var tableDepth: Int? { nil }
    public func validate(image: ImageShape) throws {}
}
