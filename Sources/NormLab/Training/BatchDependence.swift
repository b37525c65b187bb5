/// How much a sample's output in training mode depends on the other samples of its batch: for a
/// normalizer whose statistics are each sample's own it does not at all; with batch statistics
/// the same image gets different logits beside different batch mates.
///
/// For each of the first `samples` test images, and for each of `draws` sets of B − 1 batch
/// mates drawn at random from the training set (seeded, without replacement within a set), the
/// trained network's training-mode forward of [image, mates…] gives the image's logits. Per
/// batch size B: the standard deviation of each logit over the draws, averaged over the classes
/// and the images, and the fraction of (image, draw) pairs whose predicted class differs from
/// the class predicted most often for that image over its draws. The network's running
/// statistics are restored.
public struct BatchDependence: Codable, Equatable, Sendable {
    public var logitStd: Double
    public var predictionChanges: Double

    enum CodingKeys: String, CodingKey {
        case logitStd = "logit_std", predictionChanges = "prediction_changes"
    }

    public static let batchSizes = [8, 32]
    public static let samples = 10, draws = 100

    /// Per batch size (as a key, "8"), of the trained `model`.
    static func measure(
        _ model: any Model, train: Dataset, test: Dataset, batchSizes: [Int] = batchSizes, samples: Int = samples,
        draws: Int = draws
    ) throws -> [String: BatchDependence] {
        let stateful = model.normalizers.compactMap { $0 as? any StatefulNormalizer }
        let trained = stateful.map(\.state)
        defer {
            for (normalizer, state) in zip(stateful, trained) { try? normalizer.setState(state) }
        }
        let probes = test.prefix(samples)
        var images = Tensor(shape: [0])
        var results: [String: BatchDependence] = [:]
        for batchSize in batchSizes where batchSize - 1 <= train.count {
            var generator = SeededGenerator(seed: 0x4D41_5445_5300 ^ UInt64(batchSize))
            var spread = 0.0, changes = 0
            for sample in 0..<probes.count {
                var logits: [[Double]] = [], predictions: [Int] = []
                for _ in 0..<draws {
                    let mates = sampleWithoutReplacement(batchSize - 1, from: train.count, using: &generator)
                    // The image first, then its mates from the training set.
                    probes.batch([sample], into: &images)
                    var batch = Tensor(shape: [batchSize] + Array(images.shape.dropFirst()))
                    var mateImages = Tensor(shape: [0])
                    train.batch(mates, into: &mateImages)
                    let size = images.count
                    batch.scalars.replaceSubrange(0..<size, with: images.scalars)
                    batch.scalars.replaceSubrange(size..<batchSize * size, with: mateImages.scalars)
                    try model.forward(batch, mode: .training)
                    let classes = model.logits.shape[1]
                    logits.append((0..<classes).map { Double(model.logits.scalars[$0]) })
                    predictions.append(predicted(model.logits, row: 0, classes: classes))
                }
                let counts = Dictionary(predictions.map { ($0, 1) }, uniquingKeysWith: +)
                changes += draws - (counts.values.max() ?? draws)
                let classes = logits[0].count
                // Deviations from the first draw's logit: exactly 0 when every draw gives the same.
                spread += (0..<classes).map { k in
                    let deviations = logits.map { $0[k] - logits[0][k] }
                    let mean = deviations.reduce(0, +) / Double(draws)
                    return (deviations.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(draws)).squareRoot()
                }.reduce(0, +) / Double(classes)
            }
            results[String(batchSize)] = BatchDependence(
                logitStd: spread / Double(probes.count), predictionChanges: Double(changes) / Double(probes.count * draws))
        }
        return results
    }

    private static func predicted(_ logits: Tensor, row: Int, classes: Int) -> Int {
        (0..<classes).max { logits.scalars[row * classes + $0] < logits.scalars[row * classes + $1] }!
    }

    /// `count` distinct indices below `limit`, by a partial Fisher–Yates shuffle.
    private static func sampleWithoutReplacement(_ count: Int, from limit: Int, using generator: inout SeededGenerator) -> [Int] {
        var chosen: [Int: Int] = [:]
        return (0..<count).map { i in
            let j = i + Int(generator.next() % UInt64(limit - i))
            let picked = chosen[j] ?? j
            chosen[j] = chosen[i] ?? i
            return picked
        }
    }
}
