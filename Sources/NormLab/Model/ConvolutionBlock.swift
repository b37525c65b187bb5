/// Where a block's normalizer sits relative to its ReLU.
public enum NormalizerPlacement: String, Codable, Sendable, CaseIterable {
    /// conv → norm → ReLU (the default, as in the batch norm and group norm papers).
    case before
    /// conv → ReLU → norm.
    case after
}

/// conv3x3 → norm → ReLU (or conv → ReLU → norm): one stage of `SmallCNN`.
public final class ConvolutionBlock {
    public let convolution: Conv2D
    public let normalizer: any Normalizer
    public let placement: NormalizerPlacement
    private let relu = ReLU()
    private var convolved = Tensor(shape: [0])
    private var middle = Tensor(shape: [0])
    /// The block's output (after the norm or the ReLU, whichever is last).
    private(set) var output = Tensor(shape: [0])
    private var gradient = Tensor(shape: [0])
    private var gradientMiddle = Tensor(shape: [0])
    /// "none": the block is conv → ReLU, whatever the placement, with no identity in between to
    /// copy its input and gradient through.
    private let skipsNormalizer: Bool
    /// The normalizer, when it can apply the ReLU after it as it writes its output.
    private let rectifyingNormalizer: (any RectifyingNormalizer)?
    /// The normalizer, when it keeps its input for the backward pass and can let go of it.
    private let releasingNormalizer: (any InputReleasingNormalizer)?
    /// The normalizer, when its statistics are each sample's own.
    private let perSampleNormalizer: (any PerSampleNormalizer)?
    /// The normalizer, when its statistics are the whole batch's.
    let batchStatisticsNormalizer: (any BatchStatisticsNormalizer)?
    private let makeNormalizer: NormSlots.MakeNormalizer

