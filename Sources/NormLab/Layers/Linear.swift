/// A fully connected layer, y = x · Wᵀ + b, x: [N, in] → y: [N, out].
public final class Linear {
    public let inputCount: Int
    public let outputCount: Int
    /// [out, in], row-major.
    public let weight: Parameter
    public let bias: Parameter
    /// The weight and the bias (kept, so that a training step asks without allocating).
    public let parameters: [Parameter]
    /// The last forward's input, for the weight gradient.
    var input = Tensor(shape: [0, 0])
    /// As a `Layer`: its output and input gradient.
    private var layerOutput = Tensor(shape: [0])
    var layerInputGradient = Tensor(shape: [0])
    /// dL/dy, kept when the parameters' gradients are added later (by the engine).
    var keptOutputGradient = Tensor(shape: [0])

    /// Kaiming-normal weights (fan-in, ReLU gain: std = sqrt(2 / in), times `initScale`) and a
    /// zero bias.
    public init(inputCount: Int, outputCount: Int, initScale: Float = 1, generator: inout SeededGenerator) {
        self.inputCount = inputCount
        self.outputCount = outputCount
        weight = Parameter("weight", generator.normals(outputCount * inputCount, std: Float((2.0 / Double(inputCount)).squareRoot() * Double(initScale))), decays: true)
        bias = Parameter("bias", repeating: 0, count: outputCount, decays: false)
        parameters = [weight, bias]
    }

    /// A layer that shares `other`'s weight and bias (the same `Parameter` objects), with
    /// buffers of its own.
    init(sharingParametersOf other: Linear) {
        inputCount = other.inputCount
        outputCount = other.outputCount
        weight = other.weight
        bias = other.bias
        parameters = other.parameters
    }

    public func forward(_ x: Tensor, into y: inout Tensor) {
        precondition(x.shape.count == 2 && x.shape[1] == inputCount)
        input = x
        let (n, inputs, outputs) = (x.shape[0], inputCount, outputCount)
        y.reshape(to: [n, outputs])
        x.scalars.withUnsafeBufferPointer { x in
            weight.value.withUnsafeBufferPointer { weight in
                bias.value.withUnsafeBufferPointer { bias in
                    y.scalars.withUnsafeMutableBufferPointer { y in
                        for sample in 0..<n {
                            for o in 0..<outputs {
                                var total = bias[o]
                                for i in 0..<inputs { total += x[sample * inputs + i] * weight[o * inputs + i] }
                                y[sample * outputs + o] = total
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sets the weight and bias gradients (`LinearGradients`) and writes dL/dx.
    public func backward(_ dy: Tensor, into dx: inout Tensor) {
        precondition(dy.shape.count == 2 && dy.shape == [input.shape[0], outputCount])
        LinearGradients.add(dy, input, weightGradient: &weight.gradient, biasGradient: &bias.gradient, startingFromZero: true)
        inputGradient(dy, into: &dx)
    }

    /// Writes dL/dx for the last forward pass, leaving the parameters' gradients alone.
    func inputGradient(_ dy: Tensor, into dx: inout Tensor) {
        precondition(dy.shape.count == 2 && dy.shape == [input.shape[0], outputCount])
        let (n, inputs, outputs) = (dy.shape[0], inputCount, outputCount)
        dx.reshape(to: [n, inputs])
        dy.scalars.withUnsafeBufferPointer { dy in
            weight.value.withUnsafeBufferPointer { weight in
                dx.scalars.withUnsafeMutableBufferPointer { dx in
                    for sample in 0..<n {
                        for i in 0..<inputs {
                            var total: Float = 0
                            for o in 0..<outputs { total += dy[sample * outputs + o] * weight[o * inputs + i] }
                            dx[sample * inputs + i] = total
                        }
                    }
                }
            }
        }
    }
}

extension Linear: Layer {
    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        forward(input, into: &layerOutput)
        return layerOutput
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        backward(outputGradient, into: &layerInputGradient)
        return layerInputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 2, shape[1] == inputCount else {
            throw ModelError.invalidShape("a linear layer from \(inputCount) features needs [N, \(inputCount)] input, got \(shape)")
        }
        return [shape[0], outputCount]
    }
}
