/// One step of a network: a function of its input with, perhaps, trainable values.
///
/// A forward pass remembers what its backward pass needs, and each training forward serves one
/// backward, which follows it. Layers own their output and gradient buffers and reuse them from
/// step to step, so a layer's result stays valid until its next pass.
public protocol Layer: AnyObject {
    /// The output for `input`. In `.training` mode normalizers use (and update) batch statistics,
    /// in `.inference` their stored ones.
    /// - Throws: `NormalizerError` when a normalizer cannot normalize what reaches it.
    func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor

    /// dL/dinput for the last forward's input, from dL/doutput; sets the gradients of the
    /// layer's trainable values.
    func backward(_ outputGradient: Tensor) throws -> Tensor

    /// The shape of the output for an input of `shape`.
    /// - Throws: `ModelError` when the layer cannot take that input.
    func outputShape(for shape: [Int]) throws -> [Int]

    /// The layer's own trainable arrays (not its sublayers'), in a fixed order.
    var parameters: [Parameter] { get }

    /// The layers this one is made of, in order.
    var sublayers: [any Layer] { get }
}

/// `(value, gradient, decays)`: a trainable array, its gradient, and whether weight decay
/// applies to it (convolution and linear weights only).
public typealias ParameterVisitor = (_ value: inout [Float], _ gradient: [Float], _ decays: Bool) -> Void

extension Layer {
    public var parameters: [Parameter] { [] }
    public var sublayers: [any Layer] { [] }

    /// Every trainable array of this layer and the layers inside it, in a fixed order.
    public func visitParameters(_ body: (Parameter) -> Void) {
        for parameter in parameters { body(parameter) }
        for layer in sublayers { layer.visitParameters(body) }
    }

    /// `visitParameters`, with each parameter's value, gradient and whether it decays.
    public func visitParameters(_ body: ParameterVisitor) {
        visitParameters { (parameter: Parameter) in body(&parameter.value, parameter.gradient, parameter.decays) }
    }

    /// This layer and every layer inside it, depth first.
    public var allLayers: [any Layer] { [self] + sublayers.flatMap(\.allLayers) }
}

/// A layer that can apply the ReLU that follows it as it writes its output, so that the ReLU
/// needs no pass of its own forward (`Sequential` asks for it; the plain path is the default).
protocol RectifyingLayer: Layer {
    /// Whether this layer can fuse the ReLU (a normalizer that is not a `RectifyingNormalizer`
    /// cannot).
    var canRectify: Bool { get }
    /// Whether the forward pass writes max(y, 0) instead of y.
    var rectifiesOutput: Bool { get set }
}

/// A layer that can take the backward pass of the ReLU just before it into its own, so that the
/// ReLU's backward needs no pass of its own (`Sequential` asks for it): a pooling layer, whose
/// gradient reaches only inputs it can tell were positive.
protocol ReLUAbsorbingLayer: Layer {
    /// Whether the backward pass also zeroes the gradient where the ReLU's output was not
    /// positive. Set before the first forward pass.
    var absorbsReLU: Bool { get set }
}

/// Layers applied one after the other.
public final class Sequential: Layer {
    public let layers: [any Layer]

    /// Where a layer is followed by a ReLU and can apply it itself (`RectifyingLayer`), the
    /// ReLU's forward pass is fused into it; where a ReLU is followed by a layer that can take
    /// its backward pass (`ReLUAbsorbingLayer`), its backward pass is fused into that layer's.
    /// The same bits, with fewer passes over memory.
    public init(_ layers: [any Layer]) {
        self.layers = layers
        for (layer, next) in zip(layers, layers.dropFirst()) {
            if let fusing = layer as? any RectifyingLayer, fusing.canRectify, let relu = next as? ReLU {
                fusing.rectifiesOutput = true
                relu.inputIsRectified = true
            }
            if let relu = layer as? ReLU, let absorbing = next as? any ReLUAbsorbingLayer {
                absorbing.absorbsReLU = true
                relu.backwardIsAbsorbed = true
            }
        }
    }

    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        var x = input
        for layer in layers { x = try layer.forward(x, mode: mode) }
        return x
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        var gradient = outputGradient
        for layer in layers.reversed() { gradient = try layer.backward(gradient) }
        return gradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        try layers.reduce(shape) { try $1.outputShape(for: $0) }
    }

    public var sublayers: [any Layer] { layers }
}

/// A network that cannot be built, or cannot take the data it is given.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case unknownModel(String)
    case invalidShape(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .unknownModel(let message), .invalidShape(let message), .unsupported(let message): return message
        }
    }
}