    init(inputChannels: Int, outputChannels: Int, normalizer settings: NormalizerSettings,
         placement: NormalizerPlacement, generator: inout SeededGenerator,
         makeNormalizer: @escaping NormSlots.MakeNormalizer) throws {
        // A convolution followed directly by a normalizer needs no bias: the normalizer's mean
        // removes it. With no normalizer, or with the ReLU between, it keeps one.
        let bias = settings.kind == .none || placement == .after
        convolution = Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, bias: bias, generator: &generator)
        normalizer = try makeNormalizer(outputChannels)
        self.placement = placement
        skipsNormalizer = settings.kind == .none
        rectifyingNormalizer = normalizer as? any RectifyingNormalizer
        releasingNormalizer = normalizer as? any InputReleasingNormalizer
        perSampleNormalizer = normalizer as? any PerSampleNormalizer
        batchStatisticsNormalizer = normalizer as? any BatchStatisticsNormalizer
        self.makeNormalizer = makeNormalizer
    }

    /// A lane's copy of `other` (`SmallCNN`): the same convolution weights (shared), a normalizer
    /// of the same settings (its gamma and beta copied in before each step), buffers of its own.
    init(sharingParametersOf other: ConvolutionBlock) throws {
        convolution = Conv2D(sharingParametersOf: other.convolution)
        normalizer = try other.makeNormalizer(other.convolution.outputChannels)
        placement = other.placement
        skipsNormalizer = other.skipsNormalizer
        rectifyingNormalizer = normalizer as? any RectifyingNormalizer
        releasingNormalizer = normalizer as? any InputReleasingNormalizer
        perSampleNormalizer = normalizer as? any PerSampleNormalizer
        batchStatisticsNormalizer = normalizer as? any BatchStatisticsNormalizer
        makeNormalizer = other.makeNormalizer
    }

    /// Copies this block's gamma and beta into a lane's copy, into the lane's own arrays: shared
    /// storage would make the SGD update that follows copy this block's arrays on write, with an
    /// allocation every step.
    func copyNormalizerParameters(to lane: ConvolutionBlock) {
        if skipsNormalizer { return }
        let source = normalizer.parameters
        lane.normalizer.parameters.gamma.replaceSubrange(0..<source.gamma.count, with: source.gamma)
        lane.normalizer.parameters.beta.replaceSubrange(0..<source.beta.count, with: source.beta)
    }

    /// Whether a batch can go through the block a few samples at a time: no normalizer, or one
    /// with per-sample statistics.
    var takesPieces: Bool { skipsNormalizer || perSampleNormalizer != nil }

    func forward(_ x: Tensor, mode: NormalizationMode) throws {
        // The normalizer may still hold last step's input (after an evaluation forward, which
        // no backward follows): release it, so the convolution or ReLU below overwrites that
        // buffer in place instead of copying it first.
        releasingNormalizer?.releaseSavedInput()
        if skipsNormalizer { return convolution.forward(x, into: &output, rectifying: true) }
        convolution.forward(x, into: &convolved)
        switch placement {
        case .before:
            if let rectifyingNormalizer {
                try rectifyingNormalizer.forward(convolved, mode: mode, into: &output, rectifying: true)
            } else {
                // A normalizer with only the plain protocol: the ReLU in a pass of its own.
                try normalizer.forward(convolved, mode: mode, into: &output)
                ReLU.rectify(&output)
            }
        case .after:
            relu.forward(convolved, into: &middle)
            try normalizer.forward(middle, mode: mode, into: &output)
        }
    }

    /// Whether the block ends with its ReLU (conv → norm → ReLU, or conv → ReLU with no
    /// normalizer). The pooling after such a block takes the ReLU's backward pass into its own
    /// (one pass over the gradient instead of two), so `backward` starts at the ReLU's input.
    var endsWithReLU: Bool { skipsNormalizer || placement == .before }

    /// Backpropagates the gradient at the block's end — dL/d(the ReLU's input) when the block
    /// `endsWithReLU`, else dL/doutput — and writes dL/dinput into `inputGradient` unless it is nil.
    /// For a `piece` of a batch after the first (`takesPieces`), the parameters' gradients go on
    /// from the sums the pieces before left.
    func backward(_ endGradient: Tensor, inputGradient: inout Tensor?, piece: SamplePiece) throws {
        precondition(piece.count == piece.batch || takesPieces, "a batch in pieces through batch statistics")
        let convolutionGradient = try normalizerBackward(endGradient, piece: piece)
        if inputGradient != nil {
            convolution.backward(convolutionGradient, into: &inputGradient!, piece: piece)
        } else {
            convolution.parameterGradients(convolutionGradient, piece: piece)
        }
    }

    /// A lane's share of `backward` (`SmallCNN`): dL/dinput, and the normalizer's per-sample
    /// sums, but not the parameters' gradients, which `parameterGradients(from:)` adds up.
    func inputGradients(_ endGradient: Tensor, inputGradient: inout Tensor?) throws {
        let convolutionGradient = try normalizerBackward(endGradient, piece: .whole(endGradient.shape[0]))
        if inputGradient != nil { convolution.inputGradient(convolutionGradient, into: &inputGradient!) }
    }

    /// Adds a lane's share of `backward` — the samples of `piece`, which `lane` ran through its
    /// `inputGradients` from `endGradient` — to the parameters' gradients.
    func parameterGradients(from lane: ConvolutionBlock, endGradient: Tensor, piece: SamplePiece) {
        convolution.parameterGradients(
            lane.skipsNormalizer ? endGradient : lane.gradient, piece: piece, source: lane.convolution)
        if let perSampleNormalizer, let laneNormalizer = lane.perSampleNormalizer {
            perSampleNormalizer.setGradients(laneNormalizer.gradients(
                continuing: piece.isFirst ? .zeros(channelCount: normalizer.channelCount) : perSampleNormalizer.gradients))
        }
    }

    // MARK: A lane's share of a step through batch statistics (`SharedBatchStatistics`)

    /// What the normalizer normalizes: the convolution's output, or the ReLU's after it.
    private var normalizerInput: Tensor { placement == .before ? convolved : middle }

    /// The convolution (and the ReLU, when it comes first), then the plane sums of what the
    /// normalizer normalizes.
    func convolve(_ x: Tensor, statistics: SharedBatchStatistics, share: SamplePiece) {
        convolution.forward(x, into: &convolved)
        if placement == .after { relu.forward(convolved, into: &middle) }
        statistics.addPlaneSums(of: normalizerInput, share: share)
    }

    func addSquaredDeviations(to statistics: SharedBatchStatistics, share: SamplePiece) {
        statistics.addSquaredDeviations(of: normalizerInput, share: share)
    }

    /// The normalizer's output (and the ReLU's, when it comes last): the block's `output`.
    func normalize(with statistics: SharedBatchStatistics) {
        statistics.normalize(normalizerInput, into: &output, rectifying: placement == .before)
    }

    /// The normalizer's gradient sums, from the gradient at the block's end (see `backward`).
    func addGradientSums(_ endGradient: Tensor, to statistics: SharedBatchStatistics, share: SamplePiece) {
        statistics.addGradientSums(endGradient, of: normalizerInput, share: share)
    }

    /// The rest of the block's backward pass, to dL/dinput (unless `inputGradient` is nil); the
    /// parameters' gradients are added up by `parameterGradients(from:endGradient:piece:)`.
    func inputGradients(_ endGradient: Tensor, statistics: SharedBatchStatistics, inputGradient: inout Tensor?) {
        let convolutionGradient = backThroughNormalizer(endGradient) { outputGradient, inputGradient in
            statistics.inputGradient(outputGradient, of: normalizerInput, into: &inputGradient)
        }
        if inputGradient != nil { convolution.inputGradient(convolutionGradient, into: &inputGradient!) }
    }

    /// The normalizer's (and, after it, the ReLU's) backward pass: dL/d(the convolution's output).
    private func normalizerBackward(_ endGradient: Tensor, piece: SamplePiece) throws -> Tensor {
        try backThroughNormalizer(endGradient) { outputGradient, inputGradient in
            try normalizerBackward(outputGradient, into: &inputGradient, piece: piece)
        }
    }

    /// dL/d(the convolution's output) from the gradient at the block's end: through the
    /// normalizer, whose own backward pass `normalizerBackward` is, and the ReLU after it.
    private func backThroughNormalizer(
        _ endGradient: Tensor, _ normalizerBackward: (_ outputGradient: Tensor, _ inputGradient: inout Tensor) throws -> Void
    ) rethrows -> Tensor {
        if skipsNormalizer { return endGradient }
        switch placement {
        case .before:
            try normalizerBackward(endGradient, &gradient)
        case .after:
            try normalizerBackward(endGradient, &gradientMiddle)
            relu.backward(gradientMiddle, output: middle, into: &gradient)
        }
        return gradient
    }

    /// The normalizer's backward pass; for a piece after the first, its gamma and beta
    /// gradients go on from the pieces before.
    private func normalizerBackward(_ outputGradient: Tensor, into inputGradient: inout Tensor, piece: SamplePiece) throws {
        guard let perSampleNormalizer, !piece.isFirst else {
            return try normalizer.backward(outputGradient, into: &inputGradient)
        }
        let before = perSampleNormalizer.gradients
        try perSampleNormalizer.backward(outputGradient, into: &inputGradient)
        perSampleNormalizer.setGradients(perSampleNormalizer.gradients(continuing: before))
    }
}
