/// Population statistics recomputed after training (PreciseBN, Wu & Johnson 2021,
/// https://arxiv.org/abs/2105.07576): with the weights frozen, each batch-norm layer's running
/// statistics are replaced by the average of batch statistics over a sample of training images.
///
/// Comparing accuracy with these statistics against accuracy with the running averages tells how
/// much of batch norm's small-batch loss comes from running averages that lag the final network,
/// and how much from training with noisy batch statistics.
public enum PreciseBN {
    /// Whether `model` has normalizers with running statistics.
    public static func applies(to model: any Model) -> Bool {
        model.normalizers.contains { $0 is any PopulationStatisticsNormalizer }
    }

    /// Re-estimates the running statistics of every batch norm and batch renorm layer from
    /// `imageCount` training images (a seeded sample) in batches of `batchSize`.
    ///
    /// Layers are re-estimated together in one pass per batch; each layer's input then comes from
    /// earlier layers normalized with that batch's statistics, as in the reference implementation.
    public static func recompute(
        _ model: any Model, data: Dataset, imageCount: Int = 2000, batchSize: Int = 200, seed: UInt64 = 0
    ) throws {
        var generator = SeededGenerator(seed: seed ^ 0x5052_4543_4953_45)
        var order = Array(0..<data.count)
        Trainer.shuffle(&order, using: &generator)
        try estimate(model, from: data, images: order.prefix(min(imageCount, data.count)), batchSize: batchSize)
    }

    /// Re-estimates them from the first `imageCount` images of `data`, in order, in batches of
    /// `batchSize`: the statistics of unlabelled images of a new distribution (shifted test
    /// images), as a deployed network could re-estimate them.
    public static func recompute(_ model: any Model, onFirst imageCount: Int, of data: Dataset, batchSize: Int = 200) throws {
        try estimate(model, from: data, images: 0..<min(imageCount, data.count), batchSize: batchSize)
    }

    private static func estimate<Images: Collection<Int>>(
        _ model: any Model, from data: Dataset, images sample: Images, batchSize: Int
    ) throws {
        let sample = Array(sample)
        let layers = model.normalizers.compactMap { $0 as? any PopulationStatisticsNormalizer }
        for layer in layers { layer.beginPopulationEstimate() }
        defer {
            for layer in layers { layer.endPopulationEstimate() }
        }
        var images = Tensor(shape: [0])
        var start = 0
        while start < sample.count {
            let end = min(sample.count, start + batchSize)
            data.batch(sample[start..<end], into: &images)
            try model.forward(images, mode: .training)
            start = end
        }
    }
}
