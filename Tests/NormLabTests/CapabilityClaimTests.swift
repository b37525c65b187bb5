import XCTest
@testable import NormLab

/// What a normalizer's optional capabilities claim is checked, not trusted: the fused ReLU gives
/// the ReLU's bits, and a batch-statistics normalizer's own math is what runs when the engine
/// splits a batch between threads. (`SmallCNNTests` holds every registered normalizer's split
/// training steps to its whole-batch bits.)
final class CapabilityClaimTests: XCTestCase {
    /// Batch norm whose training output uses half of gamma, y = (γ/2)·x̂ + β, with a running
    /// average of the biased variance. Not a method anyone uses: a batch-statistics normalizer
    /// the lab has never seen, which declares only its math.
    final class HalfScaleBatchNorm: BatchStatisticsNormalizer {
        static let kind = NormalizerKind(registering: "test-half-scale-batch")
        static let registration = NormalizerRegistration(
            kind: kind, displayName: "half-scale batch norm", summary: "as batch norm, gamma halved in training"
        ) { settings, channels in
            try HalfScaleBatchNorm(channelCount: channels, epsilon: settings.epsilon)
        }

        /// Registers it once for the whole test run.
        static let registered: Void = { try! NormalizerRegistry.register(registration) }()

        var kind: NormalizerKind { Self.kind }
        let channelCount: Int
        let epsilon: Float
        let gamma: Parameter, beta: Parameter
        let parameters: [Parameter]
        var running: RunningStatistics
        var saved = ChannelNormalizationPass()

        init(channelCount: Int, epsilon: Float) throws {
            (gamma, beta, running) = try Self.start(
                channelCount: channelCount, epsilon: epsilon, momentum: 0.1, spreadKey: "running_var", spreadName: "running variance")
            (self.channelCount, self.epsilon, parameters) = (channelCount, epsilon, [gamma, beta])
        }

        func withTrainingCoefficients<Result>(
            valuesPerChannel: Int,
            _ body: (_ coefficients: (_ channel: Int, _ mean: Float, _ variance: Float) -> (scale: Float, shift: Float)) -> Result
        ) -> Result {
            let (gamma, beta) = (gamma.value, beta.value)
            return running.withUnsafeMutableBuffers { runningMean, runningVariance in
                body { c, mean, variance in
                    runningMean[c] += 0.1 * (mean - runningMean[c])
                    runningVariance[c] += 0.1 * (variance - runningVariance[c])
                    return (gamma[c] / 2, beta[c])
                }
            }
        }

        func inferenceStatistics() -> (mean: [Float], invStd: [Float]) {
            (running.mean, running.spread.map { 1 / ($0 + epsilon).squareRoot() })
        }

        func gammaGradient(sumDy: [Float], sumDyNormalized: [Float]) -> [Float] { sumDyNormalized.map { $0 / 2 } }
        func beginPopulationEstimate() {}
        func endPopulationEstimate() {}
    }

    /// Claims to fuse the ReLU, but writes y = x - 1 whatever it is asked.
    final class IgnoresRectifying: RectifyingNormalizer {
        var kind: NormalizerKind { .none }
        let channelCount = 3
        var parameters: [Parameter] { [] }

        func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
            output.reshape(to: input.shape)
            elementwise(input, input, into: &output) { x, _ in x - 1 }
        }

        func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws { gradInput.copyValues(of: gradOutput) }
    }

    override func setUp() {
        HalfScaleBatchNorm.registered
        NormalizerRegistryTests.Centring.registered
    }

    func testEveryRegisteredNormalizerThatFusesTheReLUGivesTheReLUsBits() throws {
        let input = randomTensor([3, 4, 5, 5], seed: 11, mean: 0.2, std: 1.5)
        var checked = 0
        for kind in NormalizerRegistry.kinds {
            for mode in [NormalizationMode.training, .inference] {
                let normalizerSettings = settings(kind, groups: 2, rmax: 1.5, dmax: 0.5)
                guard let fused = try normalizerSettings.makeNormalizer(channelCount: 4) as? any RectifyingNormalizer else { continue }
                let plain = try normalizerSettings.makeNormalizer(channelCount: 4)
                var rectified = Tensor(shape: [0])
                try fused.forward(input, mode: mode, into: &rectified, rectifying: true)
                var expected = try plain.forward(input, mode: mode)
                ReLU.rectify(&expected)
                XCTAssertEqual(rectified.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(kind) \(mode)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
        // Every built-in normalizer that a ReLU follows fuses it.
        for registration in NormalizerRegistry.builtIn where registration.fillsSlots && !registration.replacesReLU {
            XCTAssertTrue(try registration.make(NormalizerSettings(kind: registration.kind), 4) is any RectifyingNormalizer, "\(registration.kind)")
        }
    }

    func testANormalizerThatClaimsToFuseTheReLUAndDoesNotIsAClearError() throws {
        let network = Sequential([NormalizerLayer(IgnoresRectifying()), ReLU()])
        XCTAssertThrowsError(try network.forward(randomTensor([2, 3, 4, 4], seed: 1), mode: .training)) {
            XCTAssertEqual($0 as? NormalizerError, .ignoresRectifying(.none))
            XCTAssertTrue("\($0)".contains("must honour `rectifying`"), "\($0)")
        }
    }

    /// In lanes that meet (two threads), the half-scale normalizer trains to its own whole-batch
    /// bits, and not to batch norm's: the math that ran at the lanes' meetings was its own.
    func testABatchStatisticsNormalizersOwnMathRunsInLanes() throws {
        let images = randomTensor([12, 1, 28, 28], seed: 4)
        let labels = (0..<12).map { UInt8($0 * 3 % 10) }[...]
        func gradients(_ kind: NormalizerKind, splitting: Bool) throws -> (loss: Double, gradients: [[UInt32]], ranInLanes: Bool) {
            let network = try SmallCNN.make(normalizer: NormalizerSettings(kind: kind), seed: 8)
            let loss = try withExecution(threads: 2, splitsBatches: splitting) {
                try network.trainingGradients(images: images, labels: labels)
            }
            var gradients: [[UInt32]] = []
            network.visitParameters { _, gradient, _ in gradients.append(gradient.map(\.bitPattern)) }
            return (loss, gradients, network.engine.ranInLanes)
        }
        let split = try gradients(HalfScaleBatchNorm.kind, splitting: true)
        let whole = try gradients(HalfScaleBatchNorm.kind, splitting: false)
        let batchNorm = try gradients(.batch, splitting: true)
        XCTAssertTrue(split.ranInLanes)
        XCTAssertFalse(whole.ranInLanes)
        XCTAssertEqual(split.loss.bitPattern, whole.loss.bitPattern)
        XCTAssertEqual(split.gradients, whole.gradients)
        XCTAssertNotEqual(split.loss, batchNorm.loss)
        XCTAssertNotEqual(split.gradients, batchNorm.gradients)
    }
}
