/// Stochastic gradient descent with momentum and decoupled-from-nothing L2 weight decay,
/// PyTorch's convention: `g = grad + decay·w` (decaying weights only), `v = μ·v + g`, `w -= lr·v`.
public final class SGD {
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    /// One velocity per trainable array, in the model's visiting order.
    private var velocities: [[Float]] = []

    public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 5e-4) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    /// Applies one update to every parameter of `model` from its current gradients.
    public func step(_ model: SmallCNN) {
        var index = 0
        let (learningRate, momentum, weightDecay) = (learningRate, momentum, weightDecay)
        model.visitParameters { value, gradient, decays in
            if index == velocities.count { velocities.append([Float](repeating: 0, count: value.count)) }
            let decay = decays ? weightDecay : 0
            velocities[index].withUnsafeMutableBufferPointer { velocity in
                value.withUnsafeMutableBufferPointer { value in
                    gradient.withUnsafeBufferPointer { gradient in
                        // Eight at a time, then one at a time: the same operations on each element
                        // (separate multiplies and adds, never fused), so the same bits.
                        typealias Vector = SIMD8<Float>
                        guard let v = velocity.baseAddress, let w = value.baseAddress, let g = gradient.baseAddress else { return }
                        var i = 0
                        while i + 8 <= value.count {
                            let x = VectorKernels.load(w + i)
                            let step = VectorKernels.load(g + i) + Vector(repeating: decay) * x
                            let newVelocity = Vector(repeating: momentum) * VectorKernels.load(v + i) + step
                            VectorKernels.store(newVelocity, v + i)
                            VectorKernels.store(x - Vector(repeating: learningRate) * newVelocity, w + i)
                            i += 8
                        }
                        while i < value.count {
                            let step = g[i] + decay * w[i]
                            v[i] = momentum * v[i] + step
                            w[i] -= learningRate * v[i]
                            i += 1
                        }
                    }
                }
            }
            index += 1
        }
    }
}
