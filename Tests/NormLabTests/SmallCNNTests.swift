import XCTest
@testable import NormLab

/// The lab's reference network: its whole gradient against finite differences for every
/// normalizer and both placements (on tiny 8×8 images), its steps in pieces and lanes against
/// whole passes, and its initialization.
final class SmallCNNTests: XCTestCase {
    private func loss(_ model: Network, _ images: Tensor, _ labels: [UInt8]) throws -> Double {
        try model.forward(images, mode: .training)
        var gradient = Tensor(shape: [0])
        return SoftmaxCrossEntropy.evaluate(logits: model.logits, labels: labels[...], gradient: &gradient).loss
    }

    func testWholeModelGradientMatchesFiniteDifferences() throws {
        let images = randomTensor([4, 1, 8, 8], seed: 1)
        let labels: [UInt8] = [3, 1, 4, 1]
        // (A normalizer that draws noise redraws it at each forward: its own test case checks its
        // gradients with one draw.)
        for kind in builtInKinds where !kind.registration.drawsNoise {
            for placement in placements(for: kind) {
                let model = try SmallCNN.make(normalizer: NormalizerSettings(kind: kind), placement: placement, seed: 2)
                _ = try loss(model, images, labels)
                var gradient = Tensor(shape: [0])
                _ = SoftmaxCrossEntropy.evaluate(logits: model.logits, labels: labels[...], gradient: &gradient)
                _ = try model.body.backward(gradient)
                var analytic: [[Float]] = []
                model.visitParameters { _, gradient, _ in analytic.append(gradient) }

                var arrayIndex = 0
                var checked = 0, mismatches: [String] = []
                let step: Float = 1e-3
                // Perturb a spread of entries of every parameter array, restoring each after.
                var perturbations: [(array: Int, index: Int)] = []
                model.visitParameters { value, _, _ in
                    for index in stride(from: 0, to: value.count, by: max(1, value.count / 5)) {
                        perturbations.append((arrayIndex, index))
                    }
                    arrayIndex += 1
                }
                for (array, index) in perturbations {
                    func setOffset(_ delta: Float) {
                        var position = 0
                        model.visitParameters { value, _, _ in
                            if position == array { value[index] += delta }
                            position += 1
                        }
                    }
                    setOffset(step)
                    let plus = try loss(model, images, labels)
                    setOffset(-2 * step)
                    let minus = try loss(model, images, labels)
                    setOffset(step)
                    let numeric = (plus - minus) / Double(2 * step)
                    let value = Double(analytic[array][index])
                    checked += 1
                    if abs(value - numeric) > 2e-3 + 3e-2 * abs(numeric) {
                        mismatches.append("array \(array)[\(index)]: analytic \(value), numeric \(numeric)")
                    }
                }
                // Kinks of ReLU and max pooling can spoil a rare difference quotient; a wrong
                // backward pass spoils many.
                XCTAssertLessThanOrEqual(mismatches.count, checked / 20, "\(kind) \(placement): \(mismatches)")
            }
        }
    }

