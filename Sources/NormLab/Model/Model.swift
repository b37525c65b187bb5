/// A classifier the trainer can train: images in, logits out, trainable values visited in a
/// fixed order. `Network` is any composition of layers (`SmallCNN`, `ResNet`).
public protocol Model: AnyObject {
    /// The logits of the last forward pass, [N, classes].
    var logits: Tensor { get }

    /// Computes `logits` for a batch of images [N, C, H, W].
    func forward(_ images: Tensor, mode: NormalizationMode) throws

    /// Forward in training mode, softmax cross-entropy and backward: sets every parameter's
    /// gradient, unless the loss is not finite, and returns the batch's mean loss.
    func trainingGradients(images: Tensor, labels: ArraySlice<UInt8>) throws -> Double

    /// Calls `body` for every trainable array in a fixed order.
    func visitParameters(_ body: (Parameter) -> Void)

    /// The normalizers, in the order of their layers.
    var normalizers: [any Normalizer] { get }
}

extension Model {
    /// `visitParameters`, with each parameter's value, gradient and whether weight decay applies
    /// to it (convolution and linear weights only).
    public func visitParameters(_ body: ParameterVisitor) {
        visitParameters { (parameter: Parameter) in body(&parameter.value, parameter.gradient, parameter.decays) }
    }
}

/// A network made of layers. Its training step runs in lanes (`NetworkLanes`) when every layer
/// can (`LaneLayer`): copies of the network that share its weights, one per thread, each taking
/// its share of the batch forward and back on its own thread, which at small batches costs less
/// than handing every layer's work between the threads. Otherwise (one thread with batch norm,
/// or a normalizer with only the plain protocol) it takes the whole batch through each layer in
/// turn, each layer splitting its own work across threads. Both give the same bits.
public final class Network: Model {
    /// The samples a training step takes through the network at a time, forward and backward,
    /// when every normalizer's statistics are per sample: what one piece's layers write and read
    /// stays in the processor's caches. 16 ran 1.1-1.25× faster than whole batches of 64 and
    /// 128, and faster than 32 (A/B runs of `normlab bench train`, in the git history of
    /// results/BENCHMARKS.md).
    public static let pieceSize = 16
    public let body: Sequential
    public private(set) var logits = Tensor(shape: [0])
    private var logitsGradient = Tensor(shape: [0])
    private var lanes: NetworkLanes?
    /// The thread count `lanes` were made for.
    private var laneThreads = 0
    /// Whether the layers cannot run in lanes (found when lanes were first asked for).
    private var lanesUnavailable = false

    public init(_ layers: [any Layer]) {
        body = Sequential(layers)
        // The first layer's input is the images: no gradient needed.
        (layers.first as? Conv2D)?.computesInputGradient = false
    }

    public func forward(_ images: Tensor, mode: NormalizationMode) throws {
        logits = try body.forward(images, mode: mode)
    }

    public func trainingGradients(images: Tensor, labels: ArraySlice<UInt8>) throws -> Double {
        let n = images.shape[0]
        let execution = Execution.current
        let threads = execution.threads
        ranInLanes = false
        if execution.splitsBatches && ((threads > 1 && n > 1) || n > Self.pieceSize), let lanes = try lanes(count: threads),
           let loss = try lanes.trainingGradients(body, images: images, labels: labels, pieceSize: Self.pieceSize) {
            ranInLanes = true
            return loss
        }
        try forward(images, mode: .training)
        let (loss, _) = SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels, gradient: &logitsGradient)
        if loss.isFinite { _ = try body.backward(logitsGradient) }
        return loss
    }

    /// Whether the last training step ran in lanes.
    private(set) var ranInLanes = false

    /// One lane per thread, made on first use; nil when the layers cannot run in lanes.
    private func lanes(count: Int) throws -> NetworkLanes? {
        if lanesUnavailable { return nil }
        if let lanes, laneThreads == count { return lanes }
        lanes = try NetworkLanes(body, count: count)
        laneThreads = count
        lanesUnavailable = lanes == nil
        return lanes
    }

    public func visitParameters(_ visit: (Parameter) -> Void) {
        body.visitParameters(visit)
    }

    public var normalizers: [any Normalizer] {
        body.allLayers.compactMap { ($0 as? NormalizerLayer)?.normalizer }
    }
}
