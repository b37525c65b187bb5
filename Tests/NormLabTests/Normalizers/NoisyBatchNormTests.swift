import XCTest
@testable import NormLab

/// Noisy batch norm: batch norm times exp(σ·z₁) plus σ·z₂ per channel in training, redrawn each
/// step from its seed; batch norm exactly at inference, with σ = 0 and while PreciseBN
/// re-estimates; finite differences through the noise.
final class NoisyBatchNormTests: XCTestCase {
    func testFiniteDifferences() throws {
        let checks = NormalizerChecks(kind: .noisybatch)
        try checks.gradientsMatchFiniteDifferences("noisy σ=0.5", shape: [4, 3, 2, 2]) { try! NoisyBatchNorm(channelCount: 3, noise: 0.5) }
        try checks.gradientsMatchFiniteDifferences("noisy σ=1 2-D", shape: [6, 4]) { try! NoisyBatchNorm(channelCount: 4, noise: 1) }
        try checks.gradientsMatchFiniteDifferences("noisy inference", shape: [4, 3, 2, 2], mode: .inference) {
            try! NoisyBatchNorm(channelCount: 3, noise: 0.5)
        }
    }

    func testEachChannelIsBatchNormScaledAndShiftedByFreshNoiseEachStep() throws {
        let x = randomTensor([6, 3, 4, 4], seed: 1, mean: 2, std: 3)
        let noisy = try NoisyBatchNorm(channelCount: 3, noise: 1)
        noisy.seed(42)
        let plain = try BatchNorm(channelCount: 3).forward(x, mode: .training)
        let first = try noisy.forward(x, mode: .training), second = try noisy.forward(x, mode: .training)
        XCTAssertNotEqual(first.scalars, second.scalars, "a new draw each training step")
        for output in [first, second] {
            for channel in 0..<3 {
                let indices = (0..<6).flatMap { sample in (0..<16).map { (sample * 3 + channel) * 16 + $0 } }
                // y' = y·s + t with one s > 0 and t for the whole channel.
                let (a, b) = (indices[0], indices[17])
                let s = (output.scalars[b] - output.scalars[a]) / (plain.scalars[b] - plain.scalars[a])
                let t = output.scalars[a] - s * plain.scalars[a]
                XCTAssertGreaterThan(s, 0)
                for i in indices { XCTAssertEqual(output.scalars[i], plain.scalars[i] * s + t, accuracy: 1e-4 * max(1, abs(output.scalars[i]))) }
            }
        }
        // The same seed draws the same noise; another seed other noise.
        let again = try NoisyBatchNorm(channelCount: 3, noise: 1), other = try NoisyBatchNorm(channelCount: 3, noise: 1)
        again.seed(42)
        other.seed(43)
        XCTAssertEqual(try again.forward(x, mode: .training), first)
        XCTAssertNotEqual(try other.forward(x, mode: .training), first)
    }

    func testBatchNormAtInferenceWithoutNoiseAndWhileReestimating() throws {
        let x = randomTensor([6, 3, 4, 4], seed: 2, mean: -1, std: 2), dy = randomTensor([6, 3, 4, 4], seed: 3)
        let silent = try NoisyBatchNorm(channelCount: 3, noise: 0), batch = try BatchNorm(channelCount: 3)
        XCTAssertEqual(try silent.forward(x, mode: .training), try batch.forward(x, mode: .training))
        XCTAssertEqual(try silent.backward(dy), try batch.backward(dy))
        XCTAssertEqual(silent.parameters.map(\.gradient), batch.parameters.map(\.gradient))

        let noisy = try NoisyBatchNorm(channelCount: 3, noise: 1), reference = try BatchNorm(channelCount: 3)
        _ = try noisy.forward(x, mode: .training)
        _ = try reference.forward(x, mode: .training)
        XCTAssertEqual(noisy.state, reference.state, "the noise comes after the statistics")
        XCTAssertEqual(try noisy.forward(x, mode: .inference), try reference.forward(x, mode: .inference))
        noisy.beginPopulationEstimate()
        reference.beginPopulationEstimate()
        XCTAssertEqual(try noisy.forward(x, mode: .training), try reference.forward(x, mode: .training))
        noisy.endPopulationEstimate()
        XCTAssertNotEqual(try noisy.forward(x, mode: .training), try reference.forward(x, mode: .training))
    }

    func testSettingsAndModelSeeding() throws {
        XCTAssertThrowsError(try NoisyBatchNorm(channelCount: 3, noise: -1))
        XCTAssertThrowsError(try NormalizerSettings(kind: .noisybatch, ["noise": Float.nan]).makeNormalizer(channelCount: 3))
        // A model seeds each slot from its own generator: the same seed, the same draws.
        let image = ImageShape(channels: 1, height: 12, width: 12)
        let settings = try NormalizerSettings(kind: .noisybatch, ["noise": Float(1)])
        let x = randomTensor([4, 1, 12, 12], seed: 5)
        func logits(seed: UInt64) throws -> [Float] {
            let model = try ModelSettings.smallCNN.make(normalizer: settings, image: image, classes: 10, seed: seed)
            try model.forward(x, mode: .training)
            return model.logits.scalars
        }
        XCTAssertEqual(try logits(seed: 1), try logits(seed: 1))
        XCTAssertNotEqual(try logits(seed: 1), try logits(seed: 2))
    }
}
