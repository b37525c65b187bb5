import Foundation

/// An experiment file (`experiments/*.json`, format `normlab-experiment/1`): a grid of training
/// runs — models × normalizers × placements × learning rates × batch sizes × seeds — and where
/// to write the results. `experiments/README.md` documents every key.
public struct Experiment: Equatable, Sendable {
    public static let format = "normlab-experiment/1"

    /// Names the experiment in results and in the default output file names.
    public var name: String
    public var description: String
    /// The networks, each with every normalizer (`smallcnn` when the file names none).
    public var models: [ModelSettings] = [.smallCNN]
    /// `"embedded"` (the repository's Fashion-MNIST subset), a folder of Fashion-MNIST IDX
    /// files, or a folder of CIFAR-10's binary files.
    public var data: String
    /// Use the first this many training images; nil means all that `data` has.
    public var trainSize: Int?
    /// Evaluate on the first this many test images; nil means the whole test set.
    public var testSize: Int?
    public var epochs: Int
    /// Base learning rates at batch `referenceBatchSize`.
    public var baseLearningRates: [Float]
    /// `linear`: rate = base × batch / reference (Goyal et al. 2017); `none`: rate = base.
    public var learningRateScaling: String
    public var referenceBatchSize: Int
    public var weightDecay: Float
    public var sgdMomentum: Float
    public var placements: [NormalizerPlacement]
    public var normalizers: [NormalizerEntry]
    public var batchSizes: [Int]
    public var seeds: [UInt64]
    /// PreciseBN re-estimation for batch norm and batch renorm; nil to skip it.
    public var preciseBN: PreciseBNPlan?
    /// Factors on the Kaiming standard deviation of the initial weights: each a column of the
    /// grid beside the models.
    public var initScales: [Float] = [1]
    /// Non-i.i.d. batches of this many classes each (`ClassGroupedBatches`); nil for shuffled
    /// batches.
    public var classesPerBatch: [Int?] = [nil]
    /// What every run records beyond its accuracy (`Recording`).
    public var recordings: Set<Recording> = []
    public var outputs: Outputs

    /// One normalizer of the grid, with the label its rows carry.
    public struct NormalizerEntry: Equatable, Sendable {
        public var label: String
        public var settings: NormalizerSettings
        /// Whether the model's convolutions standardize their weights in this entry's runs.
        public var weightStandardization = false
    }

    public struct PreciseBNPlan: Equatable, Sendable, Codable {
        public var images: Int
        public var batchSize: Int

        enum CodingKeys: String, CodingKey {
            case images, batchSize = "batch_size"
        }
    }

    /// Output file names, relative to the output folder.
    public struct Outputs: Equatable, Sendable {
        public var jsonl: String
        public var markdown: String
        public var csv: String
        public var svg: String

        public init(jsonl: String, markdown: String, csv: String, svg: String) {
            self.jsonl = jsonl
            self.markdown = markdown
            self.csv = csv
            self.svg = svg
        }
    }

