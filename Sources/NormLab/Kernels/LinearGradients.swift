/// A fully connected layer's parameter gradients (`Linear`): dW = dyᵀ · x and db = Σ dy, each a
/// sum over the samples in sample order.
enum LinearGradients {
    /// Adds the terms of the samples of `dy` [n, outputs] and `x` [n, inputs] to the weight
    /// gradient [outputs, inputs] and the bias gradient [outputs], from zero when
    /// `startingFromZero`: a batch added a part at a time, in order, gives the same bits as the
    /// whole batch at once.
    static func add(
        _ dy: Tensor, _ x: Tensor, weightGradient: inout [Float], biasGradient: inout [Float], startingFromZero: Bool
    ) {
        precondition(dy.shape.count == 2 && x.shape.count == 2 && dy.shape[0] == x.shape[0])
        let (n, inputs, outputs) = (dy.shape[0], x.shape[1], dy.shape[1])
        precondition(weightGradient.count == outputs * inputs && biasGradient.count == outputs)
        dy.scalars.withUnsafeBufferPointer { dy in
            x.scalars.withUnsafeBufferPointer { x in
                weightGradient.withUnsafeMutableBufferPointer { weightGradient in
                    biasGradient.withUnsafeMutableBufferPointer { biasGradient in
                        for o in 0..<outputs {
                            var biasTotal: Float = startingFromZero ? 0 : biasGradient[o]
                            for sample in 0..<n { biasTotal += dy[sample * outputs + o] }
                            biasGradient[o] = biasTotal
                            for i in 0..<inputs {
                                var total: Float = startingFromZero ? 0 : weightGradient[o * inputs + i]
                                for sample in 0..<n { total += dy[sample * outputs + o] * x[sample * inputs + i] }
                                weightGradient[o * inputs + i] = total
                            }
                        }
                    }
                }
            }
        }
    }
}
