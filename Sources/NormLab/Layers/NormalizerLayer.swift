/// A network's norm slot: the layer that holds one normalizer.
public final class NormalizerLayer: RectifyingLayer {
    public let normalizer: any Normalizer
    var rectifiesOutput = false
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])
    /// The normalizer's capabilities, asked for once (`Normalizer`).
    private let rectifying: (any RectifyingNormalizer)?
    private let releasing: (any InputReleasingNormalizer)?
    /// The normalizer, when its statistics are per sample (it can run in lanes).
    private let perSample: (any PerSampleNormalizer)?
    /// The statistics the lanes of a training step share, when they are the whole batch's.
    private let sharedStatistics: BatchStatisticsLane.Shared?

    public init(_ normalizer: any Normalizer) {
        self.normalizer = normalizer
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

    /// The normalizer's parameters (gamma and beta), which weight decay leaves alone.
    public var parameters: [Parameter] { normalizer.parameters }
}

extension NormalizerLayer: LaneLayer {
    /// A slot whose normalizer's statistics are each sample's own runs in lanes with a copy of
    /// it that shares its parameters; one whose statistics are the whole batch's, in lanes that
    /// share them (`BatchStatisticsLane`). A normalizer with only the plain protocol keeps the
    /// whole batch together.
    func makeLane(_ context: LaneContext) throws -> (any Layer)? {
        if let sharedStatistics {
            let lane = BatchStatisticsLane(sharing: sharedStatistics, context: context)
            lane.rectifiesOutput = rectifiesOutput
            return lane
        }
        guard let perSample else { return nil }
        let lane = NormalizerLayer(perSample.sharingParameters())
        lane.rectifiesOutput = rectifiesOutput
        return lane
    }

    /// Nothing to copy: lanes share the parameters themselves.
    func prepare(_ lane: any Layer) {}

    /// A per-sample lane leaves the shared parameters' gradients to `addParameterGradients`.
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        guard let perSample else { return try backward(outputGradient) }
        try perSample.inputGradient(outputGradient, into: &inputGradient)
        return inputGradient
    }

    /// Per-sample lanes' terms add up here, from zero at a batch's first piece; lanes with shared
    /// statistics set the normalizer's gradients as they meet.
    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        guard perSample != nil, let lane = (lane as? NormalizerLayer)?.perSample else { return }
        let parameters = normalizer.parameters
        if piece.isFirst {
            for parameter in parameters { parameter.gradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        }
        lane.addParameterGradients(to: parameters)
    }
}
