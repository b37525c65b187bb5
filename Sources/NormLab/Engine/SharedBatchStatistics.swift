/// The statistics of one batch norm or batch renorm layer during a training step in lanes
/// (`BatchStatisticsLane`). Each lane, a copy of the network on its own thread, normalizes its
/// share of the batch, but with the whole batch's statistics.
///
/// The lanes meet three times per pass. Each time, every lane writes one sum per
/// (sample, channel) plane of its samples; then one thread adds each channel's
/// planes in sample order. `ChannelStatistics` adds the same sums in the same order over the
/// whole batch, so both give the same bits.
///
/// | the lanes, each over its samples | then one thread |
/// |---|---|
/// | `addPlaneSums` (Σx) | `finishMeans` |
/// | `addSquaredDeviations` (Σ(x - mean)²) | `finishVariances`: the normalizer's coefficients and running statistics |
/// | `normalize`; in the backward pass, `addGradientSums` (Σdy, Σdy·(x - mean)) | `finishGradientSums`: the normalizer's gradients |
/// | `inputGradient` | |
final class SharedBatchStatistics {
    /// The whole batch's shape and layout.
    let shape: [Int]
    let layout: NormalizationLayout
    private let normalizer: any BatchStatisticsNormalizer
    /// One sum per plane, [N, C]: Σx, then Σ(x - mean)², then Σdy. (Raw buffers, here and
    /// below: the lanes write their own planes from their threads at the same time.)
    private let planeSums: UnsafeMutableBufferPointer<Double>
    /// One sum per plane, [N, C]: Σdy·(x - mean).
    private let planeProducts: UnsafeMutableBufferPointer<Double>
    /// Per channel: the mean and 1/sqrt(var + ε), the scale applied to x̂, and the lanes' next
    /// pass as `y = x·a + b` or `dx = dy·a + x·b + c`.
    private let mean, invStd, scale, a, b, c: UnsafeMutableBufferPointer<Float>

    /// - Throws: `NormalizerError` when `shape` cannot be normalized by `normalizer` in training.
    init(normalizer: any BatchStatisticsNormalizer, batchShape shape: [Int]) throws {
        self.shape = shape
        layout = try NormalizationLayout(shape: shape, channelCount: normalizer.channelCount, kind: normalizer.kind)
        guard layout.batch * layout.spatial > 1 else {
            throw NormalizerError.singleValuePerChannel(kind: normalizer.kind, shape: shape)
        }
        self.normalizer = normalizer
        let planes = layout.batch * layout.channels
        planeSums = .allocate(capacity: planes)
        planeProducts = .allocate(capacity: planes)
        let channels = layout.channels
        (mean, invStd, scale) = (.allocate(capacity: channels), .allocate(capacity: channels), .allocate(capacity: channels))
        (a, b, c) = (.allocate(capacity: channels), .allocate(capacity: channels), .allocate(capacity: channels))
    }

    deinit {
        for buffer in [planeSums, planeProducts] { buffer.deallocate() }
        for buffer in [mean, invStd, scale, a, b, c] { buffer.deallocate() }
    }

    // MARK: The lanes' parts, each on a lane's samples (`x` holds samples `share.samples`)

    /// Σx over each plane.
    func addPlaneSums(of x: Tensor, share: SamplePiece) {
        let first = firstPlane(of: share, x)
        forEachPlane(of: x) { plane, channel, x, count in
            planeSums[first + plane] = VectorKernels.sum(x, count)
        }
    }

    /// Σ(x - mean)² over each plane, once `finishMeans` has run.
    func addSquaredDeviations(of x: Tensor, share: SamplePiece) {
        let first = firstPlane(of: share, x)
        forEachPlane(of: x) { plane, channel, x, count in
            planeSums[first + plane] = VectorKernels.sumOfSquaredDeviations(x, count, mean: mean[channel])
        }
    }

    /// Writes the normalized `x` into `y` (with `rectifying`, max(y, 0)), once
    /// `finishVariances` has run.
    func normalize(_ x: Tensor, into y: inout Tensor, rectifying: Bool) {
        y.reshape(to: x.shape)
        y.scalars.withUnsafeMutableBufferPointer { y in
            let y = y.baseAddress!
            forEachPlane(of: x) { plane, channel, x, count in
                VectorKernels.affine(x, y + plane * count, count, scale: a[channel], shift: b[channel], rectifying: rectifying)
            }
        }
    }

