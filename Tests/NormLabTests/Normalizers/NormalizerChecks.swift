import Foundation
import XCTest
@testable import NormLab

/// The checks every normalizer's own test case runs: its reference fixtures, finite
/// differences, the two modes, errors common to all, accuracy with a large common offset, and
/// independence from the thread count. Each normalizer's test case (`BatchNormTests`, …) calls
/// these for its kind and adds what is particular to it, so `swift test --filter GroupNormTests`
/// tests group norm alone.
struct NormalizerChecks {
    let kind: NormalizerKind
    /// Group norm's group count in these checks (it must divide the channel counts used: 4, 6, 16).
    var groups: Int? = nil
    /// Other settings of the kind's, by key.
    var settings: [String: any SettingValue] = [:]

    func make(channels: Int) -> any Normalizer {
        guard !settings.isEmpty else { return makeNormalizer(kind, channels: channels, groups: groups) }
        return try! NormalizerSettings(kind: kind, settings).makeNormalizer(channelCount: channels)
    }

    /// Every fixture of this kind in `Tests/Fixtures/normalizers` passes, as `normlab verify`
    /// checks it; there is at least one.
    func fixturesPass(file: StaticString = #filePath, line: UInt = #line) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: normalizerFixtures.path).filter { $0.hasSuffix(".json") }.sorted()
        var checked = 0
        for name in names {
            let fixture = try Fixture.load(from: normalizerFixtures.appendingPathComponent(name))
            guard fixture.normalizer?.kind == kind else { continue }
            let result = fixture.check()
            XCTAssertTrue(result.passed, "\(name): \(result.message ?? "") \(result.comparisons)", file: file, line: line)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0, "no fixture of \(kind)", file: file, line: line)
    }

