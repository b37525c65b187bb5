import XCTest
@testable import NormLab

/// Checks any `Layer`'s backward pass against central finite differences of L = Σ y·w (w a fixed
/// random tensor), for the input and every trainable value the layer visits.
struct LayerCheck {
    var step: Float = 1e-2
    var tolerance = 3e-3
    /// Check every `stride`-th element, to keep big layers quick.
    var stride = 3

    func check(_ layer: any Layer, input x: Tensor, seed: UInt64 = 99, checksInput: Bool = true,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let y = try layer.forward(x, mode: .training)
        let w = randomTensor(y.shape, seed: seed)
        let dx = try layer.backward(w)
        var gradients: [[Float]] = []
        layer.visitParameters { _, gradient, _ in gradients.append(gradient) }
        func loss(_ input: Tensor) throws -> Double {
            let out = try layer.forward(input, mode: .training)
            let total = zip(out.scalars, w.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            _ = try layer.backward(w)  // each forward serves one backward
            return total
        }
        func compare(_ analytic: Float, _ plus: Double, _ minus: Double, _ what: String) {
            let numeric = (plus - minus) / Double(2 * step)
            XCTAssertEqual(Double(analytic), numeric, accuracy: tolerance * max(1, abs(numeric)), what, file: file, line: line)
        }
        if checksInput {
            XCTAssertEqual(dx.shape, x.shape, "input gradient shape", file: file, line: line)
            for index in Swift.stride(from: 0, to: x.count, by: stride) {
                var plus = x, minus = x
                plus.scalars[index] += step
                minus.scalars[index] -= step
                compare(dx.scalars[index], try loss(plus), try loss(minus), "dx[\(index)]")
            }
        }
        var arrayIndex = 0
        var arrays = 0
        layer.visitParameters { _, _, _ in arrays += 1 }
        while arrayIndex < arrays {
            let count = gradients[arrayIndex].count
            for element in Swift.stride(from: 0, to: count, by: count > 8 ? stride : 1) {
                func nudged(_ delta: Float) throws -> Double {
                    var visited = 0
                    layer.visitParameters { value, _, _ in
                        if visited == arrayIndex { value[element] += delta }
                        visited += 1
                    }
                    return try loss(x)
                }
                let plus = try nudged(step)
                let minus = try nudged(-2 * step)
                _ = try nudged(step)
                compare(gradients[arrayIndex][element], plus, minus, "parameter array \(arrayIndex)[\(element)]")
            }
            arrayIndex += 1
        }
    }
}
