import XCTest
@testable import NormLab

/// Networks composed of layers: the bits the committed results were made with, the same bits on
/// any thread count, in lanes or whole batches, and with a normalizer that implements only the
/// plain `Normalizer` protocol.
final class NetworkTests: XCTestCase {
    private static let data = try! FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 400).train

    /// Trains `model` for `steps` SGD steps on the embedded images and returns every trainable
    /// value's bits, and the losses'.
    private func train(_ model: any Model, batchSize: Int, steps: Int) throws -> [UInt32] {
        let optimizer = SGD(learningRate: 0.05)
        var images = Tensor(shape: [0])
        var bits: [UInt32] = []
        for step in 0..<steps {
            let batch = (step * batchSize)..<((step + 1) * batchSize)
            Self.data.batch(batch, into: &images)
            let loss = try Trainer.step(model, optimizer, images: images, labels: Array(Self.data.labels[batch]))
            bits.append(Float(loss).bitPattern)
        }
        model.visitParameters { value, _, _ in bits += value.map(\.bitPattern) }
        for case let normalizer as any StatefulNormalizer in model.normalizers {
            bits += normalizer.state.sorted { $0.key < $1.key }.flatMap(\.value).map(\.bitPattern)
        }
        return bits
    }

    /// What three steps of `smallcnn` leave (the losses, every trainable value and the running
    /// statistics, hashed with FNV-1a), as the network that made the committed results left it
    /// (the SmallCNN class of 646b172, batch 40, two threads): the network's construction,
    /// steps in pieces and lanes, and lanes that meet must keep every bit of it, on any number
    /// of threads.
    func testSmallCNNTrainsToTheBitsOfTheNetworkThatMadeTheResults() throws {
        let expected: [String: UInt64] = [
            "none before": 0x8ae3_9595_fffb_b36f, "none after": 0x8ae3_9595_fffb_b36f,
            "batch before": 0x333a_5fb5_2863_1e5d, "batch after": 0xc2e3_2f4f_d5e5_8381,
            "layer before": 0xb721_d7be_cbe1_91d2, "layer after": 0xaecf_df0e_e1ce_5f67,
            "instance before": 0x0759_eb91_ee34_4685, "instance after": 0x2105_e7fe_1cd2_aede,
            "group before": 0x4027_cd2f_bf6b_986f, "group after": 0xc15c_317c_21c8_e9b2,
            "batchrenorm before": 0xf33d_873b_ef54_e83e, "batchrenorm after": 0xe4be_0646_be7f_7a0d,
        ]
        // The kinds the committed results were made with.
        for kind in builtInKinds where expected["\(kind.rawValue) before"] != nil {
            for placement in NormalizerPlacement.allCases {
                let name = "\(kind.rawValue) \(placement.rawValue)"
                for threads in [1, 2, 3] {
                    let bits = try withExecution(threads: threads) {
                        try train(
                            try SmallCNN.make(normalizer: settings(kind, rmax: 1.5, dmax: 0.5), placement: placement, seed: 4),
                            batchSize: 40, steps: 3)
                    }
                    let hash = bits.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
                    XCTAssertEqual(hash, expected[name], "\(name), \(threads) threads")
                }
            }
        }
    }

    func testResNetAndPlainNetsGiveTheSameBitsOnOneTwoAndThreeThreadsAndInWholeBatches() throws {
        // Batch 24: pieces of 16 and 8, each shared out between the lanes, where every
        // normalizer is per sample; with batch norm and batch renorm (r and d unclipped enough
        // to matter), the whole batch in lanes that meet, on two threads or more.
        for name in ["resnet-8", "plain-8"] {
            for (kind, zeroInit) in [(NormalizerKind.batch, false), (.batchrenorm, false), (.group, false), (.instance, false), (.none, true)] {
                var model = try ModelSettings(name: name)
                model.zeroInitResidual = zeroInit && model.hasShortcuts
                func run(threads: Int, splits: Bool = true) throws -> [UInt32] {
                    try withExecution(threads: threads, splitsBatches: splits) {
                        let network = try model.make(
                            normalizer: settings(kind, rmax: 1.5, dmax: 0.5), image: Self.data.imageShape, classes: 10,
                            seed: 2) as! Network
                        let bits = try train(network, batchSize: 24, steps: 3)
                        XCTAssertEqual(network.engine.ranInLanes, splits && (![.batch, .batchrenorm].contains(kind) || threads > 1), "\(name) \(kind), \(threads) threads")
                        return bits
                    }
                }
                let whole = try run(threads: 2, splits: false)
                for threads in [1, 2, 3] {
                    XCTAssertEqual(try run(threads: threads), whole, "\(name) \(kind): \(threads) threads against whole batches")
                }
            }
        }
    }

    /// Group norm behind the plain protocol only: no fused ReLU, no released input, no pieces or
    /// lanes.
    final class PlainGroupNorm: Normalizer {
        private let inner: GroupNorm
        init(channelCount: Int) throws { inner = try GroupNorm(channelCount: channelCount, groupCount: min(8, channelCount)) }
        var kind: NormalizerKind { .group }
        var channelCount: Int { inner.channelCount }
        var parameters: [Parameter] { inner.parameters }
        func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor) throws {
            try inner.forward(input, mode: mode, into: &output, rectifying: false)
        }
        func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
            try inner.backward(gradOutput, into: &gradInput)
        }
    }

    /// A layer that fails in every lane but the first, after the lanes have met once.
    private final class FailsInLaterLanes: LaneLayer {
        struct Failure: Error {}
        private let context: LaneContext?
        init(context: LaneContext? = nil) { self.context = context }
        func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
            if let context, context.share.first > 0 { throw Failure() }
            return input
        }
        func backward(_ outputGradient: Tensor) throws -> Tensor { outputGradient }
        func outputShape(for shape: [Int]) throws -> [Int] { shape }
        func makeLane(_ context: LaneContext) throws -> (any Layer)? { FailsInLaterLanes(context: context) }
        func prepare(_ lane: any Layer) {}
        func inputGradient(_ outputGradient: Tensor) throws -> Tensor { outputGradient }
        func addParameterGradients(from lane: any Layer, piece: SamplePiece) {}
    }

    func testALaneThatFailsReleasesTheLanesWaitingForItAndItsErrorIsThrown() throws {
        // Batch norm, the failing layer, batch norm again: the first lane waits at the second
        // normalizer for a lane that will not come.
        var generator = SeededGenerator(seed: 1)
        let batchNorm = NormalizerSettings(kind: .batch)
        let network = Network([
            Conv2D(inputChannels: 1, outputChannels: 4, geometry: ConvolutionGeometry(kernel: 3, stride: 1, padding: 1), bias: false,
                   generator: &generator),
            NormalizerLayer(try batchNorm.makeNormalizer(channelCount: 4)), FailsInLaterLanes(),
            NormalizerLayer(try batchNorm.makeNormalizer(channelCount: 4)), ReLU(), GlobalAveragePool(),
            Linear(inputCount: 4, outputCount: 10, generator: &generator),
        ])
        var images = Tensor(shape: [0])
        Self.data.batch(0..<8, into: &images)
        try withExecution(threads: 2) {
            // Only a lane fails: the error says the step ran in lanes, and returned.
            XCTAssertThrowsError(try network.trainingGradients(images: images, labels: Self.data.labels[0..<8])) { error in
                XCTAssertTrue(error is FailsInLaterLanes.Failure, "\(error)")
            }
        }
        // One thread: no lanes, no failure.
        try withExecution(threads: 1) {
            XCTAssertNoThrow(try network.trainingGradients(images: images, labels: Self.data.labels[0..<8]))
        }
    }

    func testANormalizerWithOnlyThePlainProtocolTrainsEveryModelToTheSameNumbers() throws {
        let settings = NormalizerSettings(kind: .group)
        for name in ["smallcnn", "resnet-8", "plain-8"] {
            let model = try ModelSettings(name: name)
            try withExecution(threads: 2) {
                func make(_ plain: Bool) throws -> any Model {
                    try model.make(
                        normalizer: settings, image: Self.data.imageShape, classes: 10, seed: 6,
                        makeNormalizer: plain ? { try PlainGroupNorm(channelCount: $0) } : nil)
                }
                let plain = try make(true)
                XCTAssertTrue(plain.normalizers.allSatisfy { $0 is PlainGroupNorm }, name)
                XCTAssertEqual(try train(plain, batchSize: 40, steps: 2), try train(try make(false), batchSize: 40, steps: 2), name)
            }
        }
    }

    func testResNetShapeAndParameterCount() throws {
        // CIFAR ResNet-20 with 1×1 projections and batch norm: 272,474 parameters, as
        // `tools/pytorch_reference.py`'s `res_net("batch", 20, True, 3, 10)` counts them.
        let model = try ModelSettings(name: "resnet-20").make(
            normalizer: NormalizerSettings(kind: .batch), image: CIFAR10.imageShape, classes: 10, seed: 0)
        var count = 0
        model.visitParameters { value, _, _ in count += value.count }
        XCTAssertEqual(count, 272_474)
        let network = try XCTUnwrap(model as? Network)
        XCTAssertEqual(try network.body.outputShape(for: [2, 3, 32, 32]), [2, 10])
        XCTAssertEqual(model.normalizers.count, 1 + 2 * 9 + 2)
        // With no normalizer: a bias on every convolution, no norm slots, and SkipInit's scalars.
        var skipInit = try ModelSettings(name: "resnet-8")
        skipInit.zeroInitResidual = true
        let unnormalized = try skipInit.make(normalizer: NormalizerSettings(kind: .none), image: CIFAR10.imageShape, classes: 10, seed: 0)
        let scales = (unnormalized as! Network).body.allLayers.compactMap { $0 as? Scale }
        XCTAssertEqual(scales.count, 3)
        XCTAssertTrue(scales.allSatisfy { $0.scale.value == [0] })
        XCTAssertTrue(unnormalized.normalizers.isEmpty)
        // zero_init_residual with batch norm: each block's last gamma starts at 0.
        let zeroed = try skipInit.make(normalizer: NormalizerSettings(kind: .batch), image: CIFAR10.imageShape, classes: 10, seed: 0)
        XCTAssertEqual(zeroed.normalizers.filter { $0.affine.gamma.allSatisfy { $0 == 0 } }.count, 3)
    }

    func testModelsThatMakeNoSenseAreClearErrors() throws {
        func rejected(_ name: String, _ normalizer: NormalizerSettings = NormalizerSettings(kind: .batch),
                      placement: NormalizerPlacement = .before, image: ImageShape = CIFAR10.imageShape, zero: Bool = false,
                      mentioning text: String, line: UInt = #line) {
            XCTAssertThrowsError(try ModelSettings(name: name, zeroInitResidual: zero).make(
                normalizer: normalizer, placement: placement, image: image, classes: 10, seed: 0), line: line) {
                XCTAssertTrue("\($0)".contains(text), "\($0)", line: line)
            }
        }
        rejected("resnet-10", mentioning: "6n + 2")
        rejected("vgg-16", mentioning: "unknown model")
        rejected("resnet-8", placement: .after, mentioning: "does not fit")
        rejected("plain-8", zero: true, mentioning: "no residual blocks")
        rejected("resnet-8", settings(.group, groups: 3), mentioning: "cannot be split into 3 groups")
        rejected("smallcnn", image: ImageShape(channels: 1, height: 30, width: 30), mentioning: "multiples of 4")
        XCTAssertNoThrow(try ModelSettings(name: "plain-14").make(
            normalizer: NormalizerSettings(kind: .group), placement: .after, image: CIFAR10.imageShape, classes: 10, seed: 0))
    }
}