    /// dL/dx, dL/dγ and dL/dβ against central finite differences of L = Σ y·w, computed in
    /// Float32 with a step large enough that rounding stays well below the tolerance. `make`
    /// builds a fresh normalizer, so each evaluation starts from the same state.
    func gradientsMatchFiniteDifferences(
        _ name: String, shape: [Int], mode: NormalizationMode = .training, step: Float = 1e-2,
        make: () -> any Normalizer, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let x = randomTensor(shape, seed: 1)
        let weights = randomTensor(shape, seed: 2)
        // Every parameter, by name, at seeded values away from its initial ones.
        var generator = SeededGenerator(seed: 3)
        let initial = Dictionary(uniqueKeysWithValues: make().parameters.map { parameter in
            (parameter.name, parameter.value.map { $0 + Float(0.5 * generator.nextUnit() - 0.25) })
        })

        func loss(_ x: Tensor, _ values: [String: [Float]]) throws -> Double {
            let layer = make()
            for (name, value) in values { try layer.setParameter(named: name, to: value) }
            let y = try layer.forward(x, mode: mode)
            return zip(y.scalars, weights.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }

        let layer = make()
        for (name, value) in initial { try layer.setParameter(named: name, to: value) }
        _ = try layer.forward(x, mode: mode)
        let gradInput = try layer.backward(weights)

        func numeric(_ perturb: (Float) throws -> Double) rethrows -> Double {
            (try perturb(step) - perturb(-step)) / Double(2 * step)
        }
        func record(_ analytic: Float, _ numerical: Double, _ what: String) {
            let error = abs(Double(analytic) - numerical) / max(1, abs(numerical))
            XCTAssertLessThan(error, 5e-3, "\(name) \(what): analytic \(analytic), numeric \(numerical)", file: file, line: line)
        }
        // Every input element for small tensors, a spread of them for larger ones.
        for index in stride(from: 0, to: x.count, by: max(1, x.count / 60)) {
            let value = try numeric { h in
                var shifted = x
                shifted.scalars[index] += h
                return try loss(shifted, initial)
            }
            record(gradInput.scalars[index], value, "dx[\(index)]")
        }
        for parameter in layer.parameters {
            for channel in parameter.value.indices {
                let derivative = try numeric { h in
                    var shifted = initial
                    shifted[parameter.name]![channel] += h
                    return try loss(x, shifted)
                }
                record(parameter.gradient[channel], derivative, "d\(parameter.name)[\(channel)]")
            }
        }
    }

    /// A normalizer that keeps no statistics between batches gives the same output in inference
    /// as in training, and training leaves nothing behind that changes a later output.
    func inferenceEqualsTraining(shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let layer = make(channels: shape[1])
        var generator = SeededGenerator(seed: 31)
        try layer.setParameters(gamma: generator.normals(shape[1], mean: 1, std: 0.3), beta: generator.normals(shape[1]))
        let x = randomTensor(shape, seed: 32, mean: 1.5, std: 2)
        let inferenceBefore = try layer.forward(x, mode: .inference)
        let training = try layer.forward(x, mode: .training)
        _ = try layer.forward(randomTensor(shape, seed: 33, mean: -4, std: 7), mode: .training)
        let inferenceAfter = try layer.forward(x, mode: .inference)
        XCTAssertEqual(training.scalars.map(\.bitPattern), inferenceBefore.scalars.map(\.bitPattern), "\(kind): inference ≠ training", file: file, line: line)
        XCTAssertEqual(inferenceAfter, inferenceBefore, "\(kind): training changed a later inference", file: file, line: line)
    }

    /// The errors every normalizer reports alike: shapes, an empty batch, a backward without a
    /// forward or with the wrong shape, and a released input.
    func commonErrors(file: StaticString = #filePath, line: UInt = #line) throws {
        func assertError(_ expected: NormalizerError, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), file: file, line: line) { error in
                XCTAssertEqual(error as? NormalizerError, expected, "\(kind)", file: file, line: line)
                XCTAssertFalse("\(error)".isEmpty, file: file, line: line)
            }
        }
        let layer = make(channels: 4)
        assertError(.unsupportedRank(shape: [2, 4, 3], kind: kind)) { _ = try layer.forward(Tensor(shape: [2, 4, 3]), mode: .training) }
        assertError(.channelMismatch(expected: 4, shape: [2, 5, 3, 3])) { _ = try layer.forward(Tensor(shape: [2, 5, 3, 3]), mode: .training) }
        assertError(.emptyInput(shape: [0, 4, 3, 3])) { _ = try layer.forward(Tensor(shape: [0, 4, 3, 3]), mode: .training) }
        for parameter in layer.parameters {
            assertError(.parameterLength(name: parameter.name, expected: 4, got: 2)) { try layer.setParameter(named: parameter.name, to: [1, 1]) }
        }

