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
        Parallelism.forEach(c, cost: 4 * n * s) { channels in
            for channel in channels {
                let (channelMean, variance) = moments(x, samples: 0..<n, channel: channel, layout)
                let inverse = inverseStandardDeviation(variance, epsilon: epsilon)
                mean[channel] = channelMean
                invStd[channel] = inverse
                let (scale, shift) = coefficients(channel, channelMean, variance)
                let (a, b) = affineCoefficients(mean: channelMean, inverse: inverse, scale: scale, shift: shift)
                affine(x, y, samples: 0..<n, channel: channel, layout, a: a, b: b, rectifying: rectifying)
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
                affine(x, y, samples: 0..<n, channel: channel, layout, a: a, b: b, rectifying: rectifying)
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
        Parallelism.forEach(c, cost: 5 * n * s) { channels in
            for channel in channels {
                (sumDy[channel], sumDyNormalized[channel]) = backward(
                    dy, x, dx, samples: 0..<n, channel: channel, layout, mean: mean[channel], inverse: invStd[channel],
                    scale: scale[channel], statisticsFromBatch: statisticsFromBatch)
            }
        }
    }
}

/// Batch statistics over virtual batches: each run of `virtualBatch` consecutive samples (the
/// last may be shorter) has its own per-channel statistics, which are what batch norm would
/// compute on those samples alone, with the same additions in the same order (so the same
/// bits). Per-(virtual batch, channel) values are at `[group · C + channel]`. Each call is one
/// pass over the whole batch, split by channel, each channel's virtual batches in order.
extension ChannelStatistics {
    /// The samples of each virtual batch.
    static func virtualBatches(of layout: NormalizationLayout, size virtualBatch: Int) -> [Range<Int>] {
        stride(from: 0, to: layout.batch, by: virtualBatch).map { $0..<min($0 + virtualBatch, layout.batch) }
    }

    /// Each virtual batch's biased per-channel mean and variance.
    static func virtualBatchMoments(
        _ x: UnsafePointer<Float>, _ layout: NormalizationLayout, groups: [Range<Int>],
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>
    ) {
        let c = layout.channels
        Parallelism.forEach(c, cost: 2 * layout.batch * layout.spatial) { channels in
            for channel in channels {
                for (group, samples) in groups.enumerated() {
                    (mean[group * c + channel], variance[group * c + channel]) = moments(x, samples: samples, channel: channel, layout)
                }
            }
        }
    }

    /// `y = x·a + b` with each virtual batch's per-channel a and b.
    static func virtualBatchAffine(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ layout: NormalizationLayout, groups: [Range<Int>],
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, rectifying: Bool
    ) {
        let c = layout.channels
        Parallelism.forEach(c, cost: layout.batch * layout.spatial) { channels in
            for channel in channels {
                for (group, samples) in groups.enumerated() {
                    affine(x, y, samples: samples, channel: channel, layout, a: a[group * c + channel], b: b[group * c + channel], rectifying: rectifying)
                }
            }
        }
    }

    /// `backward` with each virtual batch's statistics; writes its Σdy and Σdy·x̂ per channel.
    static func virtualBatchBackward(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
        _ layout: NormalizationLayout, groups: [Range<Int>], mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
        scale: UnsafePointer<Float>, sumDy: UnsafeMutablePointer<Float>, sumDyNormalized: UnsafeMutablePointer<Float>
    ) {
        let c = layout.channels
        Parallelism.forEach(c, cost: 5 * layout.batch * layout.spatial) { channels in
            for channel in channels {
                for (group, samples) in groups.enumerated() {
                    let index = group * c + channel
                    (sumDy[index], sumDyNormalized[index]) = backward(
                        dy, x, dx, samples: samples, channel: channel, layout, mean: mean[index], inverse: invStd[index],
                        scale: scale[index], statisticsFromBatch: true)
                }
            }
        }
    }
}

/// One channel over a run of samples: the steps every batch-style kernel is made of.
extension ChannelStatistics {
    /// The biased mean and variance of `channel` over `samples` and H, W (two passes, sums in
    /// Double).
    @inline(__always)
    static func moments(
        _ x: UnsafePointer<Float>, samples: Range<Int>, channel: Int, _ layout: NormalizationLayout
    ) -> (mean: Float, variance: Float) {
        let c = layout.channels, s = layout.spatial
        let count = Double(samples.count * s)
        var total = 0.0
        for sample in samples {
            total += VectorKernels.sum(x + (sample * c + channel) * s, s)
        }
        let mean = Float(total / count)
        var squares = 0.0
        for sample in samples {
            squares += VectorKernels.sumOfSquaredDeviations(x + (sample * c + channel) * s, s, mean: mean)
        }
        return (mean, Float(squares / count))
    }

    /// `y = x·a + b` (with `rectifying`, then the ReLU) on `channel` of `samples`.
    @inline(__always)
    static func affine(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, samples: Range<Int>, channel: Int,
        _ layout: NormalizationLayout, a: Float, b: Float, rectifying: Bool
    ) {
        let c = layout.channels, s = layout.spatial
        for sample in samples {
            let offset = (sample * c + channel) * s
            VectorKernels.affine(x + offset, y + offset, s, scale: a, shift: b, rectifying: rectifying)
        }
    }

    /// The backward pass of `channel` over `samples`, normalized with `mean` and `inverse`
    /// and scaled by `scale`: writes dx there and returns Σdy and Σdy·x̂.
    @inline(__always)
    static func backward(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, samples: Range<Int>,
        channel: Int, _ layout: NormalizationLayout, mean: Float, inverse: Float, scale: Float, statisticsFromBatch: Bool
    ) -> (sumDy: Float, sumDyNormalized: Float) {
        let c = layout.channels, s = layout.spatial
        var totalDy = 0.0, totalDyCentered = 0.0
        for sample in samples {
            let offset = (sample * c + channel) * s
            let sums = VectorKernels.gradientSums(dy + offset, x + offset, s, mean: mean)
            totalDy += sums.sumDy
            totalDyCentered += sums.sumDyCentered
        }
        let (sumDy, sumDyNormalized) = (Float(totalDy), Float(totalDyCentered) * inverse)
        let (a, b, constant) = inputGradientCoefficients(
            mean: mean, inverse: inverse, scale: scale, sumDy: sumDy, sumDyNormalized: sumDyNormalized,
            count: Float(samples.count * s), statisticsFromBatch: statisticsFromBatch)
        for sample in samples {
            let offset = (sample * c + channel) * s
            VectorKernels.linearCombination(dy + offset, x + offset, dx + offset, s, a: a, b: b, c: constant)
        }
        return (sumDy, sumDyNormalized)
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
