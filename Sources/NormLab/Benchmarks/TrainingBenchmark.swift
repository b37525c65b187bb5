/// `normlab bench train`: images per second of a model's training steps (forward, backward,
/// SGD update) for each normalizer and batch size.
public enum TrainingBenchmark {
    public struct Measurement: Sendable {
        public var normalizer: NormalizerKind
        public var batchSize: Int
        public var imagesPerSecond: Double
    }

    public static let defaultBatchSizes = [2, 8, 32, 128]

    /// Times blocks of steps on real images and reports the median block's rate.
    public static func run(
        data: Dataset, model: ModelSettings = .smallCNN, kinds: [NormalizerKind] = NormalizerRegistry.kinds,
        batchSizes: [Int] = defaultBatchSizes,
        minimumSeconds: Double = 0.2, report: (Measurement) -> Void
    ) throws {
        for batchSize in batchSizes {
            // Enough images per timed block that small batches are not dominated by timer noise.
            let stepsPerBlock = max(1, 256 / batchSize)
            for kind in kinds {
                let model = try model.make(
                    normalizer: try NormalizerSettings(kind: kind, kind.registration.benchmark?.settings ?? [:]), image: data.imageShape, classes: data.classes,
                    seed: 0)
                let optimizer = SGD(learningRate: 0.01)
                var images = Tensor(shape: [0])
                var labels = [UInt8](repeating: 0, count: batchSize)
                var next = 0
                let seconds = try Stopwatch.median(minimumRepeats: 5, minimumSeconds: minimumSeconds) {
                    for _ in 0..<stepsPerBlock {
                        if next + batchSize > data.count { next = 0 }
                        data.batch(next..<(next + batchSize), into: &images)
                        for slot in 0..<batchSize { labels[slot] = data.labels[next + slot] }
                        next += batchSize
                        _ = try Trainer.step(model, optimizer, images: images, labels: labels)
                    }
                }
                report(Measurement(
                    normalizer: kind, batchSize: batchSize, imagesPerSecond: Double(stepsPerBlock * batchSize) / seconds))
            }
        }
    }
}
