import Foundation

/// Everything that defines one training run.
public struct TrainingSettings: Equatable, Sendable {
    public var model: ModelSettings = .smallCNN
    public var normalizer: NormalizerSettings
    public var placement: NormalizerPlacement = .before
    public var batchSize: Int
    public var epochs: Int
    /// The peak learning rate, which the cosine schedule decays from.
    public var learningRate: Float
    public var momentum: Float = 0.9
    /// L2 decay on convolution and linear weights (not on gamma, beta or biases).
    public var weightDecay: Float = 5e-4
    public var seed: UInt64
    /// Non-i.i.d. batches of about this many classes each (`ClassGroupedBatches`); nil for
    /// shuffled batches. It divides the batch size.
    public var classesPerBatch: Int?
    /// What the run records beyond its final accuracy (`Recording`); nothing by default.
    public var recordings: Set<Recording> = []
    /// The shifted test sets `shifted_accuracy` evaluates.
    public var shifts: [InputShift] = InputShift.defaults

    /// - Parameter baseLearningRate: the rate at batch size 32; the run's peak rate is
    ///   `baseLearningRate · batchSize / 32` (the linear scaling rule, Goyal et al. 2017). Set
    ///   `learningRate` afterwards for another rule.
    public init(
        model: ModelSettings = .smallCNN, normalizer: NormalizerSettings, placement: NormalizerPlacement = .before,
        batchSize: Int, epochs: Int, baseLearningRate: Float, momentum: Float = 0.9, weightDecay: Float = 5e-4,
        seed: UInt64
    ) {
        self.model = model
        self.normalizer = normalizer
        self.placement = placement
        self.batchSize = batchSize
        self.epochs = epochs
        learningRate = baseLearningRate * Float(batchSize) / 32
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.seed = seed
    }

    /// - Throws: `TrainingError.invalidSetting` for a value no run can use.
    public func validate(trainSize: Int) throws {
        guard batchSize > 0 else { throw TrainingError.invalidSetting("batch size must be positive, got \(batchSize)") }
        guard epochs > 0 else { throw TrainingError.invalidSetting("epochs must be positive, got \(epochs)") }
        guard learningRate > 0, learningRate.isFinite else {
            throw TrainingError.invalidSetting("learning rate must be positive, got \(learningRate)")
        }
        guard weightDecay >= 0 else { throw TrainingError.invalidSetting("weight decay must not be negative, got \(weightDecay)") }
        guard momentum >= 0, momentum < 1 else { throw TrainingError.invalidSetting("SGD momentum must lie in [0, 1), got \(momentum)") }
        if let classesPerBatch, !(classesPerBatch > 0 && batchSize % classesPerBatch == 0) {
            throw TrainingError.invalidSetting("classes per batch must be a positive divisor of the batch size \(batchSize), got \(classesPerBatch)")
        }
        guard batchSize <= trainSize else {
            throw TrainingError.invalidSetting("batch size \(batchSize) is larger than the \(trainSize) training images")
        }
        // Every norm slot must accept the normalizer (e.g. the group count divides 16, 32, 64).
        try model.validate(normalizer: normalizer, placement: placement)
    }
}

/// Where a run stands, for progress displays.
public struct TrainingProgress: Sendable {
    public var epoch: Int
    public var epochs: Int
    public var step: Int
    public var totalSteps: Int
    /// Mean training loss over the current epoch so far.
    public var loss: Double
    public var imagesPerSecond: Double
    public var secondsElapsed: Double
    public var secondsRemaining: Double
}

/// What a run produced.
public struct TrainingOutcome {
    /// Test-set accuracy (a fraction) in inference mode; nil if the run diverged.
    public var testAccuracy: Double?
    /// Mean training loss over the last epoch (or the steps before divergence).
    public var finalLoss: Double
    public var diverged: Bool
    /// The step at which the loss became NaN or infinite.
    public var divergedAtStep: Int?
    /// Training time (excluding data loading and the final evaluation).
    public var seconds: Double
    public var imagesPerSecond: Double
    public var steps: Int
    /// What the settings asked to be recorded.
    public var recordings: TrainingRecordings
    /// The trained model, for further evaluation.
    public var model: any Model
}

/// A setting no run can use, or a run that cannot proceed.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case invalidSetting(String)

    public var description: String {
        switch self {
        case .invalidSetting(let message): return message
        }
    }
}

