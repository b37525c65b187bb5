/// The lab's reference network (`smallcnn`), for images of C channels whose sides are multiples
/// of 4 (Fashion-MNIST's 1×28×28):
/// `conv3x3(C→16) → norm → ReLU → maxpool2 → conv3x3(16→32) → norm → ReLU → maxpool2 →
/// conv3x3(32→64) → norm → ReLU → global average pool → linear(64→10)`.
///
/// Its exact shape matters: results are compared with other frameworks running the same model.
/// Its training step is its own, tuned for this shape (pieces and lanes, below); `Network` is
/// the general engine, and trains the same layers to the same bits.
public final class SmallCNN: Model {
    public static let widths = [16, 32, 64]
    /// The samples a training step takes through the network at a time, forward and backward,
    /// when the normalizers allow it (`trainingGradients(images:labels:)`). 16 ran 1.1-1.25×
    /// faster than whole batches of 64 and 128, and faster than 32 (A/B runs of `normlab bench
    /// train`, in the git history of results/BENCHMARKS.md).
    public static let pieceSize = 16
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
    /// In a lane, each sample's loss in its share of the last step.
    private var sampleLosses: [Double] = []
    /// The statistics the lanes share in a step through batch norm or batch renorm, one per
    /// block, for images of `sharedStatisticsImageShape`.
    private var sharedStatistics: [SharedBatchStatistics] = []
    private var sharedStatisticsImageShape: [Int] = []

