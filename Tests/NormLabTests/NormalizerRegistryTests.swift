import Foundation
import XCTest
@testable import NormLab

/// The registry is open: a normalizer defined here, with only the plain `Normalizer` protocol
/// and a setting of its own, is registered, named in an experiment file, trained in every model,
/// recorded, resumed and reported like the lab's own.
final class NormalizerRegistryTests: XCTestCase {
    /// Mean centring per sample (over C, H, W), with a strength setting:
    /// `y = gamma · (x - strength · mean) + beta`. Not a method anyone uses: a normalizer the lab
    /// has never seen, with the plain protocol only.
    final class Centring: Normalizer {
        static let kind = NormalizerKind(registering: "test-centring")
        static let registration = NormalizerRegistration(
            kind: kind, displayName: "centring", summary: "per sample, the mean removed",
            settings: [
                NormalizerSetting(
                    "strength", recordKey: "centring_strength", default: Float(1), help: "how much of the mean is removed",
                    places: [.experiment, .record, .commandLine],
                    problem: { (0...1).contains($0) ? nil : "strength must lie in [0, 1], got \($0)" },
                    describe: { $0.map { "strength \(Statistics.format(Double($0)))" } }),
            ]
        ) { settings, channels in
            Centring(channelCount: channels, strength: settings.value("strength") ?? 1)
        }

        /// Registers it once for the whole test run.
        static let registered: Void = { try! NormalizerRegistry.register(registration) }()

        var kind: NormalizerKind { Self.kind }
        let channelCount: Int
        let strength: Float
        let gamma: Parameter, beta: Parameter
        var parameters: [Parameter] { [gamma, beta] }
        private var centred: Tensor?

        init(channelCount: Int, strength: Float) {
            self.channelCount = channelCount
            self.strength = strength
            gamma = Parameter("gamma", repeating: 1, count: channelCount, decays: false)
            beta = Parameter("beta", repeating: 0, count: channelCount, decays: false)
        }

        func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor) throws {
            let (n, c) = (input.shape[0], input.shape[1])
            let size = input.count / n, spatial = size / c
            var centred = input
            output.reshape(to: input.shape)
            for sample in 0..<n {
                let range = sample * size..<(sample + 1) * size
                let mean = input.scalars[range].reduce(0, +) / Float(size)
                for i in range {
                    centred.scalars[i] = input.scalars[i] - strength * mean
                    let channel = (i - sample * size) / spatial
                    output.scalars[i] = gamma.value[channel] * centred.scalars[i] + beta.value[channel]
                }
            }
            self.centred = centred
        }