    /// Reads and validates an experiment file.
    /// - Throws: `ExperimentError` naming the key that is unknown, of the wrong type, or impossible.
    public static func load(from path: String) throws -> Experiment {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ExperimentError.invalid("cannot read \(path): \(error.localizedDescription)")
        }
        return try decode(data, path: path)
    }

    /// Reads and validates an experiment file's bytes; `path` names it in errors.
    /// - Throws: `ExperimentError.invalid` naming the key that is unknown, of the wrong type, or
    ///   impossible.
    public static func decode(_ data: Data, path: String) throws -> Experiment {
        do {
            let file = try JSONDecoder().decode(ExperimentFile.self, from: data)
            let experiment = try file.experiment()
            try experiment.validate()
            return experiment
        } catch let error as DecodingError {
            throw ExperimentError.invalid("\(path): \(describe(error))")
        } catch let error as ExperimentError {
            throw ExperimentError.invalid("\(path): \(error)")
        } catch {
            throw ExperimentError.invalid("\(path): \(error)")
        }
    }

    /// The learning rate a run with this batch size starts at.
    public func learningRate(base: Float, batchSize: Int) -> Float {
        learningRateScaling == "linear" ? base * Float(batchSize) / Float(referenceBatchSize) : base
    }

    /// Checks every value against what a run can use, and every normalizer and placement against
    /// every model.
    func validate() throws {
        func fail(_ message: String) -> ExperimentError { .invalid(message) }
        guard !name.isEmpty, !name.contains("/") else { throw fail("\"name\" must be a non-empty file-name-safe string") }
        guard epochs > 0 else { throw fail("\"epochs\" must be positive, got \(epochs)") }
        if let trainSize, trainSize <= 0 { throw fail("\"train_size\" must be positive, got \(trainSize)") }
        if let testSize, testSize <= 0 { throw fail("\"test_size\" must be positive, got \(testSize)") }
        guard !baseLearningRates.isEmpty, baseLearningRates.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw fail("\"learning_rate.base\" must be one or more positive numbers")
        }
        guard ["linear", "none"].contains(learningRateScaling) else {
            throw fail("\"learning_rate.scaling\" is \"linear\" or \"none\", got \"\(learningRateScaling)\"")
        }
        guard referenceBatchSize > 0 else { throw fail("\"learning_rate.reference_batch_size\" must be positive") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw fail("\"weight_decay\" must be 0 or more, got \(weightDecay)") }
        guard sgdMomentum >= 0, sgdMomentum < 1 else { throw fail("\"sgd_momentum\" must lie in [0, 1), got \(sgdMomentum)") }
        guard !placements.isEmpty, Set(placements).count == placements.count else {
            throw fail("\"placement\" must name each of before/after at most once")
        }
        guard !normalizers.isEmpty else { throw fail("\"normalizers\" must list at least one normalizer") }
        guard Set(normalizers.map(\.label)).count == normalizers.count else {
            throw fail("normalizer labels must be unique; give entries of the same kind a \"label\"")
        }
        guard !batchSizes.isEmpty, batchSizes.allSatisfy({ $0 > 0 }), Set(batchSizes).count == batchSizes.count else {
            throw fail("\"batch_sizes\" must be distinct positive whole numbers")
        }
        if let trainSize, let largest = batchSizes.max(), largest > trainSize {
            throw fail("batch size \(largest) is larger than \"train_size\" \(trainSize)")
        }
        guard !seeds.isEmpty, Set(seeds).count == seeds.count else { throw fail("\"seeds\" must be distinct, and at least one") }
        if let plan = preciseBN, plan.images <= 1 || plan.batchSize <= 1 {
            throw fail("\"precise_bn.images\" and \"precise_bn.batch_size\" must be larger than 1")
        }
        guard !initScales.isEmpty, Set(initScales).count == initScales.count, initScales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw fail("\"init_scale\" must be distinct positive numbers")
        }
        guard !classesPerBatch.isEmpty, Set(classesPerBatch).count == classesPerBatch.count else {
            throw fail("\"classes_per_batch\" must be distinct")
        }
        for k in classesPerBatch.compactMap({ $0 }) {
            guard k > 0 else { throw fail("\"classes_per_batch\" must be positive, got \(k)") }
            if let batchSize = batchSizes.first(where: { $0 % k != 0 }) {
                throw fail("\"classes_per_batch\" \(k) does not divide batch size \(batchSize): a batch is k chunks of B/k samples")
            }
        }
        guard !models.isEmpty, Set(models.map(\.name)).count == models.count else {
            throw fail("\"model\" must name each model at most once")
        }
        for (index, entry) in normalizers.enumerated() {
            for width in Set(models.flatMap(\.normalizedWidths)).sorted() {
                do {
                    _ = try entry.settings.makeNormalizer(channelCount: width)
                } catch {
                    throw fail("normalizers[\(index)] (\(entry.label)): \(error)")
                }
            }
            for model in models {
                for placement in placements {
                    do {
                        try model.validate(normalizer: entry.settings, placement: placement)
                    } catch {
                        throw fail("\(model.name) with normalizers[\(index)] (\(entry.label)): \(error)")
                    }
                }
            }
            for setting in entry.settings.kind.registration.settings {
                guard let value = entry.settings[setting.key] else { continue }
                do {
                    try setting.check(value)
                } catch {
                    throw fail("normalizers[\(index)].\(error)")
                }
            }
        }
        for file in [outputs.jsonl, outputs.markdown, outputs.csv, outputs.svg] where file.isEmpty || file.contains("/") {
            throw fail("output names must be plain file names, got \"\(file)\"")
        }
    }

    /// Every run of the grid, seeds outermost so that a partial sweep already covers every cell
    /// once.
    public func runs(trainSize actualTrainSize: Int) -> [RunSpec] {
        var runs: [RunSpec] = []
        for seed in seeds {
            for batchSize in batchSizes {
                for model in models {
                    for (initScale, classesPerBatch) in initScales.flatMap({ scale in self.classesPerBatch.map { (scale, $0) } }) {
                        for base in baseLearningRates {
                            for placement in placements {
                                for entry in normalizers {
                                    var model = model
                                    model.weightStandardization = entry.weightStandardization
                                    model.initScale = initScale
                                    runs.append(RunSpec(
                                        experiment: name, model: model, label: entry.label, normalizer: entry.settings,
                                        placement: placement, batchSize: batchSize, epochs: epochs, baseLearningRate: base,
                                        learningRate: learningRate(base: base, batchSize: batchSize),
                                        learningRateScaling: learningRateScaling, weightDecay: weightDecay,
                                        sgdMomentum: sgdMomentum, seed: seed, data: data, trainSize: actualTrainSize,
                                        testSize: testSize, classesPerBatch: classesPerBatch, recordings: recordings))
                                }
                            }
                        }
                    }
                }
            }
        }
        return runs
    }
}

