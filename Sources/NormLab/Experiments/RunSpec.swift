/// Everything that defines one run of a sweep: the key under which its result is recorded, and
/// what resuming a sweep compares to know a run is done.
public struct RunSpec: Codable, Equatable, Sendable {
    public var experiment: String
    /// The network's name (`smallcnn`, `resnet-20`, …); records from before models had names
    /// read as `smallcnn`.
    public var model: String
    /// Residual networks: whether each residual branch starts at zero; absent otherwise.
    public var zeroInitResidual: Bool?
    /// `true` when the convolutions standardize their weights; absent otherwise.
    public var weightStandardization: Bool?
    /// The normalizer's row label (its kind unless the experiment names it otherwise).
    public var label: String
    /// The normalizer and its settings, recorded as `normalizer`, `epsilon` and each recorded
    /// setting's `recordKey` (`norm_momentum`, `groups`, …).
    public var normalizerSettings: NormalizerSettings
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
    /// The factor on the Kaiming standard deviation of the initial weights; nil for 1.
    public var initScale: Float?
    /// Non-i.i.d. batches of this many classes (`ClassGroupedBatches`); nil for shuffled ones.
    public var classesPerBatch: Int?
    /// What the run records beyond its accuracy, in name order; nil for nothing.
    public var recordings: [Recording]?

    enum CodingKeys: String, CodingKey {
        case experiment, model, zeroInitResidual = "zero_init_residual", weightStandardization = "weight_standardization"
        case label, normalizer, epsilon
        case placement, batchSize = "batch_size", epochs
        case baseLearningRate = "base_lr", learningRate = "lr", learningRateScaling = "lr_scaling"
        case weightDecay = "weight_decay", sgdMomentum = "sgd_momentum", seed, data, trainSize = "train_size"
        case testSize = "test_size", initScale = "init_scale", classesPerBatch = "classes_per_batch", recordings = "record"
    }

