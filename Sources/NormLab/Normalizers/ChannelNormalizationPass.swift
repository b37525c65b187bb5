/// What a batch-style forward pass keeps for its backward pass, and the buffers both reuse.
public struct ChannelNormalizationPass {
    public init() {}

    private var input: Tensor?
    private var layout: NormalizationLayout?
    private var statisticsFromBatch = true
    /// Per channel: the mean and 1/sqrt(var + ε) that the last forward normalized with.
    private(set) var mean: [Float] = []
    private(set) var invStd: [Float] = []
    /// Per channel: the scale the last forward applied to x̂ (gamma, or gamma·r).
    var scale: [Float] = []

    /// Validates the input and remembers it; returns its layout.
    mutating func begin(
        _ input: Tensor, channelCount: Int, kind: NormalizerKind, mode: NormalizationMode
    ) throws -> NormalizationLayout {
        let layout = try NormalizationLayout(shape: input.shape, channelCount: channelCount, kind: kind)
        if mode == .training && layout.batch * layout.spatial < 2 {
            throw NormalizerError.singleValuePerChannel(kind: kind, shape: input.shape)
        }
        if mean.count != channelCount {
            mean = [Float](repeating: 0, count: channelCount)
            invStd = mean
            scale = mean
        }
        self.input = input
        self.layout = layout
        statisticsFromBatch = mode == .training
        return layout
    }

    /// Training forward with batch statistics; see `ChannelStatistics.forwardTraining`.
    /// The scale returned by `coefficients` is remembered for the backward pass.
    mutating func forwardTraining(
        _ input: Tensor, _ layout: NormalizationLayout, epsilon: Float, into output: inout Tensor, rectifying: Bool,
        coefficients: (_ channel: Int, _ mean: Float, _ variance: Float) -> (scale: Float, shift: Float)
    ) {
        output.reshape(to: input.shape)
        input.scalars.withUnsafeBufferPointer { x in
            output.scalars.withUnsafeMutableBufferPointer { y in
                mean.withUnsafeMutableBufferPointer { mean in
                    invStd.withUnsafeMutableBufferPointer { invStd in
                        scale.withUnsafeMutableBufferPointer { scale in
                            ChannelStatistics.forwardTraining(
                                x.baseAddress!, y.baseAddress!, layout, epsilon: epsilon, rectifying: rectifying,
                                mean: mean.baseAddress!, invStd: invStd.baseAddress!
                            ) { channel, mean, variance in
                                let coefficients = coefficients(channel, mean, variance)
                                scale[channel] = coefficients.scale
                                return coefficients
                            }
                        }
                    }
                }
            }
        }
    }

    /// Forward with fixed statistics: `y = (x - mean) · invStd · scale + shift`.
    mutating func forwardWithStatistics(
        _ input: Tensor, _ layout: NormalizationLayout, mean: [Float], invStd: [Float],
        scale: [Float], shift: [Float], into output: inout Tensor, rectifying: Bool
    ) {
        self.mean = mean
        self.invStd = invStd
        self.scale = scale
        output.reshape(to: input.shape)
        output.scalars.withUnsafeMutableBufferPointer { y in
            ChannelStatistics.forwardWithStatistics(
                input.scalars, y.baseAddress!, layout, mean: mean, invStd: invStd, scale: scale, shift: shift,
                rectifying: rectifying)
        }
    }

    /// The backward pass of the last forward: writes dx and returns (Σdy, Σdy·x̂) per channel.
    mutating func backward(
        _ gradOutput: Tensor, into gradInput: inout Tensor
    ) throws -> (sumDy: [Float], sumDyNormalized: [Float]) {
        guard let input, let layout else { throw NormalizerError.backwardWithoutForward }
        guard gradOutput.shape == input.shape else {
            throw NormalizerError.gradientShapeMismatch(expected: input.shape, got: gradOutput.shape)
        }
        // Let go of the input, so the layer that wrote it can overwrite its buffer in place
        // next step instead of copying it (a forward serves one backward).
        self.input = nil
        var sumDy = [Float](repeating: 0, count: layout.channels)
        var sumDyNormalized = sumDy
        gradInput.reshape(to: input.shape)
        gradInput.scalars.withUnsafeMutableBufferPointer { dx in
            sumDy.withUnsafeMutableBufferPointer { sumDy in
                sumDyNormalized.withUnsafeMutableBufferPointer { sumDyNormalized in
                    ChannelStatistics.backward(
                        gradOutput.scalars, input.scalars, dx.baseAddress!, layout, mean: mean, invStd: invStd,
                        scale: scale, statisticsFromBatch: statisticsFromBatch,
                        sumDy: sumDy.baseAddress!, sumDyNormalized: sumDyNormalized.baseAddress!)
                }
            }
        }
        return (sumDy, sumDyNormalized)
    }

    mutating func releaseInput() {
        input = nil
    }
}