/// An experiment file that cannot be run.
public enum ExperimentError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case results(String)

    public var description: String {
        switch self {
        case .invalid(let message), .results(let message): return message
        }
    }
}

/// The file's JSON form, decoded strictly; turned into an `Experiment` by `experiment()`.
private struct ExperimentFile: Decodable {
    struct LearningRate: Decodable {
        var base: OneOrMany<Float>
        var scaling: String?
        var referenceBatchSize: Int?
        var schedule: String?

        enum CodingKeys: String, CodingKey {
            case base, scaling, referenceBatchSize = "reference_batch_size", schedule
        }

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(["base", "scaling", "reference_batch_size", "schedule"], context: "\"learning_rate\"")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            base = try container.decode(OneOrMany<Float>.self, forKey: .base)
            scaling = try container.decodeIfPresent(String.self, forKey: .scaling)
            referenceBatchSize = try container.decodeIfPresent(Int.self, forKey: .referenceBatchSize)
            schedule = try container.decodeIfPresent(String.self, forKey: .schedule)
        }
    }

    /// A normalizer entry: `kind`, `label`, `eps` where the kind has ε, and the kind's own
    /// settings (`NormalizerRegistration.settings`).
    struct Normalizer: Decodable {
        var label: String?
        var settings: NormalizerSettings
        var weightStandardization: Bool?

        enum CodingKeys: String, CodingKey {
            case kind, label, eps, weightStandardization = "weight_standardization"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let kind = try container.decode(NormalizerKind.self, forKey: .kind)
            let registration = kind.registration
            let keys = registration.settings(in: .experiment).map(\.key)
            try decoder.rejectUnknownKeys(
                Set(keys + ["kind", "label", "weight_standardization"] + (registration.defaultEpsilon == nil ? [] : ["eps"])),
                context: "a \"\(kind.rawValue)\" normalizer")
            label = try container.decodeIfPresent(String.self, forKey: .label)
            weightStandardization = try container.decodeIfPresent(Bool.self, forKey: .weightStandardization)
            settings = NormalizerSettings(kind: kind)
            if let eps = try container.decodeIfPresent(Float.self, forKey: .eps) { settings.epsilon = eps }
            let values = try decoder.container(keyedBy: AnyKey.self)
            for setting in registration.settings(in: .experiment) {
                do {
                    if let value = try setting.decodeIfPresent(from: values, key: setting.key) { try settings.set(setting.key, value) }
                } catch let error as NormalizerError {
                    throw ExperimentError.invalid("\(pathDescription(decoder.codingPath)).\(error)")
                }
            }
        }
    }

    struct Outputs: Decodable {
        var jsonl: String?, markdown: String?, csv: String?, svg: String?

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(["jsonl", "markdown", "csv", "svg"], context: "\"outputs\"")
            let container = try decoder.container(keyedBy: AnyKey.self)
            func name(_ key: String) throws -> String? {
                try container.decodeIfPresent(String.self, forKey: AnyKey(stringValue: key))
            }
            jsonl = try name("jsonl")
            markdown = try name("markdown")
            csv = try name("csv")
            svg = try name("svg")
        }
    }

    var format: String
    var name: String
    var description: String?
    var data: String?
    var trainSize: Int?
    var testSize: Int?
    var model: OneOrMany<String>?
    var zeroInitResidual: Bool?
    var weightStandardization: Bool?
    var epochs: Int
    var learningRate: LearningRate
    var weightDecay: Float?
    var sgdMomentum: Float?
    var placement: OneOrMany<NormalizerPlacement>?
    var normalizers: [Normalizer]
    var batchSizes: [Int]
    var seeds: [UInt64]
    var preciseBN: Experiment.PreciseBNPlan??
    var record: [String]?
    var initScale: OneOrMany<Float>?
    var classesPerBatch: OneOrMany<Int?>?
    var outputs: Outputs?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case format, name, description, data, trainSize = "train_size", testSize = "test_size", model
        case zeroInitResidual = "zero_init_residual", weightStandardization = "weight_standardization", epochs
        case learningRate = "learning_rate", weightDecay = "weight_decay", sgdMomentum = "sgd_momentum"
        case placement, normalizers, batchSizes = "batch_sizes", seeds, preciseBN = "precise_bn", record
        case initScale = "init_scale", classesPerBatch = "classes_per_batch", outputs
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Set(CodingKeys.allCases.map(\.rawValue)), context: "an experiment file")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        format = try container.decode(String.self, forKey: .format)
        guard format == Experiment.format else {
            throw ExperimentError.invalid("\"format\" is \"\(format)\"; this version of normlab reads \"\(Experiment.format)\"")
        }
        name = try container.decode(String.self, forKey: .name)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        data = try container.decodeIfPresent(String.self, forKey: .data)
        trainSize = try container.decodeIfPresent(Int.self, forKey: .trainSize)
        testSize = try container.decodeIfPresent(Int.self, forKey: .testSize)
        model = try container.decodeIfPresent(OneOrMany<String>.self, forKey: .model)
        zeroInitResidual = try container.decodeIfPresent(Bool.self, forKey: .zeroInitResidual)
        weightStandardization = try container.decodeIfPresent(Bool.self, forKey: .weightStandardization)
        epochs = try container.decode(Int.self, forKey: .epochs)
        learningRate = try container.decode(LearningRate.self, forKey: .learningRate)
        weightDecay = try container.decodeIfPresent(Float.self, forKey: .weightDecay)
        sgdMomentum = try container.decodeIfPresent(Float.self, forKey: .sgdMomentum)
        placement = try container.decodeIfPresent(OneOrMany<NormalizerPlacement>.self, forKey: .placement)
        normalizers = try container.decode([Normalizer].self, forKey: .normalizers)
        batchSizes = try container.decode([Int].self, forKey: .batchSizes)
        seeds = try container.decode([UInt64].self, forKey: .seeds)
        if container.contains(.preciseBN) {
            if (try? container.decodeNil(forKey: .preciseBN)) == true || (try? container.decode(Bool.self, forKey: .preciseBN)) == false {
                preciseBN = .some(nil)
            } else {
                preciseBN = .some(try container.decode(PreciseBNFile.self, forKey: .preciseBN).plan)
            }
        }
        record = try container.decodeIfPresent([String].self, forKey: .record)
        initScale = try container.decodeIfPresent(OneOrMany<Float>.self, forKey: .initScale)
        classesPerBatch = try container.decodeIfPresent(OneOrMany<Int?>.self, forKey: .classesPerBatch)
        outputs = try container.decodeIfPresent(Outputs.self, forKey: .outputs)
    }

    struct PreciseBNFile: Decodable {
        var plan: Experiment.PreciseBNPlan
        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(["images", "batch_size"], context: "\"precise_bn\"")
            plan = try Experiment.PreciseBNPlan(from: decoder)
        }
    }

    func experiment() throws -> Experiment {
        let models = try (model?.values ?? [ModelSettings.smallCNN.name]).map { name in
            do {
                return try ModelSettings(name: name, zeroInitResidual: zeroInitResidual ?? false)
            } catch {
                throw ExperimentError.invalid("\"model\": \(error)")
            }
        }
        if zeroInitResidual == true, let plain = models.first(where: { !$0.hasShortcuts }) {
            throw ExperimentError.invalid("\"zero_init_residual\" starts each residual branch at zero, but \(plain.name) has no residual blocks")
        }
        if let schedule = learningRate.schedule, schedule != "cosine" {
            throw ExperimentError.invalid("\"learning_rate.schedule\" is \"\(schedule)\"; the lab has \"cosine\"")
        }
        let recordings: Set<Recording>
        do {
            recordings = try Recording.parse((record ?? []).joined(separator: ","))
        } catch {
            throw ExperimentError.invalid("\"record\": \(error)")
        }
        let entries = normalizers.map { entry in
            // An entry's own "weight_standardization" overrides the file's.
            let standardizes = entry.weightStandardization ?? weightStandardization ?? false
            return Experiment.NormalizerEntry(
                label: entry.label ?? entry.settings.kind.rawValue + (standardizes ? "+ws" : ""), settings: entry.settings,
                weightStandardization: standardizes)
        }
        return Experiment(
            name: name, description: description ?? "", models: models, data: data ?? "embedded", trainSize: trainSize, testSize: testSize,
            epochs: epochs,
            baseLearningRates: learningRate.base.values, learningRateScaling: learningRate.scaling ?? "linear",
            referenceBatchSize: learningRate.referenceBatchSize ?? 32, weightDecay: weightDecay ?? 5e-4,
            sgdMomentum: sgdMomentum ?? 0.9, placements: placement?.values ?? [.before], normalizers: entries,
            batchSizes: batchSizes, seeds: seeds,
            preciseBN: preciseBN ?? Experiment.PreciseBNPlan(images: 2000, batchSize: 200),
            initScales: initScale?.values ?? [1], classesPerBatch: classesPerBatch?.values ?? [nil], recordings: recordings,
            outputs: Experiment.Outputs(
                jsonl: outputs?.jsonl ?? "\(name).jsonl", markdown: outputs?.markdown ?? "\(name).md",
                csv: outputs?.csv ?? "\(name).csv", svg: outputs?.svg ?? "\(name).svg"))
    }
}
