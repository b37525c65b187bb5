/// How far the distribution each norm slot sees moves as training goes on: the lab's measure of
/// internal covariate shift (Ioffe & Szegedy 2015; Santurkar et al. 2018).
///
/// A norm slot's input is a convolution's output (in every model of the lab a normalizer follows
/// each convolution, or would: with `none`, or after the ReLU with placement `after`). Before
/// training and after each epoch, a fixed probe of training images goes through the network in
/// inference mode, and each slot's input gets its per-channel mean and variance over the probe's
/// images and positions. An epoch's change, per slot, averages over the channels
/// |Δmean| / σ and |Δσ| / σ, σ the channel's standard deviation at the epoch before (channels
/// with σ = 0 left out; nil when every channel has σ = 0).
public struct ActivationDrift: Codable, Equatable, Sendable {
    /// [epoch][slot][channel], epoch 0 before training.
    public var mean: [[[Double]]] = []
    public var variance: [[[Double]]] = []
    /// [epoch − 1][slot]: from the epoch before to this one, for epochs 1, 2, ….
    public var meanChange: [[Double?]] = []
    public var stdChange: [[Double?]] = []

    enum CodingKeys: String, CodingKey {
        case mean, variance, meanChange = "mean_change", stdChange = "std_change"
    }

    /// The images of the probe.
    public static let probeImages = 500

    /// Adds one epoch's statistics, and its change since the last.
    mutating func append(_ statistics: [(mean: [Double], variance: [Double])]) {
        if let lastMean = mean.last, let lastVariance = variance.last {
            var meanChanges: [Double?] = [], stdChanges: [Double?] = []
            for (slot, now) in statistics.enumerated() {
                var meanSum = 0.0, stdSum = 0.0, channels = 0
                for channel in now.mean.indices {
                    let before = lastVariance[slot][channel].squareRoot()
                    guard before > 0 else { continue }
                    meanSum += abs(now.mean[channel] - lastMean[slot][channel]) / before
                    stdSum += abs(now.variance[channel].squareRoot() - before) / before
                    channels += 1
                }
                meanChanges.append(channels > 0 ? Recorder.finite(meanSum / Double(channels)) : nil)
                stdChanges.append(channels > 0 ? Recorder.finite(stdSum / Double(channels)) : nil)
            }
            meanChange.append(meanChanges)
            stdChange.append(stdChanges)
        }
        mean.append(statistics.map(\.mean))
        variance.append(statistics.map(\.variance))
    }
}

/// Per-channel statistics of every convolution's output on some images, in inference mode.
enum ActivationProbe {
    /// For each convolution in layer order, the mean and variance of each output channel over
    /// `images`' samples and positions (summed in Double).
    /// - Throws: `TrainingError.invalidSetting` for a model that is not made of layers.
    static func statistics(of model: any Model, on images: Dataset) throws -> [(mean: [Double], variance: [Double])] {
        guard let network = model as? Network else {
            throw TrainingError.invalidSetting("activation drift needs a network of layers")
        }
        let convolutions = network.body.allLayers.compactMap { $0 as? Conv2D }
        var sums = convolutions.map { [Double](repeating: 0, count: $0.outputChannels) }
        var squares = sums
        var counts = [Int](repeating: 0, count: convolutions.count)
        for (index, convolution) in convolutions.enumerated() {
            convolution.outputObserver = { output in
                let channels = output.shape[1], plane = output.count / (output.shape[0] * channels)
                output.scalars.withUnsafeBufferPointer { y in
                    for sample in 0..<output.shape[0] {
                        for channel in 0..<channels {
                            var sum = 0.0, square = 0.0
                            for i in (sample * channels + channel) * plane..<(sample * channels + channel + 1) * plane {
                                let value = Double(y[i])
                                sum += value
                                square += value * value
                            }
                            sums[index][channel] += sum
                            squares[index][channel] += square
                        }
                    }
                }
                counts[index] += output.shape[0] * plane
            }
        }
        defer {
            for convolution in convolutions { convolution.outputObserver = nil }
        }
        _ = try Trainer.accuracy(of: model, on: images)
        return convolutions.indices.map { index in
            let count = Double(max(1, counts[index]))
            let mean = sums[index].map { $0 / count }
            let variance = zip(squares[index], mean).map { max(0, $0 / count - $1 * $1) }
            return (mean, variance)
        }
    }
}