        let fresh = make(channels: 4)
        assertError(.backwardWithoutForward) { _ = try fresh.backward(Tensor(shape: [2, 4, 2, 2])) }
        _ = try fresh.forward(Tensor(shape: [2, 4, 2, 2]), mode: .training)
        assertError(.gradientShapeMismatch(expected: [2, 4, 2, 2], got: [2, 4, 2, 3])) { _ = try fresh.backward(Tensor(shape: [2, 4, 2, 3])) }
        // A rejected gradient leaves the forward in place; a forward serves one backward.
        _ = try fresh.backward(Tensor(shape: [2, 4, 2, 2], repeating: 1))
        assertError(.backwardWithoutForward) { _ = try fresh.backward(Tensor(shape: [2, 4, 2, 2])) }
        // Releasing the saved input ends the forward's claim to a backward, in either mode.
        for mode in [NormalizationMode.training, .inference] {
            _ = try fresh.forward(Tensor(shape: [2, 4, 2, 2], repeating: 1), mode: mode)
            try XCTUnwrap(fresh as? any InputReleasingNormalizer, "\(kind)", file: file, line: line).releaseSavedInput()
            assertError(.backwardWithoutForward) { _ = try fresh.backward(Tensor(shape: [2, 4, 2, 2])) }
        }
    }

    /// Values around 1000 with a spread of 10, as in an un-normalized feature: Σx² − (Σx)²/n in
    /// Float32 would lose the variance entirely. The output matches `reference` computed in
    /// Float64 over `members` (the index sets the normalizer shares statistics over): by default
    /// a standardization, (x − mean) / sqrt(var + 1e-5).
    func accurateWithALargeOffset(
        members: (_ shape: [Int]) -> [[Int]], reference: ((_ values: [Double]) -> [Double])? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let shape = [16, 4, 14, 14]
        let x = randomTensor(shape, seed: 11, mean: 1000, std: 10)
        let layer = make(channels: 4)
        let y = try layer.forward(x, mode: .training)
        let dx = try layer.backward(randomTensor(shape, seed: 12))
        var expected = [Float](repeating: 0, count: x.count)
        func standardized(_ values: [Double]) -> [Double] {
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            return values.map { ($0 - mean) / (variance + 1e-5).squareRoot() }
        }
        for indices in members(shape) {
            let values = indices.map { Double(x.scalars[$0]) }
            for (i, y) in zip(indices, (reference ?? standardized)(values)) { expected[i] = Float(y) }
        }
        assertClose(y.scalars, expected, tolerance: 2e-4, "\(kind)", file: file, line: line)
        XCTAssertTrue(dx.scalars.allSatisfy(\.isFinite), "\(kind)", file: file, line: line)
    }

    /// A constant input normalizes to zero: the output is β.
    func constantInputGivesBeta(file: StaticString = #filePath, line: UInt = #line) throws {
        let layer = make(channels: 4)
        try layer.setParameters(gamma: [2, 2, 2, 2], beta: [0.5, -1, 3, 0.25])
        let y = try layer.forward(Tensor(shape: [4, 4, 5, 5], repeating: 7), mode: .training)
        XCTAssertEqual([y.scalars[0], y.scalars[25], y.scalars[50], y.scalars[75]], [0.5, -1, 3, 0.25], "\(kind)", file: file, line: line)
    }

    /// Output, input gradient and parameter gradients are bit-identical on 1, 2 and 3 threads,
    /// on a tensor large enough that the kernels split the work.
    func sameBitsOnAnyThreadCount(file: StaticString = #filePath, line: UInt = #line) throws {
        let shape = [32, 16, 28, 28]
        let x = randomTensor(shape, seed: 21, mean: 1, std: 2)
        let dy = randomTensor(shape, seed: 22)
        var runs: [(Tensor, Tensor, [[Float]])] = []
        for threads in [1, 2, 3] {
            try withExecution(threads: threads) {
                let layer = make(channels: 16)
                let y = try layer.forward(x, mode: .training)
                let dx = try layer.backward(dy)
                runs.append((y, dx, layer.parameters.map(\.gradient)))
            }
        }
        for run in runs.dropFirst() {
            XCTAssertEqual(run.0, runs[0].0, "\(kind) output", file: file, line: line)
            XCTAssertEqual(run.1, runs[0].1, "\(kind) grad_input", file: file, line: line)
            XCTAssertEqual(run.2, runs[0].2, "\(kind) gradients", file: file, line: line)
        }
    }

    /// The index sets of a [N, C, H, W] tensor that batch-style normalizers share statistics
    /// over: one per channel, across samples and positions.
    static func perChannel(_ shape: [Int]) -> [[Int]] {
        let (n, c, s) = (shape[0], shape[1], shape[2] * shape[3])
        return (0..<c).map { channel -> [Int] in
            var indices: [Int] = []
            for sample in 0..<n {
                let start = (sample * c + channel) * s
                indices += Array(start..<(start + s))
            }
            return indices
        }
    }

    /// One per (sample, channel) plane: each over H, W.
    static func perPlane(_ shape: [Int]) -> [[Int]] { perSampleGroup(shape, channelsPerGroup: 1) }

    /// One per sample and block of `channelsPerGroup` channels: layer (all C), group, instance (1).
    static func perSampleGroup(_ shape: [Int], channelsPerGroup: Int) -> [[Int]] {
        let block = channelsPerGroup * shape[2] * shape[3]
        return (0..<(shape[0] * shape[1] / channelsPerGroup)).map { Array(($0 * block)..<(($0 + 1) * block)) }
    }
}
