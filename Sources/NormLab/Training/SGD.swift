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
                        for i in 0..<value.count {
                            let g = gradient[i] + decay * value[i]
                            velocity[i] = momentum * velocity[i] + g
                            value[i] -= learningRate * velocity[i]
                        }
                    }
                }
            }
            index += 1
        }
    }
}
