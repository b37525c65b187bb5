/// A 2-D convolution with a square kernel, a stride and zero padding (`ConvolutionGeometry`;
/// 3×3, stride 1, padding 1 by default, which keeps H and W), optionally with a bias, computed as
/// a matrix product over an im2col matrix.
///
/// Forward: `columns` (K × N·P, K = Cin·k², P = the output's Ho·Wo) holds the windows of the N
/// samples, and their output is W (Cout × K) · columns. Backward: dWᵀ = columns · dYᵀ,
/// dcolumns = Wᵀ · dY, folded back into dX (`ConvolutionKernel`, which takes the batch a few
/// samples at a time, in cache, to the same bits as one whole-batch product).
public final class Conv2D {
    public let inputChannels: Int
    public let outputChannels: Int
    public let geometry: ConvolutionGeometry
    /// [Cout, Cin, k, k], row-major.
    public let weight: Parameter
    /// [Cout], or nil for a convolution followed by a normalizer.
    public let bias: Parameter?
    /// The weight, then the bias if any (kept, so that a training step asks without allocating).
    public let parameters: [Parameter]
    /// Whether the weights are standardized over each output channel's fan-in before use
    /// (`WeightStandardization`); weight decay still applies to W.
    public let standardizesWeights: Bool
    /// Ŵ and dL/dŴ when the weights are standardized: what the computation uses in place of W.
    private let standardized: Parameter?

    /// The computation, and the buffers it reuses.
    let kernel: ConvolutionKernel
    /// As a `Layer`: the output, whether the ReLU after it is fused (`RectifyingLayer`), and the
    /// input gradient, which the network's first convolution does not compute.
    private var layerOutput = Tensor(shape: [0])
    var rectifiesOutput = false
    var computesInputGradient = true
    var layerInputGradient = Tensor(shape: [0])
    /// dL/dy, kept when the parameters' gradients are added later (by the engine).
    var keptOutputGradient = Tensor(shape: [0])
    /// While set, each forward as a layer shows it its output before a fused ReLU
    /// (`ActivationProbe`).
    var outputObserver: ((Tensor) -> Void)?

    /// A convolution with Kaiming-normal weights (fan-in, ReLU gain: std = sqrt(2 / (Cin·k²)),
    /// times `initScale`) and a zero bias.
    public init(
        inputChannels: Int, outputChannels: Int, geometry: ConvolutionGeometry = .same3x3, bias: Bool,
        standardizesWeights: Bool = false, initScale: Float = 1, generator: inout SeededGenerator
    ) {
        precondition(inputChannels > 0 && outputChannels > 0)
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.geometry = geometry
        let std = Float((2.0 / Double(inputChannels * geometry.windowSize)).squareRoot() * Double(initScale))
        weight = Parameter("weight", generator.normals(outputChannels * inputChannels * geometry.windowSize, std: std), decays: true)
        self.bias = bias ? Parameter("bias", repeating: 0, count: outputChannels, decays: false) : nil
        parameters = [weight] + (self.bias.map { [$0] } ?? [])
        self.standardizesWeights = standardizesWeights
        standardized = Self.standardizedWeight(like: weight, if: standardizesWeights)
        kernel = ConvolutionKernel(inputChannels: inputChannels, outputChannels: outputChannels, geometry: geometry)
    }

    /// A convolution that shares `other`'s weight and bias (the same `Parameter` objects), with
    /// buffers of its own.
    init(sharingParametersOf other: Conv2D) {
        inputChannels = other.inputChannels
        outputChannels = other.outputChannels
        geometry = other.geometry
        weight = other.weight
        bias = other.bias
        parameters = other.parameters
        standardizesWeights = other.standardizesWeights
        standardized = Self.standardizedWeight(like: weight, if: standardizesWeights)
        kernel = ConvolutionKernel(inputChannels: inputChannels, outputChannels: outputChannels, geometry: geometry)
        kernel.chunkEntries = other.kernel.chunkEntries
    }

    /// Room for Ŵ, when the weights are standardized.
    private static func standardizedWeight(like weight: Parameter, if standardizes: Bool) -> Parameter? {
        standardizes ? Parameter("standardized weight", repeating: 0, count: weight.value.count, decays: false) : nil
    }

    /// The weights the computation uses: W, or Ŵ when they are standardized.
    var computedWeight: Parameter { standardized ?? weight }

    /// The output's shape for an input of `shape` [N, Cin, H, W].
    public func outputShape(_ shape: [Int]) -> [Int] { kernel.outputShape(shape) }

    /// y = conv(x) (+ bias), x: [N, Cin, H, W] → y: [N, Cout, Ho, Wo]; with `rectifying`,
    /// max(y, 0): the ReLU after a convolution with no normalizer. Without `keepingInput` (an
    /// inference pass, which no backward follows) nothing is kept for a backward pass.
    public func forward(_ x: Tensor, into y: inout Tensor, rectifying: Bool = false, keepingInput: Bool = true) {
        if let standardized {
            WeightStandardization.standardize(weight.value, into: &standardized.value, outputs: outputChannels)
        }
        kernel.forward(x, weight: computedWeight, bias: bias, into: &y, rectifying: rectifying, keepingInput: keepingInput)
    }

    /// Sets the weight (and bias) gradients from dL/dy and writes dL/dx.
    public func backward(_ dy: Tensor, into dx: inout Tensor) {
        parameterGradients(dy)
        kernel.inputGradient(dy, weight: computedWeight, into: &dx)
    }

    /// Sets the weight (and bias) gradients from dL/dy, for a first layer whose input needs no
    /// gradient.
    public func parameterGradients(_ dy: Tensor) {
        kernel.parameterGradients(dy, weight: computedWeight, bias: bias)
        finishWeightGradient()
    }

    /// With standardized weights: dL/dW from the dL/dŴ that the computation left.
    func finishWeightGradient() {
        guard let standardized else { return }
        weight.gradient = WeightStandardization.weightGradient(standardized.gradient, weight: weight.value, outputs: outputChannels)
    }
}

extension Conv2D: RectifyingLayer {
    var canRectify: Bool { true }

    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        guard let outputObserver else {
            forward(input, into: &layerOutput, rectifying: rectifiesOutput, keepingInput: mode == .training)
            return layerOutput
        }
        forward(input, into: &layerOutput, keepingInput: mode == .training)
        outputObserver(layerOutput)
        if rectifiesOutput { ReLU.rectify(&layerOutput) }
        return layerOutput
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard computesInputGradient else {
            parameterGradients(outputGradient)
            return Tensor(shape: [0])
        }
        backward(outputGradient, into: &layerInputGradient)
        return layerInputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 4, shape[1] == inputChannels else {
            throw ModelError.invalidShape("a convolution from \(inputChannels) channels needs [N, \(inputChannels), H, W] input, got \(shape)")
        }
        let output = outputShape(shape)
        guard output[2] > 0, output[3] > 0 else {
            throw ModelError.invalidShape("a \(geometry) convolution cannot take a \(shape[2])×\(shape[3]) plane")
        }
        return output
    }


}

