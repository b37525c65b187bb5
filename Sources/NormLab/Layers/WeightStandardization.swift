/// Weight standardization (Qiao et al. 2019, https://arxiv.org/abs/1903.10520), an option of a
/// convolution (`Conv2D.standardizesWeights`): each output channel's weights are standardized over
/// their fan-in before the convolution uses them,
/// `Ŵ[o] = (W[o] − mean(W[o])) / sqrt(var(W[o]) + ε)` with the biased variance over the
/// Cin·k² weights of channel o, and the gradient flows through the standardization to W:
/// `dW[o] = (dŴ[o] − mean(dŴ[o]) − Ŵ[o] · mean(dŴ[o]·Ŵ[o])) / sqrt(var(W[o]) + ε)`.
enum WeightStandardization {
    /// ε, as the paper's code.
    static let epsilon: Float = 1e-5

    /// Writes Ŵ for the weights `weight` ([outputs, fanIn]) into `standardized`, and returns
    /// each output channel's 1/sqrt(var + ε).
    @discardableResult
    static func standardize(_ weight: [Float], into standardized: inout [Float], outputs: Int, epsilon: Float = epsilon) -> [Float] {
        let fanIn = weight.count / outputs
        if standardized.count != weight.count { standardized = [Float](repeating: 0, count: weight.count) }
        var inverse = [Float](repeating: 0, count: outputs)
        weight.withUnsafeBufferPointer { w in
            standardized.withUnsafeMutableBufferPointer { s in
                for o in 0..<outputs {
                    let row = w.baseAddress! + o * fanIn
                    let mean = Float(VectorKernels.sum(row, fanIn) / Double(fanIn))
                    let variance = Float(VectorKernels.sumOfSquaredDeviations(row, fanIn, mean: mean) / Double(fanIn))
                    inverse[o] = 1 / (variance + epsilon).squareRoot()
                    for i in 0..<fanIn { s[o * fanIn + i] = (row[i] - mean) * inverse[o] }
                }
            }
        }
        return inverse
    }

    /// dL/dW from dL/dŴ (`standardizedGradient`), for the weights `weight` ([outputs, fanIn]).
    static func weightGradient(
        _ standardizedGradient: [Float], weight: [Float], outputs: Int, epsilon: Float = epsilon
    ) -> [Float] {
        let fanIn = weight.count / outputs
        var standardized: [Float] = []
        let inverse = standardize(weight, into: &standardized, outputs: outputs, epsilon: epsilon)
        var gradient = [Float](repeating: 0, count: weight.count)
        for o in 0..<outputs {
            let row = o * fanIn..<(o + 1) * fanIn
            var (sum, projection) = (0.0, 0.0)
            for i in row {
                sum += Double(standardizedGradient[i])
                projection += Double(standardizedGradient[i] * standardized[i])
            }
            let (mean, meanProjection) = (Float(sum / Double(fanIn)), Float(projection / Double(fanIn)))
            for i in row { gradient[i] = (standardizedGradient[i] - mean - standardized[i] * meanProjection) * inverse[o] }
        }
        return gradient
    }
}
