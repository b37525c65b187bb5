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

    init(inputChannels: Int, outputChannels: Int, normalizer settings: NormalizerSettings,
         placement: NormalizerPlacement, generator: inout SeededGenerator) throws {
        // A convolution followed directly by a normalizer needs no bias: the normalizer's mean
        // removes it. With no normalizer, or with the ReLU between, it keeps one.
        let bias = settings.kind == .none || placement == .after
        convolution = Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, bias: bias, generator: &generator)
        normalizer = try settings.makeNormalizer(channelCount: outputChannels)
        self.placement = placement
        skipsNormalizer = settings.kind == .none
    }

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
    func backward(_ endGradient: Tensor, inputGradient: inout Tensor?) throws {
        let convolutionGradient: Tensor
        if skipsNormalizer {
            convolutionGradient = endGradient
        } else {
            switch placement {
            case .before:
                try normalizer.backward(endGradient, into: &gradient)
            case .after:
                try normalizer.backward(endGradient, into: &gradientMiddle)
                relu.backward(gradientMiddle, output: middle, into: &gradient)
            }
            convolutionGradient = gradient
        }
        if inputGradient != nil {
            convolution.backward(convolutionGradient, into: &inputGradient!)
        } else {
            convolution.parameterGradients(convolutionGradient)
        }
    }
}

/// The lab's reference network for 28×28 grey images:
/// `conv3x3(1→16) → norm → ReLU → maxpool2 → conv3x3(16→32) → norm → ReLU → maxpool2 →
/// conv3x3(32→64) → norm → ReLU → global average pool → linear(64→10)`.
///
/// Its exact shape matters: results are compared with other frameworks running the same model.
public final class SmallCNN {
    public static let widths = [16, 32, 64]
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

    /// Backpropagates dL/dlogits through the network, setting every parameter's gradient.
    public func backward(_ logitsGradient: Tensor) throws {
        classifier.backward(logitsGradient, into: &featureGradient)
        let last = blocks.count - 1
        // Each pool's backward pass also goes back through the ReLU at the end of the block
        // before it, where there is one (`ConvolutionBlock.endsWithReLU`).
        averagePool.backward(
            featureGradient, into: &blockGradients[last],
            rectifiedInput: blocks[last].endsWithReLU ? blocks[last].output : nil)
        for index in stride(from: last, through: 0, by: -1) {
            if index == 0 {
                var none: Tensor? = nil
                try blocks[0].backward(blockGradients[0], inputGradient: &none)
            } else {
                try blocks[index].backward(blockGradients[index], inputGradient: &pooledGradients[index - 1])
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
