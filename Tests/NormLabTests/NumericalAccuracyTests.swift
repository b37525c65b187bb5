import XCTest
@testable import NormLab

/// Statistics that stay accurate where naive Float32 formulas fail, and results that do not
/// depend on the thread count.
final class NumericalAccuracyTests: XCTestCase {
    /// Values around 1000 with a spread of 10, as in an un-normalized feature: Σx² - (Σx)²/n in
    /// Float32 would lose the variance entirely.
    func testLargeCommonOffset() throws {
        let shape = [16, 4, 14, 14]
        let x = randomTensor(shape, seed: 11, mean: 1000, std: 10)
        for kind in [NormalizerKind.batch, .batchrenorm, .layer, .instance, .group] {
            let layer = makeNormalizer(kind, channels: 4, groups: 2)
            let y = try layer.forward(x, mode: .training)
            let dx = try layer.backward(randomTensor(shape, seed: 12))
            let reference = referenceStandardized(x, kind: kind)
            assertClose(y.scalars, reference, tolerance: 2e-4, "\(kind)")
            XCTAssertTrue(dx.scalars.allSatisfy(\.isFinite), "\(kind)")
        }
    }

    /// Double-precision standardization with each method's sharing pattern.
    private func referenceStandardized(_ x: Tensor, kind: NormalizerKind) -> [Float] {
        let (n, c, s) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let members: [[Int]]
        switch kind {
        case .batch, .batchrenorm:
            members = (0..<c).map { channel -> [Int] in
                var indices: [Int] = []
                for sample in 0..<n {
                    let start = (sample * c + channel) * s
                    indices += Array(start..<(start + s))
                }
                return indices
            }
        case .layer:
            members = (0..<n).map { Array(($0 * c * s)..<(($0 + 1) * c * s)) }
        case .instance:
            members = (0..<(n * c)).map { Array(($0 * s)..<(($0 + 1) * s)) }
        case .group:
            members = (0..<(n * 2)).map { Array(($0 * 2 * s)..<(($0 + 1) * 2 * s)) }
        case .none:
            members = []
        }
        var out = [Float](repeating: 0, count: x.count)
        for indices in members {
            let values = indices.map { Double(x.scalars[$0]) }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            for (i, v) in zip(indices, values) { out[i] = Float((v - mean) / (variance + 1e-5).squareRoot()) }
        }
        return out
    }

    func testConstantInputGivesBeta() throws {
        let x = Tensor(shape: [4, 3, 5, 5], repeating: 7)
        for kind in [NormalizerKind.batch, .layer, .instance, .group] {
            let layer = makeNormalizer(kind, channels: 3, groups: 3)
            try layer.setParameters(gamma: [2, 2, 2], beta: [0.5, -1, 3])
            let y = try layer.forward(x, mode: .training)
            XCTAssertEqual(y.scalars[0], 0.5, "\(kind)")
            XCTAssertEqual(y.scalars[25], -1, "\(kind)")
            XCTAssertEqual(y.scalars[50], 3, "\(kind)")
        }
    }

    func testResultsDoNotDependOnThreadCount() throws {
        // Large enough that the kernels split the work.
        let shape = [32, 16, 28, 28]
        let x = randomTensor(shape, seed: 21, mean: 1, std: 2)
        let dy = randomTensor(shape, seed: 22)
        let saved = Parallelism.threadCount
        defer { Parallelism.threadCount = saved }
        for kind in NormalizerKind.allCases {
            var runs: [(Tensor, Tensor, AffineParameters)] = []
            for threads in [1, 2, 3] {
                Parallelism.threadCount = threads
                let layer = makeNormalizer(kind, channels: 16)
                let y = try layer.forward(x, mode: .training)
                let dx = try layer.backward(dy)
                runs.append((y, dx, layer.gradients))
            }
            for run in runs.dropFirst() {
                XCTAssertEqual(run.0, runs[0].0, "\(kind) output")
                XCTAssertEqual(run.1, runs[0].1, "\(kind) grad_input")
                XCTAssertEqual(run.2, runs[0].2, "\(kind) gradients")
            }
        }
    }
}
