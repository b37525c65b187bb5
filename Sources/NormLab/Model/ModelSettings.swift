/// Which network to train, by the name users write (`smallcnn`, `resnet-20`; `ModelRegistry`),
/// and the options that change how it starts.
public struct ModelSettings: Equatable, Sendable {
    /// The network.
    public let architecture: any Architecture
    /// Residual networks: each block's last gamma starts at 0 (with no normalizer: SkipInit).
    public var zeroInitResidual: Bool
    /// Whether every convolution standardizes its weights (`WeightStandardization`).
    public var weightStandardization = false
    /// A factor on the Kaiming standard deviation of every convolution's and linear layer's
    /// initial weights (1: Kaiming's).
    public var initScale: Float = 1

    /// The name as users write it.
    public var name: String { architecture.name }

    public static let smallCNN = ModelSettings(architecture: SmallCNN(), zeroInitResidual: false)

    /// - Throws: `ModelError.unknownModel` for a name the lab does not have.
    public init(name: String, zeroInitResidual: Bool = false, weightStandardization: Bool = false) throws {
        guard let architecture = try ModelRegistry.architecture(named: name) else {
            throw ModelError.unknownModel("unknown model \"\(name)\": the lab has \(ModelRegistry.nameList)")
        }
        self.init(architecture: architecture, zeroInitResidual: zeroInitResidual, weightStandardization: weightStandardization)
    }

    public init(architecture: any Architecture, zeroInitResidual: Bool = false, weightStandardization: Bool = false) {
        self.architecture = architecture
        self.zeroInitResidual = zeroInitResidual
        self.weightStandardization = weightStandardization
    }

    public static func == (a: ModelSettings, b: ModelSettings) -> Bool {
        a.name == b.name && a.zeroInitResidual == b.zeroInitResidual && a.weightStandardization == b.weightStandardization
            && a.initScale == b.initScale
    }

    /// The channel counts of the model's norm slots.
    public var normalizedWidths: [Int] { architecture.normalizedWidths }

    /// Whether the model has residual blocks.
    public var hasShortcuts: Bool { architecture.hasResidualBranches }

    /// Checks that the model can be built with these normalizer settings and placement, for
    /// images of `image` (nil: any) and `classes` classes, and throws a message that says why not.
    public func validate(normalizer: NormalizerSettings, placement: NormalizerPlacement, image: ImageShape? = nil) throws {
        guard initScale > 0, initScale.isFinite else {
            throw ModelError.unsupported("the initial weights' scale must be a positive number, got \(initScale)")
        }
        if zeroInitResidual && !hasShortcuts {
            throw ModelError.unsupported("zero_init_residual starts each residual branch at zero: \(name) has no residual blocks (use resnet-D)")
        }
        let registration = normalizer.kind.registration
        if placement == .after && registration.replacesReLU {
            throw ModelError.placedAfterReLU(registration)
        }
        if placement == .after && hasShortcuts {
            throw ModelError.unsupported(
                "placement \"after\" (conv → ReLU → norm) does not fit \(name): a residual block's last normalizer comes before the addition and the ReLU after it. Use \"before\", or a model without residual blocks")
        }
        for width in normalizedWidths {
            do {
                _ = try normalizer.makeNormalizer(channelCount: width)
            } catch {
                throw ModelError.unsupported("\(name) has norm slots of \(normalizedWidths.map(String.init).joined(separator: ", ")) channels: \(error)")
            }
        }
        if let image {
            guard image.channels > 0, image.height > 0, image.width > 0 else {
                throw ModelError.invalidShape("images of \(image) cannot be trained on")
            }
            try architecture.validate(image: image)
        }
    }

    /// Builds the model with seeded Kaiming-normal weights (fan-in, ReLU gain, times
    /// `initScale`), zero biases, gamma 1 and beta 0.
    /// - Parameter makeNormalizer: see `NormSlots`.
    /// - Throws: `ModelError` or `NormalizerError` when the model cannot be built for this data.
    public func make(
        normalizer: NormalizerSettings, placement: NormalizerPlacement = .before, image: ImageShape, classes: Int,
        seed: UInt64, makeNormalizer: NormSlots.MakeNormalizer? = nil
    ) throws -> any Model {
        try validate(normalizer: normalizer, placement: placement, image: image)
        var slots = NormSlots(normalizer: normalizer, placement: placement, seed: seed, makeNormalizer: makeNormalizer)
        slots.weightStandardization = weightStandardization
        slots.initScale = initScale
        return try architecture.make(image: image, classes: classes, zeroInitResidual: zeroInitResidual, slots: &slots)
    }
}

extension ModelError {
    /// Placement `after` for a normalizer whose own non-linearity replaces the ReLU after it.
    static func placedAfterReLU(_ registration: NormalizerRegistration) -> ModelError {
        .unsupported(
            "\(registration.displayName) has its own non-linearity in place of the ReLU after it, so it cannot be placed after the ReLU: use placement \"before\"")
    }
}