    init(
        experiment: String, model: ModelSettings = .smallCNN, label: String, normalizer settings: NormalizerSettings,
        placement: NormalizerPlacement, batchSize: Int, epochs: Int,
        baseLearningRate: Float, learningRate: Float, learningRateScaling: String, weightDecay: Float, sgdMomentum: Float,
        seed: UInt64, data: String, trainSize: Int, testSize: Int? = nil, classesPerBatch: Int? = nil,
        recordings: Set<Recording> = []
    ) {
        self.experiment = experiment
        self.model = model.name
        zeroInitResidual = model.hasShortcuts ? model.zeroInitResidual : nil
        weightStandardization = model.weightStandardization ? true : nil
        initScale = model.initScale == 1 ? nil : model.initScale
        self.classesPerBatch = classesPerBatch
        self.label = label
        normalizerSettings = settings
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
        self.recordings = recordings.isEmpty ? nil : recordings.sorted()
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        experiment = try container.decode(String.self, forKey: .experiment)
        model = try container.decodeIfPresent(String.self, forKey: .model) ?? ModelSettings.smallCNN.name
        zeroInitResidual = try container.decodeIfPresent(Bool.self, forKey: .zeroInitResidual)
        weightStandardization = try container.decodeIfPresent(Bool.self, forKey: .weightStandardization)
        label = try container.decode(String.self, forKey: .label)
        normalizerSettings = NormalizerSettings(kind: try container.decode(NormalizerKind.self, forKey: .normalizer))
        normalizerSettings.epsilon = try container.decode(Float.self, forKey: .epsilon)
        let settings = try decoder.container(keyedBy: AnyKey.self)
        // Another normalizer's setting would be silently dropped: refuse it.
        let own = Set(normalizerSettings.kind.registration.settings(in: .record).map(\.recordKey))
        for registration in NormalizerRegistry.all {
            for setting in registration.settings(in: .record) where !own.contains(setting.recordKey) {
                if settings.contains(AnyKey(stringValue: setting.recordKey)) {
                    throw DecodingError.dataCorrupted(DecodingError.Context(
                        codingPath: [AnyKey(stringValue: setting.recordKey)],
                        debugDescription: "\(setting.recordKey) is a setting of \(registration.displayName), not of \(normalizerSettings.kind.displayName)"))
                }
            }
        }
        for setting in normalizerSettings.kind.registration.settings(in: .record) {
            do {
                if let value = try setting.decodeIfPresent(from: settings, key: setting.recordKey) {
                    try normalizerSettings.set(setting.key, value)
                }
            } catch let error as NormalizerError {
                throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: [AnyKey(stringValue: setting.recordKey)], debugDescription: "\(error)"))
            }
        }
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
        initScale = try container.decodeIfPresent(Float.self, forKey: .initScale)
        classesPerBatch = try container.decodeIfPresent(Int.self, forKey: .classesPerBatch)
        recordings = try container.decodeIfPresent([Recording].self, forKey: .recordings).map { Set($0).sorted() }
        if recordings?.isEmpty == true { recordings = nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(experiment, forKey: .experiment)
        try container.encode(model, forKey: .model)
        try container.encodeIfPresent(zeroInitResidual, forKey: .zeroInitResidual)
        try container.encodeIfPresent(weightStandardization == true ? true : nil, forKey: .weightStandardization)
        try container.encode(label, forKey: .label)
        try container.encode(normalizer, forKey: .normalizer)
        try container.encode(normalizerSettings.epsilon, forKey: .epsilon)
        try container.encode(placement, forKey: .placement)
        try container.encode(batchSize, forKey: .batchSize)
        try container.encode(epochs, forKey: .epochs)
        try container.encode(baseLearningRate, forKey: .baseLearningRate)
        try container.encode(learningRate, forKey: .learningRate)
        try container.encode(learningRateScaling, forKey: .learningRateScaling)
        try container.encode(weightDecay, forKey: .weightDecay)
        try container.encode(sgdMomentum, forKey: .sgdMomentum)
        try container.encode(seed, forKey: .seed)
        try container.encode(data, forKey: .data)
        try container.encode(trainSize, forKey: .trainSize)
        try container.encodeIfPresent(testSize, forKey: .testSize)
        try container.encodeIfPresent(initScale, forKey: .initScale)
        try container.encodeIfPresent(classesPerBatch, forKey: .classesPerBatch)
        try container.encodeIfPresent(recordings, forKey: .recordings)
        var settings = encoder.container(keyedBy: AnyKey.self)
        for setting in normalizerSettings.kind.registration.settings(in: .record) {
            if let value = normalizerSettings[setting.key] {
                try settings.encode(value, forKey: AnyKey(stringValue: setting.recordKey))
            }
        }
    }

    /// The normalizer's kind.
    public var normalizer: NormalizerKind { normalizerSettings.kind }

    /// The network this run trains.
    /// - Throws: `ModelError` for a model name the lab does not have.
    public func modelSettings() throws -> ModelSettings {
        var settings = try ModelSettings(
            name: model, zeroInitResidual: zeroInitResidual ?? false, weightStandardization: weightStandardization ?? false)
        settings.initScale = initScale ?? 1
        return settings
    }

    /// The trainer's settings for this run: it trains at the recorded peak rate `learningRate`,
    /// whatever rule scaled it.
    /// - Throws: `ModelError` for a model name the lab does not have.
    public func trainingSettings() throws -> TrainingSettings {
        var settings = TrainingSettings(
            model: try modelSettings(), normalizer: normalizerSettings,
            placement: placement, batchSize: batchSize, epochs: epochs, baseLearningRate: baseLearningRate,
            momentum: sgdMomentum, weightDecay: weightDecay, seed: seed)
        settings.learningRate = learningRate
        settings.classesPerBatch = classesPerBatch
        settings.recordings = Set(recordings ?? [])
        return settings
    }

    /// What sets the run apart beyond its model, normalizer, placement, rate, batch size and
    /// seed, in words ("init ×0.1, 2 classes per batch"); empty for none.
    public var variant: String {
        var parts: [String] = []
        if let initScale { parts.append("init ×\(Statistics.format(Double(initScale)))") }
        if let classesPerBatch { parts.append("\(classesPerBatch) \(classesPerBatch == 1 ? "class" : "classes") per batch") }
        return parts.joined(separator: ", ")
    }

    /// A short description for progress lines.
    public var summary: String {
        var text = "\(model == ModelSettings.smallCNN.name ? "" : model + " ")\(label) batch \(batchSize) seed \(seed)"
        if placement == .after { text += " (norm after ReLU)" }
        if !variant.isEmpty { text += " (\(variant))" }
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
    /// What the run recorded on request, as keys of the record itself.
    public var recordings = TrainingRecordings()

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
    /// not a positive number, a training time that is negative or not a number, a normalizer
    /// setting its registration refuses (a batch-renorm schedule point outside the run).
    public init(from decoder: any Decoder) throws {
        spec = try RunSpec(from: decoder)
        result = try RunResult(from: decoder)
        result.recordings = try TrainingRecordings(from: decoder)
        func refuse(_ reason: String) -> DecodingError {
            DecodingError.dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: reason))
        }
        let recorded = result.recordings
        var accuracies: [(String, Double?)] = [
            ("test_accuracy", result.testAccuracy), ("precise_bn_accuracy", result.preciseBNAccuracy),
            ("final_train_accuracy", recorded.finalTrainAccuracy),
        ]
        for table in [recorded.shiftedAccuracy, recorded.shiftedAccuracyReestimated] {
            for (family, levels) in table ?? [:] {
                for (level, accuracy) in levels { accuracies.append(("shifted_accuracy \(family) \(level)", accuracy)) }
            }
        }
        for (batch, dependence) in recorded.batchDependence ?? [:] {
            accuracies.append(("batch_dependence \(batch) prediction_changes", dependence.predictionChanges))
            if !(dependence.logitStd >= 0) { throw refuse("batch_dependence \(batch) logit_std \(dependence.logitStd) is negative") }
        }
        for point in recorded.curve ?? [] {
            accuracies += [("curve train_accuracy", point.trainAccuracy), ("curve test_accuracy", point.testAccuracy)]
        }
        for (name, accuracy) in accuracies {
            if let accuracy, !(0...1).contains(accuracy) { throw refuse("\(name) \(accuracy) is not between 0 and 1") }
        }
        let norms = (recorded.firstStepGradientNorms ?? []) + (recorded.gradientNorms ?? []).joined()
        if let norm = norms.compactMap({ $0 }).first(where: { !($0 >= 0) }) { throw refuse("gradient norm \(norm) is negative") }
        if let variance = recorded.activationDrift?.variance.joined().joined().first(where: { !($0 >= 0) }) {
            throw refuse("activation_drift variance \(variance) is negative")
        }
        if let speed = recorded.inferenceImagesPerSecond, !(speed.isFinite && speed > 0) {
            throw refuse("inference_images_per_second \(speed) is not a speed")
        }
        guard spec.batchSize >= 1 else { throw refuse("batch_size \(spec.batchSize) is below 1") }
        guard result.seconds.isFinite, result.seconds >= 0 else { throw refuse("seconds \(result.seconds) is not a training time") }
        for (name, rate) in [("base_lr", spec.baseLearningRate), ("lr", spec.learningRate)] where !(rate.isFinite && rate > 0) {
            throw refuse("\(name) \(rate) is not a positive number")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        try spec.encode(to: encoder)
        try result.encode(to: encoder)
        try result.recordings.encode(to: encoder)
    }
}
