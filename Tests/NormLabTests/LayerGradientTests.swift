import XCTest
@testable import NormLab

/// Each network layer's analytic backward pass against central finite differences of
/// L = Σ y·w, in Float32 with a step large enough for rounding to stay small.
final class LayerGradientTests: XCTestCase {
    private let step: Float = 1e-2

    private func weightedSum(_ y: Tensor, _ w: Tensor) -> Double {
        zip(y.scalars, w.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    private func check(_ analytic: Float, _ numeric: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Double(analytic), numeric, accuracy: 3e-3 * max(1, abs(numeric)), what, file: file, line: line)
    }

    func testConvolution() {
        var generator = SeededGenerator(seed: 5)
        let conv = Conv2D(inputChannels: 3, outputChannels: 4, bias: true, generator: &generator)
        conv.bias!.value = generator.normals(4)
        let x = randomTensor([2, 3, 5, 6], seed: 6)
        var y = Tensor(shape: [0])
        conv.forward(x, into: &y)
        XCTAssertEqual(y.shape, [2, 4, 5, 6])
        let w = randomTensor(y.shape, seed: 7)
        var dx = Tensor(shape: [0])
        conv.backward(w, into: &dx)
        func loss() -> Double {
            var out = Tensor(shape: [0])
            conv.forward(x, into: &out)
            return weightedSum(out, w)
        }
        func loss(_ input: Tensor) -> Double {
            var out = Tensor(shape: [0])
            conv.forward(input, into: &out)
            return weightedSum(out, w)
        }
        for index in stride(from: 0, to: x.count, by: 7) {
            var plus = x, minus = x
            plus.scalars[index] += step
            minus.scalars[index] -= step
            check(dx.scalars[index], (loss(plus) - loss(minus)) / Double(2 * step), "dx[\(index)]")
        }
        let weightGradient = conv.weight.gradient, biasGradient = conv.bias!.gradient
        for index in stride(from: 0, to: conv.weight.value.count, by: 5) {
            let saved = conv.weight.value[index]
            conv.weight.value[index] = saved + step
            let plus = loss()
            conv.weight.value[index] = saved - step
            let minus = loss()
            conv.weight.value[index] = saved
            check(weightGradient[index], (plus - minus) / Double(2 * step), "dW[\(index)]")
        }
        for index in 0..<4 {
            let saved = conv.bias!.value[index]
            conv.bias!.value[index] = saved + step
            let plus = loss()
            conv.bias!.value[index] = saved - step
            let minus = loss()
            conv.bias!.value[index] = saved
            check(biasGradient[index], (plus - minus) / Double(2 * step), "db[\(index)]")
        }
    }

    func testConvolutionInChunksGivesTheSameBitsAsOneWholeBatch() {
        // 20 samples of 30 positions: chunks of 1, 3 or 7 samples put the weight gradient's
        // depth pieces across its 256-wide blocks.
        for (bias, samplesPerChunk) in [(true, 3), (false, 7), (true, 1)] {
            var generator = SeededGenerator(seed: 10)
            let whole = Conv2D(inputChannels: 3, outputChannels: 5, bias: bias, generator: &generator)
            generator = SeededGenerator(seed: 10)
            let chunked = Conv2D(inputChannels: 3, outputChannels: 5, bias: bias, generator: &generator)
            chunked.kernel.chunkEntries = samplesPerChunk * 3 * 9 * 30
            for step in 0..<2 {
                let x = randomTensor([20, 3, 6, 5], seed: UInt64(11 + step)), dy = randomTensor([20, 5, 6, 5], seed: UInt64(13 + step))
                var outputs: [[UInt32]] = [], gradients: [[UInt32]] = []
                for conv in [whole, chunked] {
                    var y = Tensor(shape: [0]), dx = Tensor(shape: [0])
                    conv.forward(x, into: &y)
                    if step == 0 { conv.backward(dy, into: &dx) } else { conv.parameterGradients(dy) }
                    outputs.append(y.scalars.map(\.bitPattern))
                    gradients.append((dx.scalars + conv.weight.gradient + (conv.bias?.gradient ?? [])).map(\.bitPattern))
                }
                XCTAssertEqual(outputs[0], outputs[1], "forward, chunks of \(samplesPerChunk)")
                XCTAssertEqual(gradients[0], gradients[1], "backward, chunks of \(samplesPerChunk)")
            }
        }
    }

    func testRectifyingConvolutionIsReLUAfterTheConvolution() {
        // The ReLU fused into the bias pass: the same bits as the ReLU layer after the plain
        // forward, with and without a bias, on planes of 30 positions (16-, 8- and 1-float tails).
        for bias in [true, false] {
            var generator = SeededGenerator(seed: 12)
            let conv = Conv2D(inputChannels: 3, outputChannels: 5, bias: bias, generator: &generator)
            if let parameter = conv.bias { parameter.value = generator.normals(5) }
            let x = randomTensor([4, 3, 6, 5], seed: 14)
            var plain = Tensor(shape: [0]), rectified = Tensor(shape: [0]), fused = Tensor(shape: [0])
            conv.forward(x, into: &plain)
            ReLU().forward(plain, into: &rectified)
            conv.forward(x, into: &fused, rectifying: true)
            XCTAssertEqual(fused.shape, rectified.shape)
            XCTAssertEqual(fused.scalars.map(\.bitPattern), rectified.scalars.map(\.bitPattern), "bias \(bias)")
            XCTAssertTrue(fused.scalars.contains(0) && fused.scalars.contains { $0 > 0 })
        }
    }

    func testConvolutionMatchesDirectDefinition() {
        var generator = SeededGenerator(seed: 8)
        let conv = Conv2D(inputChannels: 2, outputChannels: 3, bias: false, generator: &generator)
        let x = randomTensor([2, 2, 4, 5], seed: 9)
        var y = Tensor(shape: [0])
        conv.forward(x, into: &y)
        for n in 0..<2 { for o in 0..<3 { for r in 0..<4 { for c in 0..<5 {
            var total: Float = 0
            for i in 0..<2 { for ky in 0..<3 { for kx in 0..<3 {
                let (rr, cc) = (r + ky - 1, c + kx - 1)
                guard rr >= 0, rr < 4, cc >= 0, cc < 5 else { continue }
                total += conv.weight.value[((o * 2 + i) * 3 + ky) * 3 + kx] * x.scalars[((n * 2 + i) * 4 + rr) * 5 + cc]
            } } }
            XCTAssertEqual(y.scalars[((n * 3 + o) * 4 + r) * 5 + c], total, accuracy: 1e-5)
        } } } }
    }

    func testPoolingAndLinearAndLoss() {
        // Max pooling routes the gradient to the largest of each window.
        let pool = MaxPool2D()
        let x = try! Tensor(shape: [1, 1, 2, 4], scalars: [1, 5, 2, 0, 3, 4, 8, 7])
        var y = Tensor(shape: [0]), dx = Tensor(shape: [0])
        pool.forward(x, into: &y)
        XCTAssertEqual(y.scalars, [5, 8])
        pool.backward(try! Tensor(shape: [1, 1, 1, 2], scalars: [10, 20]), into: &dx)
        XCTAssertEqual(dx.scalars, [0, 10, 0, 0, 0, 0, 20, 0])

        let average = GlobalAveragePool()
        average.forward(x, into: &y)
        XCTAssertEqual(y.scalars, [30.0 / 8])
        average.backward(try! Tensor(shape: [1, 1], scalars: [8]), into: &dx)
        XCTAssertEqual(dx.scalars, [Float](repeating: 1, count: 8))

        var generator = SeededGenerator(seed: 3)
        let linear = Linear(inputCount: 5, outputCount: 4, generator: &generator)
        linear.bias.value = generator.normals(4)
        let input = randomTensor([3, 5], seed: 4)
        var logits = Tensor(shape: [0]), gradient = Tensor(shape: [0]), inputGradient = Tensor(shape: [0])
        let labels: [UInt8] = [0, 3, 2]
        func loss(_ input: Tensor) -> Double {
            var out = Tensor(shape: [0]), g = Tensor(shape: [0])
            linear.forward(input, into: &out)
            return SoftmaxCrossEntropy.evaluate(logits: out, labels: labels[...], gradient: &g).loss
        }
        linear.forward(input, into: &logits)
        _ = SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels[...], gradient: &gradient)
        linear.backward(gradient, into: &inputGradient)
        for index in 0..<input.count {
            var plus = input, minus = input
            plus.scalars[index] += step
            minus.scalars[index] -= step
            check(inputGradient.scalars[index], (loss(plus) - loss(minus)) / Double(2 * step), "linear dx[\(index)]")
        }
        let weightGradient = linear.weight.gradient
        for index in 0..<linear.weight.value.count {
            let saved = linear.weight.value[index]
            linear.weight.value[index] = saved + step
            let plus = loss(input)
            linear.weight.value[index] = saved - step
            let minus = loss(input)
            linear.weight.value[index] = saved
            check(weightGradient[index], (plus - minus) / Double(2 * step), "linear dW[\(index)]")
        }
    }

    func testSoftmaxCrossEntropyValues() {
        var gradient = Tensor(shape: [0])
        let logits = try! Tensor(shape: [2, 3], scalars: [0, 0, 0, 1000, 0, -1000])
        let (loss, correct) = SoftmaxCrossEntropy.evaluate(logits: logits, labels: [1, 0][...], gradient: &gradient)
        // ln 3 for the uniform row, 0 for the confident correct one; no overflow at 1000.
        XCTAssertEqual(loss, log(3) / 2, accuracy: 1e-6)
        XCTAssertEqual(correct, 1)
        XCTAssertEqual(gradient.scalars[1], Float((1.0 / 3 - 1) / 2), accuracy: 1e-6)
        // NaN logits give a NaN loss, not a crash.
        let broken = try! Tensor(shape: [1, 3], scalars: [.nan, 1, .nan])
        XCTAssertTrue(SoftmaxCrossEntropy.evaluate(logits: broken, labels: [0][...], gradient: &gradient).loss.isNaN)
    }
}