        func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
            guard let centred else { throw NormalizerError.backwardWithoutForward }
            self.centred = nil
            let (n, c) = (gradOutput.shape[0], gradOutput.shape[1])
            let size = gradOutput.count / n, spatial = size / c
            var gammaGradient = [Float](repeating: 0, count: c), betaGradient = gammaGradient
            gradInput.reshape(to: gradOutput.shape)
            for sample in 0..<n {
                let range = sample * size..<(sample + 1) * size
                var meanOfScaled: Float = 0
                for i in range {
                    let channel = (i - sample * size) / spatial
                    gammaGradient[channel] += gradOutput.scalars[i] * centred.scalars[i]
                    betaGradient[channel] += gradOutput.scalars[i]
                    meanOfScaled += gamma.value[channel] * gradOutput.scalars[i]
                }
                meanOfScaled /= Float(size)
                for i in range {
                    let channel = (i - sample * size) / spatial
                    gradInput.scalars[i] = gamma.value[channel] * gradOutput.scalars[i] - strength * meanOfScaled
                }
            }
            gamma.gradient = gammaGradient
            beta.gradient = betaGradient
        }
    }

    private var directory: URL!

    override func setUpWithError() throws {
        Centring.registered
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("normlab-registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testANameIsRegisteredOnce() throws {
        XCTAssertEqual(NormalizerKind(rawValue: "test-centring"), Centring.kind)
        XCTAssertNil(NormalizerKind(rawValue: "no-such-normalizer"))
        XCTAssertThrowsError(try NormalizerRegistry.register(Centring.registration)) {
            XCTAssertEqual($0 as? NormalizerError, .alreadyRegistered("test-centring"))
        }
        XCTAssertThrowsError(try NormalizerRegistry.register(BatchNorm.registration))
    }

    private func experiment(_ normalizer: String, models: String = #"["smallcnn", "resnet-8", "plain-8"]"#) throws -> String {
        let path = directory.appendingPathComponent("centring.json").path
        try """
            {"format": "normlab-experiment/1", "name": "centring", "train_size": 64, "test_size": 100, "epochs": 1,
             "model": \(models), "learning_rate": {"base": 0.05},
             "normalizers": [\(normalizer), {"kind": "none"}], "batch_sizes": [8], "seeds": [0]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testARegisteredNormalizerIsNamedInAnExperimentTrainedInEveryModelRecordedAndReported() throws {
        let path = try experiment(#"{"kind": "test-centring", "strength": 0.5}"#)
        let loaded = try Experiment.load(from: path)
        XCTAssertEqual(loaded.normalizers[0].settings.value("strength"), Float(0.5))
        let out = directory.appendingPathComponent("out").path
        let summary = try Sweep.run(loaded, outputDirectory: out, commit: "test", progress: { _ in })
        XCTAssertEqual(summary.ran, 6)
        let records = try ResultsLog(path: summary.resultsPath).records
        let centring = records.filter { $0.spec.normalizer == Centring.kind }
        XCTAssertEqual(Set(centring.map(\.spec.model)), ["smallcnn", "resnet-8", "plain-8"])
        XCTAssertTrue(centring.allSatisfy { $0.result.testAccuracy != nil && $0.result.preciseBNAccuracy == nil })
        // Its setting is recorded under its record key, and tells runs apart when resuming.
        let text = try String(contentsOfFile: summary.resultsPath, encoding: .utf8)
        XCTAssertTrue(text.contains(#""centring_strength":0.5"#), text)
        XCTAssertEqual(try Sweep.run(loaded, outputDirectory: out, commit: "test", progress: { _ in }).ran, 0)
        let stronger = try Experiment.load(from: try experiment(#"{"kind": "test-centring", "strength": 1}"#))
        XCTAssertThrowsError(try Sweep.run(stronger, outputDirectory: out, commit: "test", progress: { _ in })) {
            XCTAssertTrue("\($0)".contains("not in this experiment's grid"), "\($0)")
        }
        // The page names it and states its setting.
        let table = ResultTable(records: records)
        let page = MarkdownReport.render(table, chartFile: "c.svg", csvFile: "c.csv", experimentFile: path, resultsFile: summary.resultsPath)
        XCTAssertTrue(CSVReport.render(table).contains("test-centring"))
        XCTAssertTrue(SVGChart.render(table, title: "centring").contains("centring"))
        XCTAssertTrue(page.contains("centring"), page)
        XCTAssertTrue(page.contains("test-centring: ε 0.00001, strength 0.5"), page)
    }

    func testItsSettingsAreCheckedLikeTheLabsOwn() throws {
        XCTAssertThrowsError(try Experiment.load(from: try experiment(#"{"kind": "test-centring", "strenght": 0.5}"#))) {
            XCTAssertTrue("\($0)".contains("unknown key \"strenght\""), "\($0)")
        }
        XCTAssertThrowsError(try Experiment.load(from: try experiment(#"{"kind": "test-centring", "strength": 2}"#))) {
            XCTAssertTrue("\($0)".contains("strength must lie in [0, 1]"), "\($0)")
        }
        XCTAssertThrowsError(try Experiment.load(from: try experiment(#"{"kind": "test-centring", "groups": 2}"#)))
        var settings = NormalizerSettings(kind: Centring.kind)
        XCTAssertThrowsError(try settings.set("groups", 2))
        XCTAssertThrowsError(try settings.set("strength", 2))  // an Int where a Float belongs
    }

    /// The whole network's parameter gradients, from the engine (pieces of 16 and lanes, on 1,
    /// 2 and 3 threads), against central differences of the loss: the plain protocol is enough
    /// for correct gradients with a batch larger than a piece.
    func testAPlainProtocolNormalizerTrainsToCorrectGradientsOnAnyThreadCount() throws {
        let images = randomTensor([20, 1, 8, 8], seed: 3)
        let labels = (0..<20).map { UInt8($0 * 3 % 10) }
        let settings = try NormalizerSettings(kind: Centring.kind, ["strength": Float(0.75)])
        for threads in [1, 2, 3] {
            let model = try SmallCNN.make(normalizer: settings, seed: 5)
            _ = try withExecution(threads: threads) { try model.trainingGradients(images: images, labels: labels[...]) }
            var analytic: [[Float]] = []
            model.visitParameters { _, gradient, _ in analytic.append(gradient) }
            func loss() throws -> Double {
                try model.forward(images, mode: .training)
                var gradient = Tensor(shape: [0])
                return SoftmaxCrossEntropy.evaluate(logits: model.logits, labels: labels[...], gradient: &gradient).loss
            }
            var checked = 0, mismatches: [String] = []
            for array in analytic.indices {
                for index in stride(from: 0, to: analytic[array].count, by: max(1, analytic[array].count / 4)) {
                    func offset(_ delta: Float) {
                        var position = 0
                        model.visitParameters { value, _, _ in
                            if position == array { value[index] += delta }
                            position += 1
                        }
                    }
                    let step: Float = 1e-3
                    offset(step)
                    let plus = try loss()
                    offset(-2 * step)
                    let minus = try loss()
                    offset(step)
                    let numeric = (plus - minus) / Double(2 * step)
                    checked += 1
                    if abs(Double(analytic[array][index]) - numeric) > 2e-3 + 3e-2 * abs(numeric) {
                        mismatches.append("array \(array)[\(index)]: \(analytic[array][index]) against \(numeric)")
                    }
                }
            }
            // Kinks of ReLU and max pooling can spoil a rare difference quotient.
            XCTAssertLessThanOrEqual(mismatches.count, checked / 20, "\(threads) threads: \(mismatches)")
        }
    }
}
