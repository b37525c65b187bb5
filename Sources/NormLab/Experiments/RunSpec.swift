/// Everything that defines one run of a sweep: the key under which its result is recorded, and
/// what resuming a sweep compares to know a run is done.
public struct RunSpec: Codable, Equatable, Sendable {
    public var experiment: String
    /// The network's name (`smallcnn`, `resnet-20`, …); records from before models had names
    /// read as `smallcnn`.
    public var model: String
    /// Residual networks: whether each residual branch starts at zero; absent otherwise.
    public var zeroInitResidual: Bool?
    /// The normalizer's row label (its kind unless the experiment names it otherwise).
    public var label: String
    public var normalizer: NormalizerKind
    public var epsilon: Float
    /// Batch norm and batch renorm: the running-statistics rate.
    public var normMomentum: Float?
    /// Group norm: the group count; absent means min(8, C).
    public var groups: Int?
    public var renormSchedule: RenormSchedule?
    public var placement: NormalizerPlacement
    public var batchSize: Int
    public var epochs: Int
    public var baseLearningRate: Float
    /// The peak rate after scaling.
    public var learningRate: Float
    public var learningRateScaling: String
    public var weightDecay: Float
    public var sgdMomentum: Float
    public var seed: UInt64
    /// `embedded` or the data folder.
    public var data: String
    public var trainSize: Int
    /// The number of test images evaluated; nil for the whole test set.
    public var testSize: Int?

    enum CodingKeys: String, CodingKey {
        case experiment, model, zeroInitResidual = "zero_init_residual", label, normalizer, epsilon
        case normMomentum = "norm_momentum", groups
        case renormSchedule = "renorm_schedule", placement, batchSize = "batch_size", epochs
        case baseLearningRate = "base_lr", learningRate = "lr", learningRateScaling = "lr_scaling"
        case weightDecay = "weight_decay", sgdMomentum = "sgd_momentum", seed, data, trainSize = "train_size"
        case testSize = "test_size"
    }

    init(
        experiment: String, model: ModelSettings = .smallCNN, label: String, normalizer settings: NormalizerSettings,
        renormSchedule: RenormSchedule?, placement: NormalizerPlacement, batchSize: Int, epochs: Int,
        baseLearningRate: Float, learningRate: Float, learningRateScaling: String, weightDecay: Float, sgdMomentum: Float,
        seed: UInt64, data: String, trainSize: Int, testSize: Int? = nil
    ) {
        self.experiment = experiment
        self.model = model.name
        zeroInitResidual = model.hasShortcuts ? model.zeroInitResidual : nil
        self.label = label
        normalizer = settings.kind
        epsilon = settings.epsilon
        normMomentum = settings.kind == .batch || settings.kind == .batchrenorm ? settings.momentum : nil
        groups = settings.kind == .group ? settings.groups : nil
        self.renormSchedule = renormSchedule
        self.placement = placement
        self.batchSize = batchSize
        self.epochs = epochs
        self.baseLearningRate = baseLearningRate
        self.learningRate = learningRate
        self.learningRateScaling = learningRateScaling
        self.weightDecay = weightDecay
        self.sgdMomentum = sgdMomentum
        self.seed = seed
        self.data = data
        self.trainSize = trainSize
        self.testSize = testSize
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        experiment = try container.decode(String.self, forKey: .experiment)
        model = try container.decodeIfPresent(String.self, forKey: .model) ?? ModelSettings.smallCNN.name
        zeroInitResidual = try container.decodeIfPresent(Bool.self, forKey: .zeroInitResidual)
        label = try container.decode(String.self, forKey: .label)
        normalizer = try container.decode(NormalizerKind.self, forKey: .normalizer)
        epsilon = try container.decode(Float.self, forKey: .epsilon)
        normMomentum = try container.decodeIfPresent(Float.self, forKey: .normMomentum)
        groups = try container.decodeIfPresent(Int.self, forKey: .groups)
        renormSchedule = try container.decodeIfPresent(RenormSchedule.self, forKey: .renormSchedule)
        placement = try container.decode(NormalizerPlacement.self, forKey: .placement)
        batchSize = try container.decode(Int.self, forKey: .batchSize)
        epochs = try container.decode(Int.self, forKey: .epochs)
        baseLearningRate = try container.decode(Float.self, forKey: .baseLearningRate)
        learningRate = try container.decode(Float.self, forKey: .learningRate)
        learningRateScaling = try container.decode(String.self, forKey: .learningRateScaling)
        weightDecay = try container.decode(Float.self, forKey: .weightDecay)
        sgdMomentum = try container.decode(Float.self, forKey: .sgdMomentum)
        seed = try container.decode(UInt64.self, forKey: .seed)
        data = try container.decode(String.self, forKey: .data)
        trainSize = try container.decode(Int.self, forKey: .trainSize)
        testSize = try container.decodeIfPresent(Int.self, forKey: .testSize)
    }

