/// The group-style kernels: each sample's statistics are taken over a contiguous block of
/// `channels / groups` channels and their spatial positions. One group is layer norm, one group
/// per channel is instance norm. Used by `GroupNorm`.
///
/// Work is split by (sample, group) block; per-channel gradient partials are kept per sample and
/// added in sample order, so results do not depend on the thread count.
enum GroupStatistics {
    /// Forward: per block, the biased mean and variance (two passes), then
    /// `y = (x - mean) · invStd · gamma[c] + beta[c]`. Writes each block's mean and
    /// 1/sqrt(var + ε) (N·G values) for the backward pass.
    static func forward(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ layout: NormalizationLayout,
        groups: Int, epsilon: Float, rectifying: Bool, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        mean: UnsafeMutablePointer<Float>, invStd: UnsafeMutablePointer<Float>
    ) {
        let s = layout.spatial
        let channelsPerGroup = layout.channels / groups
        let blockSize = channelsPerGroup * s
        Parallelism.forEach(layout.batch * groups, cost: 4 * blockSize) { blocks in
            for block in blocks {
                let start = x + block * blockSize
                let blockMean = Float(VectorKernels.sum(start, blockSize) / Double(blockSize))
                let variance = Float(
                    VectorKernels.sumOfSquaredDeviations(start, blockSize, mean: blockMean) / Double(blockSize))
                let inverse = 1 / (variance + epsilon).squareRoot()
                mean[block] = blockMean
                invStd[block] = inverse
                let firstChannel = (block % groups) * channelsPerGroup
                for k in 0..<channelsPerGroup {
                    let channel = firstChannel + k
                    let a = inverse * gamma[channel]
                    let offset = block * blockSize + k * s
                    VectorKernels.affine(
                        x + offset, y + offset, s, scale: a, shift: beta[channel] - blockMean * a, rectifying: rectifying)
                }
            }
        }
    }

    /// Backward of `forward`: dx, and per (sample, channel) the partial sums Σdy and Σdy·x̂ in
    /// `sampleSumDy` and `sampleSumDyNormalized` (N·C values each), which the caller adds over
    /// the samples to form dL/dbeta and dL/dgamma.
    static func backward(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
        _ layout: NormalizationLayout, groups: Int, gamma: UnsafePointer<Float>,
        mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
        sampleSumDy: UnsafeMutablePointer<Float>, sampleSumDyNormalized: UnsafeMutablePointer<Float>
    ) {
        let s = layout.spatial, c = layout.channels
        let channelsPerGroup = c / groups
        let blockSize = channelsPerGroup * s
        let count = Float(blockSize)
        Parallelism.forEach(layout.batch * groups, cost: 5 * blockSize) { blocks in
            for block in blocks {
                let blockMean = mean[block], inverse = invStd[block]
                let sample = block / groups
                let firstChannel = (block % groups) * channelsPerGroup
                // Σ gamma·dy and Σ gamma·dy·x̂ over the block: the gradient flowing into the
                // block's shared mean and variance.
                var weightedDy: Float = 0, weightedDyNormalized: Float = 0
                for k in 0..<channelsPerGroup {
                    let channel = firstChannel + k
                    let offset = block * blockSize + k * s
                    let sums = VectorKernels.gradientSums(dy + offset, x + offset, s, mean: blockMean)
                    let sumDy = Float(sums.sumDy)
                    let sumDyNormalized = Float(sums.sumDyCentered) * inverse
                    sampleSumDy[sample * c + channel] = sumDy
                    sampleSumDyNormalized[sample * c + channel] = sumDyNormalized
                    weightedDy += gamma[channel] * sumDy
                    weightedDyNormalized += gamma[channel] * sumDyNormalized
                }
                // dx = invStd · (gamma·dy - Σgamma·dy / L - x̂ · Σgamma·dy·x̂ / L), expanded in x.
                let b = -inverse * inverse * weightedDyNormalized / count
                let constant = -inverse * weightedDy / count - b * blockMean
                for k in 0..<channelsPerGroup {
                    let channel = firstChannel + k
                    let offset = block * blockSize + k * s
                    VectorKernels.linearCombination(
                        dy + offset, x + offset, dx + offset, s, a: inverse * gamma[channel], b: b, c: constant)
                }
            }
        }
    }
}
