/// A network's norm slot: the layer that holds one normalizer.
public final class NormalizerLayer: RectifyingLayer {
    public let normalizer: any Normalizer
    var rectifiesOutput = false
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])
    /// Makes another normalizer of the same settings, for a lane of a training step.
    private let makeNormalizer: (() throws -> any Normalizer)?
    /// The normalizer's capabilities, asked for once (`Normalizer`).
    private let rectifying: (any RectifyingNormalizer)?
    private let releasing: (any InputReleasingNormalizer)?
    /// The normalizer, when its statistics are per sample (it can run in lanes).
    private let perSample: (any PerSampleNormalizer)?
    /// The statistics the lanes of a training step share, when they are the whole batch's.
    private let sharedStatistics: BatchStatisticsLane.Shared?

    /// - Parameter makeNormalizer: makes another normalizer of the same settings, which lets a
    ///   training step run the slot in lanes when the normalizer's statistics are per sample.
    public init(_ normalizer: any Normalizer, makeNormalizer: (() throws -> any Normalizer)? = nil) {
        self.normalizer = normalizer
        self.makeNormalizer = makeNormalizer
        rectifying = normalizer as? any RectifyingNormalizer
        releasing = normalizer as? any InputReleasingNormalizer
        perSample = normalizer as? any PerSampleNormalizer
        sharedStatistics = (normalizer as? any BatchStatisticsNormalizer).map(BatchStatisticsLane.Shared.init)
    }

    var canRectify: Bool { rectifying != nil }

    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        if let rectifying {
            try rectifying.forward(input, mode: mode, into: &output, rectifying: rectifiesOutput)
        } else {
            try normalizer.forward(input, mode: mode, into: &output)
        }
        // No backward follows an inference pass: the input the normalizer kept is let go, so the
        // layer before overwrites its buffer in place next time.
        if mode == .inference { releasing?.releaseSavedInput() }
        return output
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        try normalizer.backward(outputGradient, into: &inputGradient)
        return inputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 4 || shape.count == 2, shape[1] == normalizer.channelCount else {
            throw ModelError.invalidShape("a normalizer of \(normalizer.channelCount) channels cannot take input of shape \(shape)")
        }
        return shape
    }

    /// gamma and beta, which weight decay leaves alone.
    public func visitOwnParameters(_ body: ParameterVisitor) {
        guard !normalizer.parameters.gamma.isEmpty else { return }
        let gradients = normalizer.gradients
        body(&normalizer.parameters.gamma, gradients.gamma, false)
        body(&normalizer.parameters.beta, gradients.beta, false)
    }
}

extension NormalizerLayer: LaneLayer {
    /// A slot whose normalizer's statistics are each sample's own runs in lanes with a copy of
    /// it; one whose statistics are the whole batch's, in lanes that share them
    /// (`BatchStatisticsLane`). A normalizer with only the plain protocol keeps the whole batch
    /// together.
    func makeLane(_ context: LaneContext) throws -> (any Layer)? {
        if let sharedStatistics {
            let lane = BatchStatisticsLane(sharing: sharedStatistics, context: context)
            lane.rectifiesOutput = rectifiesOutput
            return lane
        }
        guard perSample != nil, let makeNormalizer else { return nil }
        let lane = NormalizerLayer(try makeNormalizer(), makeNormalizer: makeNormalizer)
        lane.rectifiesOutput = rectifiesOutput
        return lane
    }

    /// Copies gamma and beta into a per-sample lane's own arrays: shared storage would make the
    /// SGD update that follows copy this slot's arrays on write, with an allocation every step.
    /// (Lanes with shared statistics use this slot's normalizer itself.)
    func prepare(_ lane: any Layer) {
        guard let lane = lane as? NormalizerLayer else { return }
        let source = normalizer.parameters, target = lane.normalizer
        target.parameters.gamma.replaceSubrange(0..<source.gamma.count, with: source.gamma)
        target.parameters.beta.replaceSubrange(0..<source.beta.count, with: source.beta)
    }

    func inputGradient(_ outputGradient: Tensor) throws -> Tensor { try backward(outputGradient) }

    /// Per-sample lanes' shares add up here; lanes with shared statistics set the normalizer's
    /// gradients as they meet.
    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        guard let perSample, let lane = (lane as? NormalizerLayer)?.perSample else { return }
        perSample.setGradients(lane.gradients(continuing: piece.isFirst ? .zeros(channelCount: normalizer.channelCount) : perSample.gradients))
    }
}