    func testABatchInPiecesAndLanesHasTheSameBitsAsOneWholePass() throws {
        // 2, 5 and 8 samples: one piece, in lanes of 1, 2 or 3, and 4 on two threads (a lane's
        // share of a bias gradient's blocks of 16 ends inside a block). 40 samples: pieces of 16,
        // 16 and 8, so the weight gradients' depth blocks, and the bias gradients' blocks of 16,
        // run across the pieces' boundaries. On one thread, pieces without lanes. Batch norm and
        // batch renorm take the whole batch in lanes that meet (here with renorm's r and d
        // unclipped enough to matter), and must also leave the same running statistics.
        // Every registered normalizer, the tests' own included: what a capability claims is
        // checked here (a normalizer with only the plain protocol takes whole batches).
        CapabilityClaimTests.HalfScaleBatchNorm.registered
        NormalizerRegistryTests.Centring.registered
        XCTAssertEqual(NetworkEngine.pieceSize, 16)
        for (n, threads) in [(2, 2), (5, 2), (8, 2), (40, 2), (40, 1)] {
            let images = randomTensor([n, 1, 28, 28], seed: 5), otherImages = randomTensor([n, 1, 28, 28], seed: 6)
            let labels = (0..<n).map { UInt8($0 * 7 % 10) }
            for kind in NormalizerRegistry.kinds {
                for placement in placements(for: kind) {
                    let context = "\(kind) \(placement), \(n) samples, \(threads) threads"
                    let normalizer = settings(kind, groups: 4, rmax: 1.5, dmax: 0.5)
                    let whole = try SmallCNN.make(normalizer: normalizer, placement: placement, seed: 6)
                    let wholeLoss = try withExecution(threads: threads, splitsBatches: false) {
                        try whole.trainingGradients(images: images, labels: labels[...])
                    }
                    XCTAssertFalse(whole.engine.ranInLanes, context)

                    let split = try SmallCNN.make(normalizer: normalizer, placement: placement, seed: 6)
                    let batchStatistics = split.normalizers.contains { $0 is any BatchStatisticsNormalizer }
                    let perSample = split.normalizers.allSatisfy { $0 is any PerSampleNormalizer }
                    let keepsRunningStatistics = split.normalizers.contains { $0 is any StatefulNormalizer }
                    let loss = try withExecution(threads: threads) {
                        // Without running statistics: a step on other images first, as the next
                        // step's sums must start from zero, not from what this one left. (With
                        // them, it would move the running statistics.)
                        if !keepsRunningStatistics { _ = try split.trainingGradients(images: otherImages, labels: labels[...]) }
                        return try split.trainingGradients(images: images, labels: labels[...])
                    }
                    XCTAssertEqual(split.engine.ranInLanes, batchStatistics ? threads > 1 : perSample, context)

                    XCTAssertEqual(loss.bitPattern, wholeLoss.bitPattern, "\(context): loss")
                    var expected: [[Float]] = [], got: [[Float]] = []
                    whole.visitParameters { _, gradient, _ in expected.append(gradient) }
                    split.visitParameters { _, gradient, _ in got.append(gradient) }
                    XCTAssertEqual(got.count, expected.count)
                    for (index, (a, b)) in zip(got, expected).enumerated() {
                        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(context): parameter array \(index)")
                    }
                    for (index, (a, b)) in zip(split.normalizers, whole.normalizers).enumerated() {
                        XCTAssertEqual(
                            runningStatistics(a).map(\.bitPattern), runningStatistics(b).map(\.bitPattern),
                            "\(context): slot \(index)'s running statistics")
                    }
                }
            }
        }
    }

    /// A normalizer's running statistics, one array after the other (none without them).
    private func runningStatistics(_ normalizer: any Normalizer) -> [Float] {
        guard let state = (normalizer as? any StatefulNormalizer)?.state else { return [] }
        return state.keys.sorted().flatMap { state[$0]! }
    }

    func testSeededInitializationIsReproducibleAndKaimingScaled() throws {
        func convolutions(_ network: Network) -> [Conv2D] { network.body.allLayers.compactMap { $0 as? Conv2D } }
        let a = try SmallCNN.make(normalizer: NormalizerSettings(kind: .group), seed: 7)
        let b = try SmallCNN.make(normalizer: NormalizerSettings(kind: .group), seed: 7)
        let c = try SmallCNN.make(normalizer: NormalizerSettings(kind: .group), seed: 8)
        XCTAssertEqual(convolutions(a)[1].weight.value, convolutions(b)[1].weight.value)
        XCTAssertNotEqual(convolutions(a)[1].weight.value, convolutions(c)[1].weight.value)
        let weights = convolutions(a)[2].weight.value.map(Double.init)
        let std = (weights.reduce(0) { $0 + $1 * $1 } / Double(weights.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / (32 * 9)).squareRoot(), accuracy: 0.005)
        XCTAssertNil(convolutions(a)[0].bias, "a convolution followed by a normalizer has no bias")
        XCTAssertNotNil(convolutions(try SmallCNN.make(normalizer: NormalizerSettings(kind: .none), seed: 0))[0].bias)
        XCTAssertEqual((a.normalizers[0] as? GroupNorm)?.groupCount, 8)
        XCTAssertEqual(a.normalizers.map(\.affine.gamma.count), [16, 32, 64])
    }

    func testImpossibleGroupCountIsAnError() {
        XCTAssertThrowsError(try SmallCNN.make(normalizer: settings(.group, groups: 5), seed: 0)) { error in
            XCTAssertEqual(error as? NormalizerError, .groupsDoNotDivideChannels(channels: 16, groups: 5))
        }
    }
}
