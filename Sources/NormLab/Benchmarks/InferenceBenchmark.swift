/// `normlab bench inference`: images per second of inference-mode forward passes, for each
/// model, normalizer and batch size, and for those that fold (batch norm, batch renorm, ghost
/// batch norm) also with the normalizer folded into the convolutions (`BatchNormFolding`).
///
/// Each normalizer is timed beside the same model without normalization, in one sitting: in
/// rounds that each time one block of every variant, in the opposite order to the round before
/// (A B C, C B A, …), so that a machine that speeds up or slows down touches them alike. A
/// variant's rate is its median block; its cost is the median over rounds of its rate divided
/// by that round's rate without normalization. Only one normalizer's networks are in memory
/// at a time.
public enum InferenceBenchmark {
    public struct Variant: Hashable, Sendable {
        public var model: String
        public var normalizer: NormalizerKind
        public var folded: Bool
        public var batchSize: Int

        public init(model: String, normalizer: NormalizerKind, folded: Bool, batchSize: Int) {
            (self.model, self.normalizer, self.folded, self.batchSize) = (model, normalizer, folded, batchSize)
        }
    }

    public struct Measurement: Sendable {
        public var variant: Variant
        public var imagesPerSecond: Double
        /// The median over rounds of the rate divided by the same round's rate without
        /// normalization (1 for no normalization itself).
        public var relativeToNone: Double
        /// The smallest and largest of those per-round ratios.
        public var relativeRange: ClosedRange<Double>
    }

    public static let defaultBatchSizes = [1, 256]
    public static let defaultModels = ["smallcnn", "resnet-8"]

    /// The normalizers a page compares: every registered one whose inference differs (noisy
    /// batch norm's is batch norm's).
    public static var defaultKinds: [NormalizerKind] { NormalizerRegistry.kinds.filter { !$0.registration.drawsNoise } }

    /// - Parameter imagesPerBlock: the images each timed block runs through the network, in
    ///   batches of the variant's size.
    /// - Parameter report: called with each normalizer's measurements as they are made (no
    ///   normalization's own at the end, its rate the median of all its blocks).
    public static func run(
        data: Dataset, models: [ModelSettings], kinds: [NormalizerKind], batchSizes: [Int],
        rounds: Int = 9, imagesPerBlock: Int = 512, report: (Measurement) -> Void
    ) throws {
        let clock = ContinuousClock()
        func network(_ model: ModelSettings, _ kind: NormalizerKind) throws -> Network {
            let settings = try NormalizerSettings(kind: kind, kind.registration.benchmark?.settings ?? [:])
            guard let network = try model.make(normalizer: settings, image: data.imageShape, classes: data.classes, seed: 0) as? Network else {
                throw ModelError.unsupported("\(model.name) is not a network of layers")
            }
            return network
        }
        for model in models {
            for batchSize in batchSizes {
                var images = Tensor(shape: [0])
                data.batch(0..<min(batchSize, data.count), into: &images)
                let passes = max(1, imagesPerBlock / images.shape[0])
                func rate(_ network: Network) throws -> Double {
                    let start = clock.now
                    for _ in 0..<passes { try network.forward(images, mode: .inference) }
                    return Double(passes * images.shape[0]) / (clock.now - start).inSeconds
                }
                let none = try network(model, .none)
                var noneRates: [Double] = []
                for kind in kinds where kind != .none {
                    let unfolded = try network(model, kind)
                    var networks = [none, unfolded]
                    if unfolded.normalizers.contains(where: BatchNormFolding.folds) { networks.append(try BatchNormFolding.fold(unfolded)) }
                    var rates = [[Double]](repeating: [], count: networks.count)
                    // Round 0 warms the caches and pages up; it is not kept.
                    for round in 0...rounds {
                        let order = round % 2 == 0 ? Array(networks.indices) : networks.indices.reversed()
                        var measured = [Double](repeating: 0, count: networks.count)
                        for index in order { measured[index] = try rate(networks[index]) }
                        if round > 0 { for index in networks.indices { rates[index].append(measured[index]) } }
                    }
                    noneRates += rates[0]
                    for index in networks.indices.dropFirst() {
                        let ratios = zip(rates[index], rates[0]).map { $0 / $1 }.sorted()
                        report(Measurement(
                            variant: Variant(model: model.name, normalizer: kind, folded: index == 2, batchSize: batchSize),
                            imagesPerSecond: median(rates[index]), relativeToNone: median(ratios),
                            relativeRange: ratios.first!...ratios.last!))
                    }
                }
                if kinds.contains(.none) {
                    if noneRates.isEmpty { for _ in 0...rounds { noneRates.append(try rate(none)) } }
                    report(Measurement(
                        variant: Variant(model: model.name, normalizer: .none, folded: false, batchSize: batchSize),
                        imagesPerSecond: median(noneRates),
                        relativeToNone: 1, relativeRange: 1...1))
                }
            }
        }
    }

    private static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
