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
