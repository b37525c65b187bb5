/// The lab's reference network (`smallcnn`), for images of C channels whose sides are multiples
/// of 4 (Fashion-MNIST's 1×28×28):
///
/// `conv3x3(C→16) → norm → ReLU → maxpool2 → conv3x3(16→32) → norm → ReLU → maxpool2 →
/// conv3x3(32→64) → norm → ReLU → global average pool → linear(64→classes)`
///
/// (with placement `after`, each `norm → ReLU` is `ReLU → norm`). Its exact shape matters:
/// results are compared with other frameworks running the same model.
public struct SmallCNN: Architecture {
    /// The convolutions' widths, which are the norm slots' channel counts.
    public static let widths = [16, 32, 64]

    public var name: String { "smallcnn" }
    public var normalizedWidths: [Int] { Self.widths }

    public func pageDescription(zeroInitResidual: Bool) -> String {
        "smallcnn: conv3×3(C→16) → norm → ReLU → maxpool → conv3×3(16→32) → norm → ReLU → maxpool → conv3×3(32→64) → norm → ReLU → global average pool → linear(64→10)"
    }

    public func validate(image: ImageShape) throws {
        if image.height % 4 != 0 || image.width % 4 != 0 {
            throw ModelError.invalidShape(
                "smallcnn pools twice by 2, so image sides must be multiples of 4; these images are \(image.height)×\(image.width)")
        }
    }

    public func make(image: ImageShape, classes: Int, zeroInitResidual: Bool, slots: inout NormSlots) throws -> Network {
        let widths = Self.widths
        var layers = try slots.convolutionNormReLU(image.channels, widths[0]) + [MaxPool2D()]
        layers += try slots.convolutionNormReLU(widths[0], widths[1]) + [MaxPool2D()]
        layers += try slots.convolutionNormReLU(widths[1], widths[2]) + [GlobalAveragePool(), slots.linear(widths[2], classes)]
        return Network(layers)
    }

    /// Builds the network with seeded Kaiming-normal weights, zero biases, gamma = 1, beta = 0.
    /// - Parameter makeNormalizer: see `NormSlots`.
    /// - Throws: `NormalizerError` when the normalizer settings are impossible for a slot.
    public static func make(
        normalizer: NormalizerSettings, placement: NormalizerPlacement = .before, imageChannels: Int = 1,
        classes: Int = 10, seed: UInt64, makeNormalizer: NormSlots.MakeNormalizer? = nil
    ) throws -> Network {
        var slots = NormSlots(normalizer: normalizer, placement: placement, seed: seed, makeNormalizer: makeNormalizer)
        return try SmallCNN().make(
            image: ImageShape(channels: imageChannels, height: 28, width: 28), classes: classes, zeroInitResidual: false, slots: &slots)
    }

    /// Its entry in the lab (`ModelRegistry`).
    static let registration = ModelRegistration(name: "smallcnn", summary: "three convolutions, 16, 32 and 64 wide (the default)") {
        $0 == "smallcnn" ? SmallCNN() : nil
    }
}
