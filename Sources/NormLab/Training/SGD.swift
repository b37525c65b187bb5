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
    public func step(_ model: any Model) {
        var index = 0
        let (learningRate, momentum, weightDecay) = (learningRate, momentum, weightDecay)
        model.visitParameters { value, gradient, decays in
            if index == velocities.count { velocities.append([Float](repeating: 0, count: value.count)) }
            let decay = decays ? weightDecay : 0
            velocities[index].withUnsafeMutableBufferPointer { velocity in
                value.withUnsafeMutableBufferPointer { value in
                    gradient.withUnsafeBufferPointer { gradient in
                        guard let v = velocity.baseAddress, let w = value.baseAddress, let g = gradient.baseAddress else { return }
                        let count = value.count, block = 1_024
                        Parallelism.forEach((count + block - 1) / block, cost: 5 * block) { blocks in
                            Self.update(
                                blocks.lowerBound * block..<min(count, blocks.upperBound * block), v, w, g,
                                decay: decay, momentum: momentum, learningRate: learningRate)
                        }
                    }
                }
            }
            index += 1
        }
    }

    /// Updates elements `range`: eight at a time, then one at a time, with the same operations on
    /// each (separate multiplies and adds, never fused), so the same bits however it is split.
    private static func update(
        _ range: Range<Int>, _ v: UnsafeMutablePointer<Float>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
        decay: Float, momentum: Float, learningRate: Float
    ) {
        typealias Vector = SIMD8<Float>
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let x = VectorKernels.load(w + i)
            let step = VectorKernels.load(g + i) + Vector(repeating: decay) * x
            let newVelocity = Vector(repeating: momentum) * VectorKernels.load(v + i) + step
            VectorKernels.store(newVelocity, v + i)
            VectorKernels.store(x - Vector(repeating: learningRate) * newVelocity, w + i)
            i += 8
        }
        while i < range.upperBound {
            let step = g[i] + decay * w[i]
            v[i] = momentum * v[i] + step
            w[i] -= learningRate * v[i]
            i += 1
        }
    }
}
