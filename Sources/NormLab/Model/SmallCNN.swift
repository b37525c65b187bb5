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
    /// The normalizer, when its statistics are each sample's own.
    private let perSampleNormalizer: (any PerSampleNormalizer)?
    private let settings: NormalizerSettings

    init(inputChannels: Int, outputChannels: Int, normalizer settings: NormalizerSettings,
         placement: NormalizerPlacement, generator: inout SeededGenerator) throws {
        // A convolution followed directly by a normalizer needs no bias: the normalizer's mean
        // removes it. With no normalizer, or with the ReLU between, it keeps one.
        let bias = settings.kind == .none || placement == .after
        convolution = Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, bias: bias, generator: &generator)
        normalizer = try settings.makeNormalizer(channelCount: outputChannels)
        self.placement = placement
        skipsNormalizer = settings.kind == .none
        perSampleNormalizer = normalizer as? any PerSampleNormalizer
        self.settings = settings
    }

    /// A lane's copy of `other` (`SmallCNN`): the same convolution weights (shared), a normalizer
    /// of the same settings (its gamma and beta copied in before each step), buffers of its own.
    init(sharingParametersOf other: ConvolutionBlock) throws {
        convolution = Conv2D(sharingParametersOf: other.convolution)
        normalizer = try other.settings.makeNormalizer(channelCount: other.convolution.outputChannels)
        placement = other.placement
        skipsNormalizer = other.skipsNormalizer
        perSampleNormalizer = normalizer as? any PerSampleNormalizer
        settings = other.settings
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
        normalizer.releaseSavedInput()
        if skipsNormalizer { return convolution.forward(x, into: &output, rectifying: true) }
        convolution.forward(x, into: &convolved)
        switch placement {
        case .before:
            try normalizer.forward(convolved, mode: mode, into: &output, rectifying: true)
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

    /// The normalizer's (and, after it, the ReLU's) backward pass: dL/d(the convolution's output).
    private func normalizerBackward(_ endGradient: Tensor, piece: SamplePiece) throws -> Tensor {
        if skipsNormalizer { return endGradient }
        switch placement {
        case .before:
            try normalizerBackward(endGradient, into: &gradient, piece: piece)
        case .after:
            try normalizerBackward(endGradient, into: &gradientMiddle, piece: piece)
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

/// The lab's reference network for 28×28 grey images:
/// `conv3x3(1→16) → norm → ReLU → maxpool2 → conv3x3(16→32) → norm → ReLU → maxpool2 →
/// conv3x3(32→64) → norm → ReLU → global average pool → linear(64→10)`.
///
/// Its exact shape matters: results are compared with other frameworks running the same model.
public final class SmallCNN {
    public static let widths = [16, 32, 64]
    /// The samples a training step takes through the network at a time, forward and backward,
    /// when the normalizers allow it (`trainingGradients(images:labels:)`). 16 ran 1.1-1.25×
    /// faster than whole batches of 64 and 128, and faster than 32 (results/BENCHMARKS.md).
    public static let pieceSize = 16
    /// Whether training steps take batches in pieces and lanes where the normalizers allow it.
    /// `normlab bench train --whole-batches` turns it off, to time what they gain (the same bits).
    nonisolated(unsafe) public static var splitsBatches = true
    public let blocks: [ConvolutionBlock]
    public let classifier: Linear
    private let pools = [MaxPool2D(), MaxPool2D()]
    private let averagePool = GlobalAveragePool()
    private var pooled = [Tensor(shape: [0]), Tensor(shape: [0])]
    private var features = Tensor(shape: [0])
    /// The logits of the last forward pass, [N, classes].
    public private(set) var logits = Tensor(shape: [0])
    private var featureGradient = Tensor(shape: [0])
    /// One gradient buffer per shape, so that no step reallocates.
    private var blockGradients = [Tensor(shape: [0]), Tensor(shape: [0]), Tensor(shape: [0])]
    private var pooledGradients: [Tensor?] = [Tensor(shape: [0]), Tensor(shape: [0])]
    private var logitsGradient = Tensor(shape: [0])
    /// The images of one piece of a batch, or of a lane's share of it (`trainingGradients`).
    private var pieceImages = Tensor(shape: [0])
    /// Copies of this network that share its weights, one per thread (`trainingGradients`).
    private var lanes: [SmallCNN] = []
    private var laneErrors: [(any Error)?] = []

    /// Builds the network with seeded Kaiming-normal weights, zero biases, gamma = 1, beta = 0.
    /// - Throws: `NormalizerError` when the normalizer settings are impossible for a layer.
    public init(
        normalizer: NormalizerSettings, placement: NormalizerPlacement = .before, classes: Int = 10, seed: UInt64
    ) throws {
        var generator = SeededGenerator(seed: seed)
        var blocks: [ConvolutionBlock] = []
        var inputChannels = 1
        for width in Self.widths {
            blocks.append(try ConvolutionBlock(
                inputChannels: inputChannels, outputChannels: width, normalizer: normalizer,
                placement: placement, generator: &generator))
            inputChannels = width
        }
        self.blocks = blocks
        classifier = Linear(inputCount: inputChannels, outputCount: classes, generator: &generator)
    }

    /// A lane: `other`'s convolution and linear weights (shared), normalizers of the same
    /// settings, buffers of its own.
    private init(sharingParametersOf other: SmallCNN) throws {
        blocks = try other.blocks.map { try ConvolutionBlock(sharingParametersOf: $0) }
        classifier = Linear(sharingParametersOf: other.classifier)
    }

    /// The normalizers, one per block.
    public var normalizers: [any Normalizer] { blocks.map(\.normalizer) }

    /// Computes `logits` for a batch of images [N, 1, H, W] (H and W divisible by 4).
    public func forward(_ images: Tensor, mode: NormalizationMode) throws {
        var input = images
        for (index, block) in blocks.enumerated() {
            try block.forward(input, mode: mode)
            if index < pools.count {
                pools[index].forward(block.output, into: &pooled[index])
                input = pooled[index]
            }
        }
        averagePool.forward(blocks[blocks.count - 1].output, into: &features)
        classifier.forward(features, into: &logits)
    }

    /// Whether a training step may take a batch through the network a few samples at a time:
    /// every normalizer's statistics are per sample, or there is none.
    public var takesPieces: Bool { blocks.allSatisfy(\.takesPieces) }

    /// Forward in training mode, softmax cross-entropy and backward over a batch of images
    /// [N, 1, H, W]: sets every parameter's gradient, unless the loss is not finite, and returns
    /// the batch's mean loss.
    ///
    /// When the model `takesPieces` (every normalizer's statistics are per sample, or there is
    /// none), the step splits the batch two ways, with the same bits as one whole pass:
    /// - A batch of more than `pieceSize` samples goes through a piece at a time, forward and
    ///   backward, so that what one piece's layers write and read stays in the processor's caches
    ///   (a whole batch of 128 makes 6.4 MB in the first block alone).
    /// - On more than one thread, each piece (or the whole batch, if small) is shared out between
    ///   lanes, copies of the network that share its weights, one per thread: each lane runs its
    ///   samples forward and back to the input gradients on its own thread, with no hand-offs
    ///   between the threads inside, which at small batches cost more than the work they split.
    ///   Then the lanes' shares are added to the parameters' gradients in sample order, with
    ///   both threads splitting each product as before.
    ///
    /// Each share's backward pass adds to the gradients the shares before it left, in the same
    /// order as one pass over the whole batch (`SamplePiece`). `logits` then holds the last
    /// piece's, unless the step ran in lanes.
    public func trainingGradients(images: Tensor, labels: ArraySlice<UInt8>) throws -> Double {
        let n = images.shape[0]
        precondition(labels.count == n, "\(labels.count) labels for \(n) images")
        let splits = takesPieces && Self.splitsBatches
        let inLanes = splits && Parallelism.threadCount > 1 && n > 1
        let inPieces = splits && n > Self.pieceSize
        guard inLanes || inPieces else {
            try forward(images, mode: .training)
            let (loss, _) = SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels, gradient: &logitsGradient)
            if loss.isFinite { try backward(logitsGradient, piece: .whole(n)) }
            return loss
        }
        var loss = 0.0, correct = 0
        var piece = SamplePiece(first: 0, count: 0, batch: n)
        while !piece.isLast {
            let first = piece.first + piece.count
            piece = SamplePiece(first: first, count: inPieces ? min(Self.pieceSize, n - first) : n, batch: n)
            if inLanes {
                try trainInLanes(images, labels: labels, piece: piece, loss: &loss, correct: &correct)
                continue
            }
            copySamples(piece.samples, of: images, into: &pieceImages)
            try forward(pieceImages, mode: .training)
            SoftmaxCrossEntropy.accumulate(
                logits: logits, labels: labels.dropFirst(piece.first).prefix(piece.count), batchSize: n, loss: &loss,
                correct: &correct, gradient: &logitsGradient)
            // A loss that is no longer finite makes no update: the later pieces only finish it.
            if loss.isFinite { try backward(logitsGradient, piece: piece) }
        }
        return loss / Double(n)
    }

    /// One piece of a training step in lanes (see `trainingGradients`): adds the piece's losses
    /// to `loss` and, while it is finite, its shares to the parameters' gradients.
    private func trainInLanes(
        _ images: Tensor, labels: ArraySlice<UInt8>, piece: SamplePiece, loss: inout Double, correct: inout Int
    ) throws {
        let threads = Parallelism.threadCount
        if lanes.count != threads {
            lanes = try (0..<threads).map { _ in try SmallCNN(sharingParametersOf: self) }
            laneErrors = Array(repeating: nil, count: threads)
        }
        let laneCount = min(threads, piece.count)
        for lane in lanes {
            for (block, laneBlock) in zip(blocks, lane.blocks) { block.copyNormalizerParameters(to: laneBlock) }
        }
        func share(_ lane: Int) -> SamplePiece {
            let first = piece.first + piece.count * lane / laneCount
            return SamplePiece(first: first, count: piece.first + piece.count * (lane + 1) / laneCount - first, batch: piece.batch)
        }
        // Each lane on its own thread: its samples forward, then back to the input gradients.
        // (Work the lanes hand to `Parallelism` runs on their own threads: the pool is busy.)
        laneErrors.withUnsafeMutableBufferPointer { errors in
            let errors = errors.baseAddress!
            Parallelism.forEach(laneCount, cost: Parallelism.minimumParallelCost) { lanes in
                for index in lanes {
                    let lane = self.lanes[index], samples = share(index)
                    do {
                        copySamples(samples.samples, of: images, into: &lane.pieceImages)
                        try lane.forward(lane.pieceImages, mode: .training)
                        var laneLoss = 0.0, laneCorrect = 0
                        SoftmaxCrossEntropy.accumulate(
                            logits: lane.logits, labels: labels.dropFirst(samples.first).prefix(samples.count),
                            batchSize: piece.batch, loss: &laneLoss, correct: &laneCorrect, gradient: &lane.logitsGradient)
                        try lane.backward(lane.logitsGradient, piece: nil)
                    } catch {
                        errors[index] = error
                    }
                }
            }
        }
        if let error = laneErrors.lazy.compactMap({ $0 }).first {
            for index in laneErrors.indices { laneErrors[index] = nil }
            throw error
        }
        // The lanes' shares in sample order: the loss (again, for the sum's order; the
        // gradient it writes here is not used), then each parameter's gradient.
        for index in 0..<laneCount {
            let samples = share(index)
            SoftmaxCrossEntropy.accumulate(
                logits: lanes[index].logits, labels: labels.dropFirst(samples.first).prefix(samples.count),
                batchSize: piece.batch, loss: &loss, correct: &correct, gradient: &logitsGradient)
        }
        guard loss.isFinite else { return }
        // Each parameter's shares on one thread, in order: the last block's (about as much work
        // as the other two together) and the classifier's on one, the rest on the other, with
        // no hand-offs inside.
        Parallelism.forEach(2, cost: Parallelism.minimumParallelCost) { parts in
            for part in parts {
                for index in 0..<laneCount {
                    let lane = self.lanes[index], samples = share(index)
                    if part == 0 {
                        self.classifier.parameterGradients(lane.logitsGradient, piece: samples, source: lane.classifier)
                    }
                    for blockIndex in self.blocks.indices where (blockIndex == self.blocks.count - 1) == (part == 0) {
                        self.blocks[blockIndex].parameterGradients(
                            from: lane.blocks[blockIndex], endGradient: lane.blockGradients[blockIndex], piece: samples)
                    }
                }
            }
        }
    }

    /// Backpropagates dL/dlogits through the network, setting every parameter's gradient.
    public func backward(_ logitsGradient: Tensor) throws {
        try backward(logitsGradient, piece: .whole(logitsGradient.shape[0]))
    }

    /// `backward(_:)` for one piece of a batch (the last forward's input); for a lane's share of
    /// a step (`piece` nil), only the input gradients (and the normalizers' per-sample sums).
    private func backward(_ logitsGradient: Tensor, piece: SamplePiece?) throws {
        if let piece {
            classifier.backward(logitsGradient, into: &featureGradient, piece: piece)
        } else {
            classifier.inputGradient(logitsGradient, into: &featureGradient)
        }
        let last = blocks.count - 1
        // Each pool's backward pass also goes back through the ReLU at the end of the block
        // before it, where there is one (`ConvolutionBlock.endsWithReLU`).
        averagePool.backward(
            featureGradient, into: &blockGradients[last],
            rectifiedInput: blocks[last].endsWithReLU ? blocks[last].output : nil)
        func blockBackward(_ index: Int, _ inputGradient: inout Tensor?) throws {
            if let piece {
                try blocks[index].backward(blockGradients[index], inputGradient: &inputGradient, piece: piece)
            } else {
                try blocks[index].inputGradients(blockGradients[index], inputGradient: &inputGradient)
            }
        }
        for index in stride(from: last, through: 0, by: -1) {
            if index == 0 {
                var none: Tensor? = nil
                try blockBackward(0, &none)
            } else {
                try blockBackward(index, &pooledGradients[index - 1])
                pools[index - 1].backward(
                    pooledGradients[index - 1]!, into: &blockGradients[index - 1],
                    rectifiedOutput: blocks[index - 1].endsWithReLU ? pooled[index - 1] : nil)
            }
        }
    }

    /// Calls `body` for every trainable array in a fixed order, with its gradient and whether
    /// weight decay applies to it (convolution and linear weights only).
    public func visitParameters(_ body: (_ value: inout [Float], _ gradient: [Float], _ decays: Bool) -> Void) {
        for block in blocks {
            body(&block.convolution.weight.value, block.convolution.weight.gradient, true)
            if let bias = block.convolution.bias { body(&bias.value, bias.gradient, false) }
            let normalizer = block.normalizer
            if !normalizer.parameters.gamma.isEmpty {
                let gradients = normalizer.gradients
                body(&normalizer.parameters.gamma, gradients.gamma, false)
                body(&normalizer.parameters.beta, gradients.beta, false)
            }
        }
        body(&classifier.weight.value, classifier.weight.gradient, true)
        body(&classifier.bias.value, classifier.bias.gradient, false)
    }
}

/// Copies `samples` of `images` [N, ...] into `target`, shaped [samples.count, ...].
private func copySamples(_ samples: Range<Int>, of images: Tensor, into target: inout Tensor) {
    var shape = images.shape
    let size = images.count / shape[0]
    shape[0] = samples.count
    target.reshape(to: shape)
    images.scalars.withUnsafeBufferPointer { source in
        target.scalars.withUnsafeMutableBufferPointer { target in
            target.baseAddress!.update(from: source.baseAddress! + samples.lowerBound * size, count: samples.count * size)
        }
    }
}
