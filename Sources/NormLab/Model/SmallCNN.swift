/// The lab's reference network (`smallcnn`), for images of C channels whose sides are multiples
/// of 4 (Fashion-MNIST's 1×28×28):
///
/// `conv3x3(C→16) → norm → ReLU → maxpool2 → conv3x3(16→32) → norm → ReLU → maxpool2 →
/// conv3x3(32→64) → norm → ReLU → global average pool → linear(64→classes)`
///
/// (with placement `after`, each `norm → ReLU` is `ReLU → norm`). Its exact shape matters:
/// results are compared with other frameworks running the same model.
public enum SmallCNN {
    /// The convolutions' widths, which are the norm slots' channel counts.
    public static let widths = [16, 32, 64]

    /// Builds the network with seeded Kaiming-normal weights, zero biases, gamma = 1, beta = 0.
    /// - Parameter makeNormalizer: see `NormSlots`.
    /// - Throws: `NormalizerError` when the normalizer settings are impossible for a slot.
    public static func make(
        normalizer: NormalizerSettings, placement: NormalizerPlacement = .before, imageChannels: Int = 1,
        classes: Int = 10, seed: UInt64, makeNormalizer: NormSlots.MakeNormalizer? = nil
    ) throws -> Network {
        var slots = NormSlots(normalizer: normalizer, placement: placement, seed: seed, makeNormalizer: makeNormalizer)
        var layers = try slots.convolutionNormReLU(imageChannels, widths[0]) + [MaxPool2D()]
        layers += try slots.convolutionNormReLU(widths[0], widths[1]) + [MaxPool2D()]
        layers += try slots.convolutionNormReLU(widths[1], widths[2]) + [GlobalAveragePool(), slots.linear(widths[2], classes)]
        return Network(layers)
    }
}
