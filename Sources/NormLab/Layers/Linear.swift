/// A fully connected layer, y = x · Wᵀ + b, x: [N, in] → y: [N, out].
public final class Linear {
    public let inputCount: Int
    public let outputCount: Int
    /// [out, in], row-major.
    public let weight: Parameter
    public let bias: Parameter
    private var input = Tensor(shape: [0, 0])

    /// Kaiming-normal weights (fan-in, ReLU gain: std = sqrt(2 / in)) and a zero bias.
    public init(inputCount: Int, outputCount: Int, generator: inout SeededGenerator) {
        self.inputCount = inputCount
        self.outputCount = outputCount
        weight = Parameter(generator.normals(outputCount * inputCount, std: Float((2.0 / Double(inputCount)).squareRoot())))
        bias = Parameter([Float](repeating: 0, count: outputCount))
    }

    public func forward(_ x: Tensor, into y: inout Tensor) {
        precondition(x.shape.count == 2 && x.shape[1] == inputCount)
        input = x
        let n = x.shape[0]
        y.reshape(to: [n, outputCount])
        for sample in 0..<n {
            for o in 0..<outputCount {
                var total = bias.value[o]
                for i in 0..<inputCount { total += x.scalars[sample * inputCount + i] * weight.value[o * inputCount + i] }
                y.scalars[sample * outputCount + o] = total
            }
        }
    }

    /// Sets the weight and bias gradients and writes dL/dx.
    public func backward(_ dy: Tensor, into dx: inout Tensor) {
        let n = dy.shape[0]
        dx.reshape(to: [n, inputCount])
        for o in 0..<outputCount {
            var biasGradient: Float = 0
            for sample in 0..<n { biasGradient += dy.scalars[sample * outputCount + o] }
            bias.gradient[o] = biasGradient
            for i in 0..<inputCount {
                var total: Float = 0
                for sample in 0..<n { total += dy.scalars[sample * outputCount + o] * input.scalars[sample * inputCount + i] }
                weight.gradient[o * inputCount + i] = total
            }
        }
        for sample in 0..<n {
            for i in 0..<inputCount {
                var total: Float = 0
                for o in 0..<outputCount { total += dy.scalars[sample * outputCount + o] * weight.value[o * inputCount + i] }
                dx.scalars[sample * inputCount + i] = total
            }
        }
    }
}
