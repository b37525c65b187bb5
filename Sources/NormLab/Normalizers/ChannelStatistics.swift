/// The batch-style kernels: each channel's statistics are taken over the batch and the spatial
/// positions (all N planes of channel c). Used by `BatchNorm` and `BatchRenorm`.
///
/// Work is split by channel; each channel is handled start to finish by one thread, so its
/// slice is read from memory once and its later passes come from cache, and results do not
/// depend on the thread count.
enum ChannelStatistics {
    /// Training-mode forward: per channel, the biased batch mean and variance (two passes), then
    /// `y = (x - mean) · invStd · scale + shift`, with `(scale, shift)` chosen by `coefficients`
    /// from the channel's statistics (where batch renorm applies r and d, and running
    /// statistics are updated). Writes the mean and 1/sqrt(var + ε) for the backward pass.
    static func forwardTraining(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ layout: NormalizationLayout,
        epsilon: Float, rectifying: Bool, mean: UnsafeMutablePointer<Float>, invStd: UnsafeMutablePointer<Float>,
        coefficients: (_ channel: Int, _ mean: Float, _ variance: Float) -> (scale: Float, shift: Float)
    ) {
        let n = layout.batch, c = layout.channels, s = layout.spatial
        let count = Double(n * s)
        Parallelism.forEach(c, cost: 4 * n * s) { channels in
            for channel in channels {
                var total = 0.0
                for sample in 0..<n {
                    total += VectorKernels.sum(x + (sample * c + channel) * s, s)
                }
                let channelMean = Float(total / count)
                var squares = 0.0
                for sample in 0..<n {
                    squares += VectorKernels.sumOfSquaredDeviations(x + (sample * c + channel) * s, s, mean: channelMean)
                }
                let variance = Float(squares / count)
                let inverse = inverseStandardDeviation(variance, epsilon: epsilon)
                mean[channel] = channelMean
                invStd[channel] = inverse
                let (scale, shift) = coefficients(channel, channelMean, variance)
                let (a, b) = affineCoefficients(mean: channelMean, inverse: inverse, scale: scale, shift: shift)
                for sample in 0..<n {
                    let offset = (sample * c + channel) * s
                    VectorKernels.affine(x + offset, y + offset, s, scale: a, shift: b, rectifying: rectifying)
                }
            }
        }
    }

    /// Forward with given statistics (inference): `y = (x - mean) · invStd · scale + shift`.
    static func forwardWithStatistics(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ layout: NormalizationLayout,
        mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, rectifying: Bool
    ) {
        let n = layout.batch, c = layout.channels, s = layout.spatial
        Parallelism.forEach(c, cost: n * s) { channels in
            for channel in channels {
                let a = invStd[channel] * scale[channel]
                let b = shift[channel] - mean[channel] * a
                for sample in 0..<n {
                    let offset = (sample * c + channel) * s
                    VectorKernels.affine(x + offset, y + offset, s, scale: a, shift: b, rectifying: rectifying)
                }
            }
        }
    }

    /// Backward of `y = (x - mean) · invStd · scale + shift`.
    ///
    /// With batch statistics the mean and variance depend on x, which gives the usual
    /// `dx = scale · invStd · (dy - mean(dy) - x̂ · mean(dy · x̂))`; with statistics held constant
    /// (inference, or batch renorm's r and d) only the first term remains. Writes Σdy and
    /// Σdy·x̂ per channel, from which the caller forms dL/dgamma and dL/dbeta.
    static func backward(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
        _ layout: NormalizationLayout, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
        scale: UnsafePointer<Float>, statisticsFromBatch: Bool,
        sumDy: UnsafeMutablePointer<Float>, sumDyNormalized: UnsafeMutablePointer<Float>
    ) {
        let n = layout.batch, c = layout.channels, s = layout.spatial
        let count = Float(n * s)
        Parallelism.forEach(c, cost: 5 * n * s) { channels in
            for channel in channels {
                let channelMean = mean[channel], inverse = invStd[channel]
                var totalDy = 0.0, totalDyCentered = 0.0
                for sample in 0..<n {
                    let offset = (sample * c + channel) * s
                    let sums = VectorKernels.gradientSums(dy + offset, x + offset, s, mean: channelMean)
                    totalDy += sums.sumDy
                    totalDyCentered += sums.sumDyCentered
                }
                sumDy[channel] = Float(totalDy)
                sumDyNormalized[channel] = Float(totalDyCentered) * inverse
                let (a, b, constant) = inputGradientCoefficients(
                    mean: channelMean, inverse: inverse, scale: scale[channel], sumDy: sumDy[channel],
                    sumDyNormalized: sumDyNormalized[channel], count: count, statisticsFromBatch: statisticsFromBatch)
                for sample in 0..<n {
                    let offset = (sample * c + channel) * s
                    VectorKernels.linearCombination(dy + offset, x + offset, dx + offset, s, a: a, b: b, c: constant)
                }
            }
        }
    }
}

extension ChannelStatistics {
    /// 1/sqrt(var + ε).
    @inline(__always)
    static func inverseStandardDeviation(_ variance: Float, epsilon: Float) -> Float {
        1 / (variance + epsilon).squareRoot()
    }

    /// A channel's `y = (x - mean) · inverse · scale + shift` as `y = x·a + b`.
    @inline(__always)
    static func affineCoefficients(mean: Float, inverse: Float, scale: Float, shift: Float) -> (a: Float, b: Float) {
        let a = inverse * scale
        return (a, shift - mean * a)
    }

    /// A channel's input gradient as `dx = a·dy + b·x + c`, from its Σdy and Σdy·x̂ over the
    /// `count` values that share its statistics: x̂ = (x - mean)·inverse is expanded so that one
    /// pass over dy and x suffices. With statistics held constant, only `a·dy` remains.
    @inline(__always)
    static func inputGradientCoefficients(
        mean: Float, inverse: Float, scale: Float, sumDy: Float, sumDyNormalized: Float, count: Float,
        statisticsFromBatch: Bool
    ) -> (a: Float, b: Float, c: Float) {
        let a = scale * inverse
        guard statisticsFromBatch else { return (a, 0, 0) }
        let b = -a * inverse * sumDyNormalized / count
        return (a, b, -a * sumDy / count - b * mean)
    }
}

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
