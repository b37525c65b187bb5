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

/// What a group-style forward pass keeps for its backward pass, and the buffers both reuse.
struct GroupNormalizationPass {
    private var input: Tensor?
    private var layout: NormalizationLayout?
    private var groups = 1
    private var mean: [Float] = []
    private var invStd: [Float] = []
    private var sampleSumDy: [Float] = []
    private var sampleSumDyNormalized: [Float] = []

    /// Validates `input`, normalizes it into `output` and remembers what backward needs.
    mutating func forward(
        _ input: Tensor, groups: Int, epsilon: Float, gamma: [Float], beta: [Float], kind: NormalizerKind,
        requiresSpatial: Bool, into output: inout Tensor, rectifying: Bool
    ) throws {
        let layout = try NormalizationLayout(
            shape: input.shape, channelCount: gamma.count, kind: kind, requiresSpatial: requiresSpatial)
        let blocks = layout.batch * groups
        if mean.count != blocks {
            mean = [Float](repeating: 0, count: blocks)
            invStd = mean
        }
        self.input = input
        self.layout = layout
        self.groups = groups
        output.reshape(to: input.shape)
        output.scalars.withUnsafeMutableBufferPointer { y in
            mean.withUnsafeMutableBufferPointer { mean in
                invStd.withUnsafeMutableBufferPointer { invStd in
                    GroupStatistics.forward(
                        input.scalars, y.baseAddress!, layout, groups: groups, epsilon: epsilon, rectifying: rectifying,
                        gamma: gamma, beta: beta,
                        mean: mean.baseAddress!, invStd: invStd.baseAddress!)
                }
            }
        }
    }

    /// Writes dx for the last forward pass, and keeps each sample's Σdy and Σdy·x̂ per channel
    /// for `addGradients`.
    mutating func backward(_ gradOutput: Tensor, gamma: [Float], into gradInput: inout Tensor) throws {
        guard let input, let layout else { throw NormalizerError.backwardWithoutForward }
        guard gradOutput.shape == input.shape else {
            throw NormalizerError.gradientShapeMismatch(expected: input.shape, got: gradOutput.shape)
        }
        self.input = nil  // a forward serves one backward; see ChannelNormalizationPass.backward
        let c = layout.channels
        if sampleSumDy.count != layout.batch * c {
            sampleSumDy = [Float](repeating: 0, count: layout.batch * c)
            sampleSumDyNormalized = sampleSumDy
        }
        gradInput.reshape(to: input.shape)
        gradInput.scalars.withUnsafeMutableBufferPointer { dx in
            sampleSumDy.withUnsafeMutableBufferPointer { sumDy in
                sampleSumDyNormalized.withUnsafeMutableBufferPointer { sumDyNormalized in
                    GroupStatistics.backward(
                        gradOutput.scalars, input.scalars, dx.baseAddress!, layout, groups: groups,
                        gamma: gamma, mean: mean, invStd: invStd,
                        sampleSumDy: sumDy.baseAddress!, sampleSumDyNormalized: sumDyNormalized.baseAddress!)
                }
            }
        }
    }

    /// Adds the last backward pass's terms of dL/dgamma and dL/dbeta to `gamma` and `beta`,
    /// sample by sample, in order.
    func addGradients(gamma: UnsafeMutableBufferPointer<Float>, beta: UnsafeMutableBufferPointer<Float>) {
        guard let layout else { return }
        let c = layout.channels
        for sample in 0..<layout.batch {
            for channel in 0..<c {
                gamma[channel] += sampleSumDyNormalized[sample * c + channel]
                beta[channel] += sampleSumDy[sample * c + channel]
            }
        }
    }

    mutating func releaseInput() {
        input = nil
    }
}