/// Trains a model with SGD and a cosine schedule, then evaluates it on the test set.
public enum Trainer {
    /// Runs one training. Each epoch is a fresh seeded shuffle of the training set; the last
    /// incomplete batch is dropped. The run stops early, as diverged, if the loss becomes NaN
    /// or infinite.
    public static func train(
        _ settings: TrainingSettings, train: Dataset, test: Dataset,
        progress: ((TrainingProgress) -> Void)? = nil
    ) throws -> TrainingOutcome {
        try settings.validate(trainSize: train.count)
        guard test.count > 0, test.imageShape == train.imageShape else {
            throw TrainingError.invalidSetting(
                "the test set needs at least one image of the training images' size (\(train.imageShape)); it has \(test.count) of \(test.imageShape)")
        }
        guard train.classes == test.classes else {
            throw TrainingError.invalidSetting("training and test sets disagree on the number of classes")
        }
        let model = try settings.model.make(
            normalizer: settings.normalizer, placement: settings.placement, image: train.imageShape, classes: train.classes,
            seed: settings.seed)
        let stepsPerEpoch = train.count / settings.batchSize
        let totalSteps = stepsPerEpoch * settings.epochs
        let optimizer = SGD(learningRate: settings.learningRate, momentum: settings.momentum, weightDecay: settings.weightDecay)
        let schedule = CosineSchedule(initialRate: settings.learningRate, totalSteps: totalSteps)
        let scheduled = model.normalizers.compactMap { $0 as? any ScheduledNormalizer }
        var shuffler = SeededGenerator(seed: settings.seed ^ 0x5348_5546_464C_4531)
        var chunkShuffler = SeededGenerator(seed: settings.seed ^ 0x4348_554E_4B53_0001)
        var order = Array(0..<train.count)
        var images = Tensor(shape: [settings.batchSize, train.channels, train.rows, train.columns])
        var labels = [UInt8](repeating: 0, count: settings.batchSize)

        let clock = ContinuousClock()
        let start = clock.now
        var lastReport = start
        var step = 0
        var epochLoss = 0.0, epochSteps = 0
        var diverged = false
        let recorder = settings.recordings.isEmpty
            ? nil : try Recorder(settings.recordings, model: model, train: train, test: test, shifts: settings.shifts)
        training: for epoch in 0..<settings.epochs {
            shuffle(&order, using: &shuffler)
            var epochOrder = order
            if let classesPerBatch = settings.classesPerBatch {
                ClassGroupedBatches.reorder(
                    &epochOrder, labels: train.labels, batchSize: settings.batchSize, classesPerBatch: classesPerBatch,
                    using: &chunkShuffler)
            }
            epochLoss = 0
            epochSteps = 0
            for batchIndex in 0..<stepsPerEpoch {
                optimizer.learningRate = schedule.rate(atStep: step)
                for normalizer in scheduled { try normalizer.prepare(step: step, of: totalSteps) }
                let batch = epochOrder[(batchIndex * settings.batchSize)..<((batchIndex + 1) * settings.batchSize)]
                train.batch(batch, into: &images)
                for (slot, index) in batch.enumerated() { labels[slot] = train.labels[index] }
                let loss = try Self.step(model, optimizer, images: images, labels: labels, beforeUpdate: recorder?.gradientsComputed)
                step += 1
                guard loss.isFinite else {
                    diverged = true
                    break training
                }
                epochLoss += loss
                epochSteps += 1
                if let progress, clock.now - lastReport > .milliseconds(200) || step == totalSteps {
                    lastReport = clock.now
                    let elapsed = (clock.now - start).inSeconds
                    let rate = Double(step * settings.batchSize) / elapsed
                    progress(TrainingProgress(
                        epoch: epoch + 1, epochs: settings.epochs, step: step, totalSteps: totalSteps,
                        loss: epochLoss / Double(epochSteps), imagesPerSecond: rate, secondsElapsed: elapsed,
                        secondsRemaining: Double((totalSteps - step) * settings.batchSize) / rate))
                }
            }
            try recorder?.epochEnded(epoch + 1, meanLoss: epochLoss / Double(epochSteps))
        }
        // Training time: without the recordings' evaluations between epochs.
        let elapsed = (clock.now - start).inSeconds - (recorder?.seconds ?? 0)
        let trainedImages = Double((diverged ? step - 1 : step) * settings.batchSize)
        let evaluationStart = clock.now
        let testAccuracy = diverged ? nil : try accuracy(of: model, on: test)
        try recorder?.trainingEnded(testAccuracy: testAccuracy, evaluationSeconds: (clock.now - evaluationStart).inSeconds)
        return TrainingOutcome(
            testAccuracy: testAccuracy,
            finalLoss: epochSteps > 0 ? epochLoss / Double(epochSteps) : .nan,
            diverged: diverged, divergedAtStep: diverged ? step : nil,
            seconds: elapsed, imagesPerSecond: elapsed > 0 ? trainedImages / elapsed : 0,
            steps: step, recordings: recorder?.recordings ?? TrainingRecordings(), model: model)
    }

    /// One training step: forward in training mode, softmax cross-entropy, backward, and an SGD
    /// update. Returns the batch's mean loss; when it is not finite, no update is made.
    /// - Parameter beforeUpdate: called once the gradients are set, before the update.
    public static func step(
        _ model: any Model, _ optimizer: SGD, images: Tensor, labels: [UInt8], beforeUpdate: (() -> Void)? = nil
    ) throws -> Double {
        let loss = try model.trainingGradients(images: images, labels: labels[...])
        guard loss.isFinite else { return loss }
        beforeUpdate?()
        optimizer.step(model)
        return loss
    }

    /// The fraction of `data` that `model` classifies correctly in inference mode.
    public static func accuracy(of model: any Model, on data: Dataset, batchSize: Int = 500) throws -> Double {
        var images = Tensor(shape: [0])
        var gradient = Tensor(shape: [0])
        var correct = 0
        var start = 0
        while start < data.count {
            let end = min(data.count, start + batchSize)
            data.batch(start..<end, into: &images)
            try model.forward(images, mode: .inference)
            correct += SoftmaxCrossEntropy.evaluate(logits: model.logits, labels: data.labels[start..<end], gradient: &gradient).correct
            start = end
        }
        return Double(correct) / Double(data.count)
    }

    /// Fisher–Yates with the lab's own generator, so the order is the same on every platform
    /// and Swift version.
    static func shuffle(_ values: inout [Int], using generator: inout SeededGenerator) {
        guard values.count > 1 else { return }
        for i in stride(from: values.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            values.swapAt(i, j)
        }
    }
}
