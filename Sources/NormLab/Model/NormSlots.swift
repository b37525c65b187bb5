/// Makes a model's layers in construction order from one seeded generator, and puts a
/// normalizer (or none) in each norm slot: what every model file builds with.
public struct NormSlots {
    /// Builds a normalizer for a slot of `channelCount` channels.
    public typealias MakeNormalizer = (_ channelCount: Int) throws -> any Normalizer

    public let normalizer: NormalizerSettings
    public let placement: NormalizerPlacement
    /// Whether the convolutions standardize their weights (`WeightStandardization`).
    public var weightStandardization = false
    /// A factor on every convolution's and linear layer's Kaiming standard deviation.
    public var initScale: Float = 1
    private let makeNormalizer: MakeNormalizer
    public var generator: SeededGenerator

    /// - Parameter makeNormalizer: builds each slot's normalizer; by default
    ///   `normalizer.makeNormalizer(channelCount:)`. (A test passes its own to check that a
    ///   normalizer with only the plain `Normalizer` protocol trains every model.)
    public init(
        normalizer: NormalizerSettings, placement: NormalizerPlacement, seed: UInt64,
        makeNormalizer: MakeNormalizer? = nil
    ) {
        self.normalizer = normalizer
        self.placement = placement
        self.makeNormalizer = makeNormalizer ?? normalizer.makeNormalizer(channelCount:)
        generator = SeededGenerator(seed: seed)
    }

    /// Whether the slots hold normalizers ("none" leaves them empty).
    public var normalizes: Bool { normalizer.kind.registration.fillsSlots }

    /// A convolution whose output goes to a norm slot: with no bias when a normalizer follows it
    /// directly (its mean removes a bias), with one otherwise.
    public mutating func convolution(_ input: Int, _ output: Int, kernel: Int = 3, stride: Int = 1) -> Conv2D {
        let bias = !normalizes || placement == .after
        return Conv2D(
            inputChannels: input, outputChannels: output,
            geometry: ConvolutionGeometry(kernel: kernel, stride: stride, padding: kernel / 2), bias: bias,
            standardizesWeights: weightStandardization, initScale: initScale, generator: &generator)
    }

    /// The norm slot for `channels` channels: a `NormalizerLayer`, or nothing for "none". A
    /// normalizer that draws random numbers is seeded from the slots' generator.
    public mutating func norm(_ channels: Int) throws -> [any Layer] {
        guard normalizes else { return [] }
        let normalizer = try makeNormalizer(channels)
        (normalizer as? any SeededNormalizer)?.seed(generator.next())
        return [NormalizerLayer(normalizer)]
    }

    /// conv → norm → ReLU, or conv → ReLU → norm with placement `after`; conv → norm for a
    /// normalizer whose own non-linearity replaces the ReLU (`NormalizerRegistration.replacesReLU`).
    /// - Throws: `ModelError.unsupported` for such a normalizer with placement `after`.
    public mutating func convolutionNormReLU(_ input: Int, _ output: Int, stride: Int = 1) throws -> [any Layer] {
        let registration = normalizer.kind.registration
        if registration.replacesReLU && placement == .after {
            throw ModelError.placedAfterReLU(registration)
        }
        let convolution = convolution(input, output, stride: stride)
        switch placement {
        case .before: return [convolution] + (try norm(output)) + (registration.replacesReLU ? [] : [ReLU()])
        case .after: return [convolution, ReLU()] + (try norm(output))
        }
    }

    /// A linear layer with Kaiming-normal weights.
    public mutating func linear(_ input: Int, _ output: Int) -> Linear {
        Linear(inputCount: input, outputCount: output, initScale: initScale, generator: &generator)
    }
}
