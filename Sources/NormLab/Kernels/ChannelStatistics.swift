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
