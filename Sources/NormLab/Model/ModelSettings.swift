/// Which network to train, by the names users write: `smallcnn`, `resnet-D` and `plain-D` for
/// D = 6n + 2 (8, 14, 20, 32, …), and the options that change how it starts.
public struct ModelSettings: Equatable, Sendable {
    public enum Architecture: Equatable, Sendable {
        case smallCNN
        /// `ResNet`; without shortcuts, the plain network.
        case resNet(depth: Int, shortcuts: Bool)
    }

    /// The name as users write it.
    public let name: String
    public let architecture: Architecture
    /// Residual networks: each block's last gamma starts at 0 (with no normalizer: SkipInit).
    public var zeroInitResidual: Bool

    public static let smallCNN = ModelSettings(name: "smallcnn", architecture: .smallCNN, zeroInitResidual: false)

    /// - Throws: `ModelError.unknownModel` for a name the lab does not have.
    public init(name: String, zeroInitResidual: Bool = false) throws {
        let lowered = name.lowercased()
        if lowered == "smallcnn" {
            self = .smallCNN
            self.zeroInitResidual = zeroInitResidual
            return
        }
        for (prefix, shortcuts) in [("resnet-", true), ("plain-", false)] where lowered.hasPrefix(prefix) {
            guard let depth = Int(lowered.dropFirst(prefix.count)), depth >= 8, (depth - 2) % 6 == 0 else {
                throw ModelError.unknownModel(
                    "\"\(name)\": the depth of \(prefix)D must be 6n + 2 for some n ≥ 1 (8, 14, 20, 32, 44, 56, 110)")
            }
            self.init(name: "\(prefix)\(depth)", architecture: .resNet(depth: depth, shortcuts: shortcuts), zeroInitResidual: zeroInitResidual)
            return
        }
        throw ModelError.unknownModel("unknown model \"\(name)\": the lab has smallcnn, resnet-D and plain-D (D = 8, 14, 20, 32, …)")
    }

    private init(name: String, architecture: Architecture, zeroInitResidual: Bool) {
        self.name = name
        self.architecture = architecture
        self.zeroInitResidual = zeroInitResidual
    }

    /// The channel counts of the model's norm slots.
    public var normalizedWidths: [Int] {
        switch architecture {
        case .smallCNN: return SmallCNN.widths
        case .resNet: return ResNet.widths
        }
    }

    /// Whether the model has residual blocks.
    public var hasShortcuts: Bool {
        if case .resNet(_, shortcuts: true) = architecture { return true }
        return false
    }

    /// Checks that the model can be built with these normalizer settings and placement, for
    /// images of `image` (nil: any) and `classes` classes, and throws a message that says why not.
    public func validate(normalizer: NormalizerSettings, placement: NormalizerPlacement, image: ImageShape? = nil) throws {
        if zeroInitResidual && !hasShortcuts {
            throw ModelError.unsupported("zero_init_residual starts each residual branch at zero: \(name) has no residual blocks (use resnet-D)")
        }
        if placement == .after && hasShortcuts {
            throw ModelError.unsupported(
                "placement \"after\" (conv → ReLU → norm) does not fit \(name): a residual block's last normalizer comes before the addition and the ReLU after it. Use \"before\", or plain-D or smallcnn")
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
            if architecture == .smallCNN, image.height % 4 != 0 || image.width % 4 != 0 {
                throw ModelError.invalidShape(
                    "smallcnn pools twice by 2, so image sides must be multiples of 4; these images are \(image.height)×\(image.width)")
            }
        }
    }

    /// Builds the model with seeded Kaiming-normal weights (fan-in, ReLU gain), zero biases,
    /// gamma 1 and beta 0.
    /// - Parameter makeNormalizer: see `NormSlots`.
    /// - Throws: `ModelError` or `NormalizerError` when the model cannot be built for this data.
    public func make(
        normalizer: NormalizerSettings, placement: NormalizerPlacement = .before, image: ImageShape, classes: Int,
        seed: UInt64, makeNormalizer: NormSlots.MakeNormalizer? = nil
    ) throws -> any Model {
        try validate(normalizer: normalizer, placement: placement, image: image)
        switch architecture {
        case .smallCNN:
            return try SmallCNN.make(
                normalizer: normalizer, placement: placement, imageChannels: image.channels, classes: classes, seed: seed,
                makeNormalizer: makeNormalizer)
        case .resNet(let depth, let shortcuts):
            var slots = NormSlots(normalizer: normalizer, placement: placement, seed: seed, makeNormalizer: makeNormalizer)
            let network = try ResNet.make(
                depth: depth, shortcuts: shortcuts, zeroInitResidual: zeroInitResidual, imageChannels: image.channels,
                classes: classes, slots: &slots)
            _ = try network.body.outputShape(for: [1, image.channels, image.height, image.width])
            return network
        }
    }
}
