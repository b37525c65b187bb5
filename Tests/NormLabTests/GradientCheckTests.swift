import XCTest
@testable import NormLab

/// Analytic backward passes against central finite differences of L = Σ y·w, computed in
/// Float32 with a step large enough that rounding stays well below the tolerance.
final class GradientCheckTests: XCTestCase {
    /// Compares dL/dx, dL/dgamma and dL/dbeta with finite differences. `make` builds a fresh
    /// normalizer, so each evaluation starts from the same state.
    private func checkGradients(
        _ name: String, shape: [Int], mode: NormalizationMode = .training,
        make: () -> any Normalizer, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let x = randomTensor(shape, seed: 1)
        let weights = randomTensor(shape, seed: 2)
        let channels = shape[1]
        var generator = SeededGenerator(seed: 3)
        let gamma = (0..<channels).map { _ in Float(0.5 + generator.nextUnit()) }
        let beta = generator.normals(channels)

        func loss(_ x: Tensor, gamma: [Float], beta: [Float]) throws -> Double {
            let layer = make()
            if !layer.parameters.gamma.isEmpty { try layer.setParameters(gamma: gamma, beta: beta) }
            let y = try layer.forward(x, mode: mode)
            return zip(y.scalars, weights.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }

        let layer = make()
        if !layer.parameters.gamma.isEmpty { try layer.setParameters(gamma: gamma, beta: beta) }
        _ = try layer.forward(x, mode: mode)
        let gradInput = try layer.backward(weights)

        let step: Float = 1e-2
        func numeric(_ perturb: (Float) throws -> Double) rethrows -> Double {
            (try perturb(step) - perturb(-step)) / Double(2 * step)
        }
        var worst = 0.0
        func record(_ analytic: Float, _ numerical: Double, _ what: String) {
            let error = abs(Double(analytic) - numerical) / max(1, abs(numerical))
            worst = max(worst, error)
            XCTAssertLessThan(error, 5e-3, "\(name) \(what): analytic \(analytic), numeric \(numerical)", file: file, line: line)
        }
        // Every input element for small tensors, a spread of them for larger ones.
        for index in stride(from: 0, to: x.count, by: max(1, x.count / 60)) {
            let value = try numeric { h in
                var shifted = x
                shifted.scalars[index] += h
                return try loss(shifted, gamma: gamma, beta: beta)
            }
            record(gradInput.scalars[index], value, "dx[\(index)]")
        }
        guard !gamma.isEmpty, !layer.parameters.gamma.isEmpty else { return }
        for channel in 0..<channels {
            let dGamma = try numeric { h in
                var shifted = gamma
                shifted[channel] += h
                return try loss(x, gamma: shifted, beta: beta)
            }
            record(layer.gradients.gamma[channel], dGamma, "dgamma[\(channel)]")
            let dBeta = try numeric { h in
                var shifted = beta
                shifted[channel] += h
                return try loss(x, gamma: gamma, beta: shifted)
            }
            record(layer.gradients.beta[channel], dBeta, "dbeta[\(channel)]")
        }
    }

    func testBatchNorm() throws {
        try checkGradients("batch 4-D", shape: [3, 4, 3, 3]) { try! BatchNorm(channelCount: 4) }
        try checkGradients("batch 2-D", shape: [6, 5]) { try! BatchNorm(channelCount: 5) }
    }

    func testBatchNormInference() throws {
        try checkGradients("batch inference", shape: [2, 3, 3, 3], mode: .inference) {
            let layer = try! BatchNorm(channelCount: 3)
            try! layer.setRunningStatistics(mean: [0.1, -0.2, 0.3], variance: [0.5, 1.5, 2])
            return layer
        }
    }

    func testBatchRenormWithoutCorrection() throws {
        try checkGradients("batchrenorm r=1 d=0", shape: [3, 4, 3, 3]) { try! BatchRenorm(channelCount: 4) }
    }

    func testBatchRenormWithClippedCorrections() throws {
        // Running statistics far from the batch's clip r and d at their bounds, where they are
        // truly constant, so the algorithm's gradient is the true gradient.
        try checkGradients("batchrenorm clipped", shape: [3, 4, 3, 3]) {
            let layer = try! BatchRenorm(channelCount: 4, momentum: 0.1, rmax: 2, dmax: 0.5)
            try! layer.setRunningStatistics(mean: [20, -20, 20, -20], std: [10, 10, 0.1, 0.1])
            return layer
        }
    }

    func testLayerNorm() throws {
        try checkGradients("layer 4-D", shape: [2, 4, 3, 3]) { try! LayerNorm(channelCount: 4) }
        try checkGradients("layer 2-D", shape: [3, 7]) { try! LayerNorm(channelCount: 7) }
    }

    func testInstanceNorm() throws {
        try checkGradients("instance", shape: [2, 3, 4, 4]) { try! InstanceNorm(channelCount: 3) }
    }

    func testGroupNorm() throws {
        try checkGradients("group G=2", shape: [2, 6, 3, 3]) { try! GroupNorm(channelCount: 6, groupCount: 2) }
        try checkGradients("group 2-D", shape: [3, 8]) { try! GroupNorm(channelCount: 8, groupCount: 4) }
    }

    func testIdentity() throws {
        try checkGradients("none", shape: [2, 3, 2, 2]) { try! Identity(channelCount: 3) }
    }
}