    /// Builds the network with seeded Kaiming-normal weights, zero biases, gamma = 1, beta = 0.
    /// - Throws: `NormalizerError` when the normalizer settings are impossible for a layer.
    /// - Parameter makeNormalizer: see `NormSlots`.
    public init(
        normalizer: NormalizerSettings, placement: NormalizerPlacement = .before, imageChannels: Int = 1,
        classes: Int = 10, seed: UInt64, makeNormalizer: NormSlots.MakeNormalizer? = nil
    ) throws {
        var generator = SeededGenerator(seed: seed)
        var blocks: [ConvolutionBlock] = []
        var inputChannels = imageChannels
        for width in Self.widths {
            blocks.append(try ConvolutionBlock(
                inputChannels: inputChannels, outputChannels: width, normalizer: normalizer,
                placement: placement, generator: &generator,
                makeNormalizer: makeNormalizer ?? normalizer.makeNormalizer(channelCount:)))
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

    /// Computes `logits` for a batch of images [N, C, H, W] (H and W divisible by 4).
    public func forward(_ images: Tensor, mode: NormalizationMode) throws {
        var input = images
        for (index, block) in blocks.enumerated() {
            try block.forward(input, mode: mode)
            if index < pools.count {
                pools[index].forward(block.output, into: &pooled[index])
                input = pooled[index]
            }
        }
        forwardHead()
    }

    /// The global average pool and the classifier: the last block's output to `logits`.
    private func forwardHead() {
        averagePool.forward(blocks[blocks.count - 1].output, into: &features)
        classifier.forward(features, into: &logits)
    }

    /// Whether a training step may take a batch through the network a few samples at a time:
    /// every normalizer's statistics are per sample, or there is none.
    public var takesPieces: Bool { blocks.allSatisfy(\.takesPieces) }

    /// Whether every normalizer's training statistics are the whole batch's (batch norm, batch
    /// renorm), which a training step in lanes adds up between the lanes' stages.
    var sharesBatchStatistics: Bool { blocks.allSatisfy { $0.batchStatisticsNormalizer != nil } }

    /// Forward in training mode, softmax cross-entropy and backward over a batch of images
    /// [N, 1, H, W]: sets every parameter's gradient, unless the loss is not finite, and returns
    /// the batch's mean loss.
    ///
    /// On more than one thread, the step shares the batch out between lanes: copies of the
    /// network that share its weights, one per thread. Each lane runs its samples forward and
    /// back to the input gradients on its own thread, which at small batches costs less than
    /// handing every layer's work between the threads. Then the lanes' shares are added to the
    /// parameters' gradients in sample order. How the lanes run depends on the normalizers:
    /// - When the model `takesPieces` (every normalizer's statistics are per sample, or there is
    ///   none), a batch of more than `pieceSize` samples also goes through a piece at a time,
    ///   forward and backward, so that what one piece's layers write and read stays in the
    ///   processor's caches (a whole batch of 128 makes 6.4 MB in the first block alone); each
    ///   piece is shared out between the lanes, which run without stopping. One thread takes
    ///   the pieces itself.
    /// - With batch norm or batch renorm (`sharesBatchStatistics`), the lanes take the whole
    ///   batch and stop three times at each normalizer, whose statistics are the whole batch's
    ///   (`SharedBatchStatistics`).
    ///
    /// Each share's backward pass adds to the gradients the shares before it left, in the same
    /// order as one pass over the whole batch (`SamplePiece`): the same bits as one pass. `logits`
    /// then holds the last piece's, unless the step ran in lanes.
    public func trainingGradients(images: Tensor, labels: ArraySlice<UInt8>) throws -> Double {
        let n = images.shape[0]
        precondition(labels.count == n, "\(labels.count) labels for \(n) images")
        let execution = Execution.current
        let inLanes = execution.splitsBatches && execution.threads > 1 && n > 1
        if inLanes && sharesBatchStatistics {
            return try trainInLanesWithBatchStatistics(images, labels: labels)
        }
        let splits = takesPieces && execution.splitsBatches
        let inPieces = splits && n > Self.pieceSize
        guard splits && (inLanes || inPieces) else {
            try forward(images, mode: .training)
            let (loss, _) = SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels, gradient: &logitsGradient)
            if loss.isFinite { try backward(logitsGradient, piece: .whole(n)) }
            return loss
        }
        var loss = 0.0
        var piece = SamplePiece(first: 0, count: 0, batch: n)
        while !piece.isLast {
            let first = piece.first + piece.count
            piece = SamplePiece(first: first, count: inPieces ? min(Self.pieceSize, n - first) : n, batch: n)
            if inLanes {
                try trainInLanes(images, labels: labels, piece: piece, loss: &loss)
                continue
            }
            copySamples(piece.samples, of: images, into: &pieceImages)
            try forward(pieceImages, mode: .training)
            SoftmaxCrossEntropy.accumulate(
                logits: logits, labels: labels.dropFirst(piece.first).prefix(piece.count), batchSize: n,
                gradient: &logitsGradient
            ) { sampleLoss, _ in loss += sampleLoss }
            // A loss that is no longer finite makes no update: the later pieces only finish it.
            if loss.isFinite { try backward(logitsGradient, piece: piece) }
        }
        return loss / Double(n)
    }

    /// One piece of a training step in lanes through per-sample normalizers (see
    /// `trainingGradients`): adds the piece's losses to `loss` and, while it is finite, its
    /// shares to the parameters' gradients.
    private func trainInLanes(
        _ images: Tensor, labels: ArraySlice<UInt8>, piece: SamplePiece, loss: inout Double
    ) throws {
        try prepareLanes()
        for lane in lanes {
            for (block, laneBlock) in zip(blocks, lane.blocks) { block.copyNormalizerParameters(to: laneBlock) }
        }
        // Each lane on its own thread: its samples forward, then back to the input gradients.
        try inLanes(piece) { lane, share in
            copySamples(share.samples, of: images, into: &lane.pieceImages)
            try lane.forward(lane.pieceImages, mode: .training)
            lane.lossGradient(labels, share: share)
            try lane.backward(lane.logitsGradient, piece: nil)
        }
        addLaneLosses(piece, to: &loss)
        if loss.isFinite { addLaneParameterGradients(piece) }
    }

    /// A training step in lanes through batch norm or batch renorm (see `trainingGradients`).
    /// The lanes take the whole batch. They stop where a normalizer needs the whole batch's
    /// statistics: three times per normalizer, as `SharedBatchStatistics` describes.
    private func trainInLanesWithBatchStatistics(_ images: Tensor, labels: ArraySlice<UInt8>) throws -> Double {
        let batch = SamplePiece.whole(images.shape[0]), last = blocks.count - 1
        try prepareLanes()
        let statistics = try sharedStatistics(forImages: images.shape)
        try inLanes(batch) { lane, share in
            copySamples(share.samples, of: images, into: &lane.pieceImages)
            lane.blocks[0].convolve(lane.pieceImages, statistics: statistics[0], share: share)
        }
        for index in blocks.indices {
            statistics[index].finishMeans()
            try inLanes(batch) { lane, share in lane.blocks[index].addSquaredDeviations(to: statistics[index], share: share) }
            statistics[index].finishVariances()
            try inLanes(batch) { lane, share in
                lane.blocks[index].normalize(with: statistics[index])
                if index < last {
                    lane.pools[index].forward(lane.blocks[index].output, into: &lane.pooled[index])
                    lane.blocks[index + 1].convolve(lane.pooled[index], statistics: statistics[index + 1], share: share)
                } else {
                    lane.forwardHead()
                    lane.lossGradient(labels, share: share)
                    lane.backwardHead(lane.logitsGradient, piece: nil)
                    lane.blocks[last].addGradientSums(lane.blockGradients[last], to: statistics[last], share: share)
                }
            }
        }
        var loss = 0.0
        addLaneLosses(batch, to: &loss)
        // A loss that is not finite makes no update: the parameters' gradients are left alone.
        guard loss.isFinite else { return loss / Double(batch.batch) }
        for index in stride(from: last, through: 0, by: -1) {
            statistics[index].finishGradientSums()
            try inLanes(batch) { lane, share in
                guard index > 0 else {
                    var none: Tensor? = nil
                    return lane.blocks[0].inputGradients(lane.blockGradients[0], statistics: statistics[0], inputGradient: &none)
                }
                lane.blocks[index].inputGradients(
                    lane.blockGradients[index], statistics: statistics[index], inputGradient: &lane.pooledGradients[index - 1])
                lane.backwardPool(index - 1)
                lane.blocks[index - 1].addGradientSums(lane.blockGradients[index - 1], to: statistics[index - 1], share: share)
            }
        }
        addLaneParameterGradients(batch)
        return loss / Double(batch.batch)
    }

    /// One lane per thread, made on first use.
    private func prepareLanes() throws {
        let threads = Execution.current.threads
        if lanes.count != threads {
            lanes = try (0..<threads).map { _ in try SmallCNN(sharingParametersOf: self) }
            laneErrors = Array(repeating: nil, count: threads)
        }
    }

    /// The lanes' batch statistics for a step on images of `shape`, one per block.
    private func sharedStatistics(forImages shape: [Int]) throws -> [SharedBatchStatistics] {
        if sharedStatisticsImageShape != shape {
            sharedStatistics = try blocks.indices.map { index in
                try SharedBatchStatistics(
                    normalizer: blocks[index].batchStatisticsNormalizer!,
                    batchShape: [shape[0], Self.widths[index], shape[2] >> index, shape[3] >> index])
            }
            sharedStatisticsImageShape = shape
        }
        return sharedStatistics
    }

    /// How many lanes share `piece`: one per thread, but no more than its samples.
    private func laneCount(_ piece: SamplePiece) -> Int { min(lanes.count, piece.count) }

    /// Lane `lane`'s share of `piece`.
    private func share(_ lane: Int, of piece: SamplePiece) -> SamplePiece {
        let laneCount = laneCount(piece)
        let first = piece.first + piece.count * lane / laneCount
        return SamplePiece(first: first, count: piece.first + piece.count * (lane + 1) / laneCount - first, batch: piece.batch)
    }

    /// Runs `body` for each lane with its share of `piece`, each lane on its own thread (work a
    /// lane hands to `Parallelism` runs on that thread, because the pool is busy); rethrows the
    /// first lane's error.
    private func inLanes(_ piece: SamplePiece, _ body: (_ lane: SmallCNN, _ share: SamplePiece) throws -> Void) throws {
        laneErrors.withUnsafeMutableBufferPointer { errors in
            let errors = errors.baseAddress!
            Parallelism.forEach(laneCount(piece), cost: Parallelism.minimumParallelCost) { lanes in
                for index in lanes {
                    do {
                        try body(self.lanes[index], self.share(index, of: piece))
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
    }

    /// In a lane, dL/dlogits for its `share` of a batch (whose mean loss it is), and the share's
    /// losses in `sampleLosses`.
    private func lossGradient(_ labels: ArraySlice<UInt8>, share: SamplePiece) {
        sampleLosses.removeAll(keepingCapacity: true)
        SoftmaxCrossEntropy.accumulate(
            logits: logits, labels: labels.dropFirst(share.first).prefix(share.count), batchSize: share.batch,
            gradient: &logitsGradient
        ) { sampleLoss, _ in sampleLosses.append(sampleLoss) }
    }

    /// Adds the lanes' losses for `piece` to `loss`, one sample at a time in sample order, as one
    /// pass over the batch adds them.
    private func addLaneLosses(_ piece: SamplePiece, to loss: inout Double) {
        for lane in lanes.prefix(laneCount(piece)) {
            for sampleLoss in lane.sampleLosses { loss += sampleLoss }
        }
    }

    /// Adds the lanes' shares of `piece` to each parameter's gradient, in sample order. Each
    /// parameter's shares go on one thread, with no hand-offs inside: the middle block's and the
    /// classifier's on one, the first and last blocks' on the other. (Timed at batch 8, the
    /// blocks took about 130, 250 and 210 µs a step and the classifier 10; the last block and
    /// the classifier against the first two left one thread idle for about 150 µs.)
    private func addLaneParameterGradients(_ piece: SamplePiece) {
        Parallelism.forEach(2, cost: Parallelism.minimumParallelCost) { parts in
            for part in parts {
                for index in 0..<self.laneCount(piece) {
                    let lane = self.lanes[index], share = self.share(index, of: piece)
                    if part == 0 {
                        self.classifier.parameterGradients(lane.logitsGradient, piece: share, source: lane.classifier)
                    }
                    for blockIndex in self.blocks.indices where (blockIndex == 1) == (part == 0) {
                        self.blocks[blockIndex].parameterGradients(
                            from: lane.blocks[blockIndex], endGradient: lane.blockGradients[blockIndex], piece: share)
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
        backwardHead(logitsGradient, piece: piece)
        func blockBackward(_ index: Int, _ inputGradient: inout Tensor?) throws {
            if let piece {
                try blocks[index].backward(blockGradients[index], inputGradient: &inputGradient, piece: piece)
            } else {
                try blocks[index].inputGradients(blockGradients[index], inputGradient: &inputGradient)
            }
        }
        for index in stride(from: blocks.count - 1, through: 1, by: -1) {
            try blockBackward(index, &pooledGradients[index - 1])
            backwardPool(index - 1)
        }
        var none: Tensor? = nil
        try blockBackward(0, &none)
    }

    /// The classifier's and the global average pool's backward passes, from dL/dlogits to the
    /// gradient at the last block's end (`ConvolutionBlock.backward`); the classifier's
    /// parameter gradients only for a `piece` (not for a lane's share).
    private func backwardHead(_ logitsGradient: Tensor, piece: SamplePiece?) {
        if let piece {
            classifier.backward(logitsGradient, into: &featureGradient, piece: piece)
        } else {
            classifier.inputGradient(logitsGradient, into: &featureGradient)
        }
        let last = blocks[blocks.count - 1]
        averagePool.backward(featureGradient, into: &blockGradients[blocks.count - 1], rectifiedInput: last.endsWithReLU ? last.output : nil)
    }

    /// Pool `index`'s backward pass, from dL/d(its output) to the gradient at the end of block
    /// `index`. It also goes back through the ReLU at the block's end, where there is one
    /// (`ConvolutionBlock.endsWithReLU`).
    private func backwardPool(_ index: Int) {
        pools[index].backward(
            pooledGradients[index]!, into: &blockGradients[index],
            rectifiedOutput: blocks[index].endsWithReLU ? pooled[index] : nil)
    }

    /// Calls `body` for every trainable array in a fixed order, with its gradient and whether
    /// weight decay applies to it (convolution and linear weights only).
    public func visitParameters(_ body: ParameterVisitor) {
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
