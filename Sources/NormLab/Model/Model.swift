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

    /// Each convolution's weights, in the order of the layers (a residual block's branch before
    /// its shortcut).
    var convolutionWeights: [Parameter] { get }
}

extension Model {
    /// `visitParameters`, with each parameter's value, gradient and whether weight decay applies
    /// to it (convolution and linear weights only).
    public func visitParameters(_ body: ParameterVisitor) {
        visitParameters { (parameter: Parameter) in body(&parameter.value, parameter.gradient, parameter.decays) }
    }
}

/// A network made of layers. A training step is forward, softmax cross-entropy and backward;
/// the engine (`NetworkEngine`) may take it across threads in its own way, to the same bits as
/// the whole batch through each layer in turn.
public final class Network: Model {
    public let body: Sequential
    public private(set) var logits = Tensor(shape: [0])
    private var logitsGradient = Tensor(shape: [0])
    /// How training steps are spread over threads.
    let engine = NetworkEngine()

    public init(_ layers: [any Layer]) {
        body = Sequential(layers)
        // The first layer's input is the images: no gradient needed.
        (layers.first as? Conv2D)?.computesInputGradient = false
    }

    public func forward(_ images: Tensor, mode: NormalizationMode) throws {
        logits = try body.forward(images, mode: mode)
    }

    public func trainingGradients(images: Tensor, labels: ArraySlice<UInt8>) throws -> Double {
        if let loss = try engine.trainingGradients(body, images: images, labels: labels) { return loss }
        try forward(images, mode: .training)
        let (loss, _) = SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels, gradient: &logitsGradient)
        if loss.isFinite { _ = try body.backward(logitsGradient) }
        return loss
    }

    public func visitParameters(_ visit: (Parameter) -> Void) {
        body.visitParameters(visit)
    }

    public var normalizers: [any Normalizer] {
        body.allLayers.compactMap { ($0 as? NormalizerLayer)?.normalizer }
    }

    public var convolutionWeights: [Parameter] {
        body.allLayers.compactMap { ($0 as? Conv2D)?.weight }
    }
}
