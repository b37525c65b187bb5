import XCTest

@testable import NormLab

/// Batch norm, batch renorm, ghost and noisy batch norm folded into their convolutions give the
/// unfolded network's outputs, within a float32 bound derived here, in every model of the lab and with weight
/// standardization; what cannot be folded is refused.
///
/// The bound, for one folded slot given the same input x. Folding is exact in real arithmetic:
/// with `s = γ·(1/σ)` from the float32 statistics the normalizer itself uses, both the
/// unfolded `conv → norm` and the folded convolution compute v = s·(Ŵ∗x + b − μ) + β. Each is
/// a sum of terms, every one of which passes through at most n float32 roundings, so its error
/// is at most γₙ times the sum of the terms' magnitudes (Higham, *Accuracy and Stability of
/// Numerical Algorithms*, Lemma 3.1 and §3.1; u = 2⁻²⁴, γₙ = n·u / (1 − n·u)), in any order of
/// summation, with or without fused multiply-adds:
/// - the convolution is a dot product of K = C_in·k² + 1 terms (the bias one of them): K
///   roundings at most;
/// - the unfolded normalizer computes its scale s, its shift β − μ·s and z·s + shift: at most 5
///   more; the folded convolution's W' and b' are each rounded once from double: 1 more;
/// - the terms' magnitudes add up to A = |s|·|Ŵ|·|x| + |s·b| + |s·μ| + |β|, which is the
///   folding's *magnitudes* network (`fold(_:magnitudes: true)`) run on |x| (its own float32
///   rounding, a relative γ_K at most, is the factor 1.01);
/// - a ReLU fused after it rounds nothing and does not increase an error.
/// So |folded − unfolded| ≤ |folded − v| + |unfolded − v| ≤ 2 · 1.01 · γ_{K+8} · A.
///
/// Every other layer is copied and gives the same bits. End to end the slots' errors pass
/// through the rest of the network; a bound that holds for every input multiplies them by |W|
/// at each later layer (for resnet-8, 10⁵ for logits of size 1), so the logits are checked
/// against a stated tolerance instead: 10⁻⁴ of the largest logit.
final class BatchNormFoldingTests: XCTestCase {
    private static let data = try! FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 256)
    private static let test = data.test.prefix(16)

    func testFoldingIsExactWithinTheFloat32BoundInEverySlotOfEveryModel() throws {
        var images = Tensor(shape: [0])
        Self.test.batch(0..<Self.test.count, into: &images)
        var largestRatio = 0.0, largestLogitDifference = 0.0
        for name in ["smallcnn", "resnet-8", "plain-8"] {
            for kind in [NormalizerKind.batch, .batchrenorm, .ghostbatch, .noisybatch] {
                for standardized in [false, true] {
                    let model = try ModelSettings(name: name, weightStandardization: standardized).make(
                        normalizer: NormalizerSettings(kind: kind), image: Self.test.imageShape, classes: 10, seed: 3)
                    let network = try XCTUnwrap(model as? Network)
                    try Self.setTrainedLookingValues(network, seed: 7)
                    let folded = try BatchNormFolding.fold(network)
                    let magnitudes = try BatchNormFolding.fold(network, magnitudes: true)
                    XCTAssertTrue(folded.normalizers.isEmpty, "no normalizer is left")

                    var slots = 0
                    _ = try Self.compare(
                        network.body.layers, folded.body.layers, magnitudes.body.layers, input: images,
                        slots: &slots, largestRatio: &largestRatio, context: "\(name) \(kind) WS \(standardized)")
                    XCTAssertEqual(slots, network.normalizers.count, "every slot checked")

                    try network.forward(images, mode: .inference)
                    try folded.forward(images, mode: .inference)
                    XCTAssertEqual(folded.logits.shape, network.logits.shape)
                    let scale = network.logits.scalars.map { abs(Double($0)) }.max() ?? 0
                    XCTAssertGreaterThan(scale, 0.1)
                    for (a, b) in zip(folded.logits.scalars, network.logits.scalars) {
                        XCTAssertLessThanOrEqual(abs(Double(a) - Double(b)), 1e-4 * scale, "\(name) \(kind) WS \(standardized)")
                        largestLogitDifference = max(largestLogitDifference, abs(Double(a) - Double(b)) / scale)
                    }
                }
            }
        }
        // How far inside: the worst case is rarely approached.
        print("folding: largest slot difference / bound \(largestRatio); largest logit difference / largest logit \(largestLogitDifference)")
    }

    /// Runs `unfolded` on `input` as `Sequential` and `Residual` do. Where a convolution and its
    /// normalizer were folded, the folded convolution is given the same input and checked against
    /// the bound; every other folded layer must give the same bits. Returns the unfolded output.
    private static func compare(
        _ unfolded: [any Layer], _ folded: [any Layer], _ magnitudes: [any Layer], input: Tensor,
        slots: inout Int, largestRatio: inout Double, context: String
    ) throws -> Tensor {
        var x = input
        var (i, j) = (0, 0)
        while i < unfolded.count {
            let layer = unfolded[i]
            if let convolution = layer as? Conv2D, i + 1 < unfolded.count, let norm = unfolded[i + 1] as? NormalizerLayer {
                let y = try norm.forward(try convolution.forward(x, mode: .inference), mode: .inference)
                let foldedY = try folded[j].forward(x, mode: .inference)
                let magnitude = try magnitudes[j].forward(try Tensor(shape: x.shape, scalars: x.scalars.map(abs)), mode: .inference)
                let k = convolution.geometry.kernel
                let bound = 2 * 1.01 * gamma(convolution.inputChannels * k * k + 1 + 8)
                XCTAssertEqual(foldedY.shape, y.shape)
                for e in y.scalars.indices {
                    let difference = abs(Double(foldedY.scalars[e]) - Double(y.scalars[e]))
                    let allowed = bound * Double(magnitude.scalars[e])
                    guard difference <= allowed else {
                        XCTFail("\(context): slot \(slots), value \(e): \(difference) > \(allowed)")
                        return y
                    }
                    if allowed > 0 { largestRatio = max(largestRatio, difference / allowed) }
                }
                slots += 1
                x = y
                i += 2
            } else if let residual = layer as? Residual, let foldedResidual = folded[j] as? Residual, let magnitudeResidual = magnitudes[j] as? Residual {
                let branch = try compare(
                    residual.body.layers, foldedResidual.body.layers, magnitudeResidual.body.layers, input: x,
                    slots: &slots, largestRatio: &largestRatio, context: context)
                let skip = try residual.shortcut.map {
                    try compare($0.layers, foldedResidual.shortcut!.layers, magnitudeResidual.shortcut!.layers, input: x,
                                slots: &slots, largestRatio: &largestRatio, context: context)
                } ?? x
                x = try Tensor(shape: branch.shape, scalars: zip(branch.scalars, skip.scalars).map { max($0 + $1, 0) })
                i += 1
            } else {
                let y = try layer.forward(x, mode: .inference)
                XCTAssertEqual(try folded[j].forward(x, mode: .inference).scalars, y.scalars, "\(context): \(type(of: layer)) copied")
                x = y
                i += 1
            }
            j += 1
        }
        XCTAssertEqual(j, folded.count)
        return x
    }

    private static func gamma(_ n: Int) -> Double {
        let nu = Double(n) * 0x1p-24
        return nu / (1 - nu)
    }

    /// γ and β around 1 and 0, each channel its own, and running statistics estimated on
    /// training images, as after training.
    private static func setTrainedLookingValues(_ network: Network, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        func normal() -> Float { Float(generator.nextNormal()) }
        for case let norm as any FoldableNormalizer in network.normalizers {
            let channels = norm.gamma.value.count
            norm.gamma.value = (0..<channels).map { _ in 1 + 0.5 * normal() }
            norm.beta.value = (0..<channels).map { _ in 0.5 * normal() }
        }
        try PreciseBN.recompute(network, onFirst: 256, of: data.train, batchSize: 64)
    }

    func testWhatCannotBeFoldedIsRefused() throws {
        let image = Self.test.imageShape
        for kind in [NormalizerKind.group, .layer, .frn] {
            let network = try XCTUnwrap(try ModelSettings.smallCNN.make(
                normalizer: NormalizerSettings(kind: kind), image: image, classes: 10, seed: 0) as? Network)
            XCTAssertThrowsError(try BatchNormFolding.fold(network)) { XCTAssertTrue("\($0)".contains("cannot be folded"), "\($0)") }
        }
        let after = try XCTUnwrap(try ModelSettings.smallCNN.make(
            normalizer: NormalizerSettings(kind: .batch), placement: .after, image: image, classes: 10, seed: 0) as? Network)
        XCTAssertThrowsError(try BatchNormFolding.fold(after)) { XCTAssertTrue("\($0)".contains("placement after"), "\($0)") }
        // No normalizer: nothing to fold, the same network.
        let plain = try XCTUnwrap(try ModelSettings.smallCNN.make(
            normalizer: NormalizerSettings(kind: .none), image: image, classes: 10, seed: 0) as? Network)
        var images = Tensor(shape: [0])
        Self.test.batch(0..<4, into: &images)
        try plain.forward(images, mode: .inference)
        let copy = try BatchNormFolding.fold(plain)
        try copy.forward(images, mode: .inference)
        XCTAssertEqual(copy.logits.scalars, plain.logits.scalars)
    }

    /// `bench inference` times batch norm folded and not, the others as they are, each beside
    /// the network without normalization.
    func testTheInferenceBenchmarkTimesFoldedAndUnfoldedVariants() throws {
        var measurements: [InferenceBenchmark.Measurement] = []
        try InferenceBenchmark.run(
            data: Self.test, models: [.smallCNN], kinds: [.none, .batch, .group], batchSizes: [2], rounds: 1, imagesPerBlock: 4
        ) { measurements.append($0) }
        XCTAssertEqual(measurements.map { "\($0.variant.normalizer)\($0.variant.folded ? " folded" : "")" }, ["batch", "batch folded", "group", "none"])
        for m in measurements {
            XCTAssertGreaterThan(m.imagesPerSecond, 0)
            XCTAssertTrue(m.relativeRange.contains(m.relativeToNone))
        }
        XCTAssertEqual(measurements.last?.relativeToNone, 1)
    }
}