    /// The network this run trains.
    /// - Throws: `ModelError` for a model name the lab does not have.
    public func modelSettings() throws -> ModelSettings {
        try ModelSettings(name: model, zeroInitResidual: zeroInitResidual ?? false)
    }

    /// The trainer's settings for this run: it trains at the recorded peak rate `learningRate`,
    /// whatever rule scaled it.
    /// - Throws: `ModelError` for a model name the lab does not have.
    public func trainingSettings() throws -> TrainingSettings {
        var settings = TrainingSettings(
            model: try modelSettings(), normalizer: NormalizerSettings(kind: normalizer, epsilon: epsilon, momentum: normMomentum ?? 0.1, groups: groups),
            placement: placement, batchSize: batchSize, epochs: epochs, baseLearningRate: baseLearningRate,
            momentum: sgdMomentum, weightDecay: weightDecay, seed: seed)
        settings.learningRate = learningRate
        settings.renorm = renormSchedule ?? RenormSchedule()
        return settings
    }

    /// A short description for progress lines.
    public var summary: String {
        var text = "\(model == ModelSettings.smallCNN.name ? "" : model + " ")\(label) batch \(batchSize) seed \(seed)"
        if placement == .after { text += " (norm after ReLU)" }
        return text + " lr \(learningRate)"
    }
}

/// What one finished run produced.
public struct RunResult: Codable, Equatable, Sendable {
    /// Test accuracy (a fraction) in inference mode with the running statistics; nil if diverged.
    public var testAccuracy: Double?
    /// Batch norm and batch renorm: test accuracy after PreciseBN re-estimation.
    public var preciseBNAccuracy: Double?
    public var finalLoss: Double?
    public var diverged: Bool
    public var divergedAtStep: Int?
    public var steps: Int
    /// Training wall time, seconds.
    public var seconds: Double
    public var imagesPerSecond: Double
    public var threads: Int
    public var commit: String
    public var finishedAt: String

    enum CodingKeys: String, CodingKey {
        case testAccuracy = "test_accuracy", preciseBNAccuracy = "precise_bn_accuracy", finalLoss = "final_loss"
        case diverged, divergedAtStep = "diverged_at_step", steps, seconds, imagesPerSecond = "images_per_second"
        case threads, commit, finishedAt = "finished_at"
    }
}

/// One line of a results file: a run's settings and its result, as one flat JSON object.
public struct RunRecord: Codable, Equatable, Sendable {
    public var spec: RunSpec
    public var result: RunResult

    public init(spec: RunSpec, result: RunResult) {
        self.spec = spec
        self.result = result
    }

    /// Reads a record and refuses values no run can produce, which a report would otherwise draw,
    /// add up or average: an accuracy outside 0…1, a batch size below 1, a learning rate that is
    /// not a positive number, a training time that is negative or not a number, a batch-renorm
    /// schedule point outside the run.
    public init(from decoder: any Decoder) throws {
        spec = try RunSpec(from: decoder)
        result = try RunResult(from: decoder)
        func refuse(_ reason: String) -> DecodingError {
            DecodingError.dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: reason))
        }
        for (name, accuracy) in [("test_accuracy", result.testAccuracy), ("precise_bn_accuracy", result.preciseBNAccuracy)] {
            if let accuracy, !(0...1).contains(accuracy) { throw refuse("\(name) \(accuracy) is not between 0 and 1") }
        }
        guard spec.batchSize >= 1 else { throw refuse("batch_size \(spec.batchSize) is below 1") }
        guard result.seconds.isFinite, result.seconds >= 0 else { throw refuse("seconds \(result.seconds) is not a training time") }
        if let schedule = spec.renormSchedule {
            for (name, fraction) in [("warmup", schedule.warmup), ("rmax_ramp_end", schedule.rmaxRampEnd), ("dmax_ramp_end", schedule.dmaxRampEnd)]
            where !(0...1).contains(fraction) {
                throw refuse("renorm_schedule.\(name) \(fraction) is not a fraction of the steps")
            }
        }
        for (name, rate) in [("base_lr", spec.baseLearningRate), ("lr", spec.learningRate)] where !(rate.isFinite && rate > 0) {
            throw refuse("\(name) \(rate) is not a positive number")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        try spec.encode(to: encoder)
        try result.encode(to: encoder)
    }
}