    /// Σdy and Σdy·(x - mean) over each plane, for the gradient `dy` at the normalizer's output.
    func addGradientSums(_ dy: Tensor, of x: Tensor, share: SamplePiece) {
        precondition(dy.shape == x.shape, "gradient shape \(dy.shape) for input shape \(x.shape)")
        dy.scalars.withUnsafeBufferPointer { dy in
            let dy = dy.baseAddress!
            let first = firstPlane(of: share, x)
            forEachPlane(of: x) { plane, channel, x, count in
                let sums = VectorKernels.gradientSums(dy + plane * count, x, count, mean: mean[channel])
                planeSums[first + plane] = sums.sumDy
                planeProducts[first + plane] = sums.sumDyCentered
            }
        }
    }

    /// Writes dL/dx into `dx`, once `finishGradientSums` has run.
    func inputGradient(_ dy: Tensor, of x: Tensor, into dx: inout Tensor) {
        dx.reshape(to: x.shape)
        dy.scalars.withUnsafeBufferPointer { dy in
            dx.scalars.withUnsafeMutableBufferPointer { dx in
                let (dy, dx) = (dy.baseAddress!, dx.baseAddress!)
                forEachPlane(of: x) { plane, channel, x, count in
                    let offset = plane * count
                    VectorKernels.linearCombination(dy + offset, x, dx + offset, count, a: a[channel], b: b[channel], c: c[channel])
                }
            }
        }
    }

    /// The index among the whole batch's planes of the first plane of `x`, a lane's `share`.
    private func firstPlane(of share: SamplePiece, _ x: Tensor) -> Int {
        precondition(share.batch == layout.batch && share.count == x.shape[0], "\(share) of a batch of \(layout)")
        return share.first * layout.channels
    }

    /// Calls `body` for each (sample, channel) plane of `x`, in order, with its index in `x`, its
    /// channel, its scalars and their count.
    private func forEachPlane(
        of x: Tensor, _ body: (_ plane: Int, _ channel: Int, _ x: UnsafePointer<Float>, _ count: Int) -> Void
    ) {
        let (channels, spatial) = (layout.channels, layout.spatial)
        precondition(x.count == x.shape[0] * channels * spatial, "shape \(x.shape) in a batch of \(layout)")
        x.scalars.withUnsafeBufferPointer { scalars in
            for plane in 0..<x.shape[0] * channels {
                body(plane, plane % channels, scalars.baseAddress! + plane * spatial, spatial)
            }
        }
    }

    // MARK: The whole batch's parts, between the lanes' (one thread)

    /// The per-channel means, from every lane's `addPlaneSums`.
    func finishMeans() {
        let count = Double(layout.batch * layout.spatial)
        for channel in 0..<layout.channels {
            mean[channel] = Float(sumOverSamples(planeSums, channel) / count)
        }
    }

    /// The per-channel variances, from every lane's `addSquaredDeviations`, and from them the
    /// normalizer's scale and shift (which updates its running statistics).
    func finishVariances() {
        let count = Double(layout.batch * layout.spatial)
        let epsilon = normalizer.epsilon
        normalizer.withTrainingCoefficients(valuesPerChannel: layout.batch * layout.spatial) { coefficients in
            for channel in 0..<layout.channels {
                let variance = Float(sumOverSamples(planeSums, channel) / count)
                let inverse = ChannelStatistics.inverseStandardDeviation(variance, epsilon: epsilon)
                invStd[channel] = inverse
                let (scale, shift) = coefficients(channel, mean[channel], variance)
                self.scale[channel] = scale
                (a[channel], b[channel]) = ChannelStatistics.affineCoefficients(
                    mean: mean[channel], inverse: inverse, scale: scale, shift: shift)
            }
        }
    }

    /// The normalizer's gradients, and the input gradient's coefficients, from every lane's
    /// `addGradientSums`.
    func finishGradientSums() {
        var sumDy = [Float](repeating: 0, count: layout.channels), sumDyNormalized = sumDy
        let count = Float(layout.batch * layout.spatial)
        for channel in 0..<layout.channels {
            sumDy[channel] = Float(sumOverSamples(planeSums, channel))
            sumDyNormalized[channel] = Float(sumOverSamples(planeProducts, channel)) * invStd[channel]
            (a[channel], b[channel], c[channel]) = ChannelStatistics.inputGradientCoefficients(
                mean: mean[channel], inverse: invStd[channel], scale: scale[channel], sumDy: sumDy[channel],
                sumDyNormalized: sumDyNormalized[channel], count: count, statisticsFromBatch: true)
        }
        normalizer.setGradients(sumDy: sumDy, sumDyNormalized: sumDyNormalized)
    }

    /// A channel's plane sums added in sample order, as `ChannelStatistics` adds them.
    private func sumOverSamples(_ sums: UnsafeMutableBufferPointer<Double>, _ channel: Int) -> Double {
        var total = 0.0
        for sample in 0..<layout.batch {
            total += sums[sample * layout.channels + channel]
        }
        return total
    }
}
