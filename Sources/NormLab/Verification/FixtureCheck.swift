import Foundation

/// The outcome of running one fixture.
public struct FixtureResult: Sendable {
    public var name: String
    public var passed: Bool
    /// For each compared output ("output", "grad_input", …), the largest absolute error, and
    /// whether every element was within tolerance.
    public var comparisons: [(name: String, maxError: Double, passed: Bool)]
    /// Why an `expect_error` fixture passed or failed, or the unexpected error.
    public var message: String?
}

extension Fixture {
    /// Runs the fixture: builds the normalizer, sets its state, runs forward and backward in
    /// the fixture's mode, and compares every output with the reference.
    public func check() -> FixtureResult {
        do {
            let result = try run()
            if let expect_error {
                return FixtureResult(
                    name: name, passed: false, comparisons: [],
                    message: "expected an error (\(expect_error)), but the call succeeded")
            }
            return compare(result)
        } catch {
            if expect_error != nil {
                return FixtureResult(name: name, passed: true, comparisons: [], message: "rejected: \(error)")
            }
            return FixtureResult(name: name, passed: false, comparisons: [], message: "unexpected error: \(error)")
        }
    }

    private struct Outputs {
        var output: [Float]
        var gradInput: [Float]
        /// Each parameter's gradient, by name.
        var gradients: [String: [Float]]
        var state: [String: [Float]]
    }

    private func run() throws -> Outputs {
        guard let description = normalizer else { return try runConvolution() }
        // The tensors first: their sizes are bounded by the file's, and the channel count must
        // be theirs before any per-channel array is made.
        let x = try Tensor(shape: input.shape, scalars: input.data.map(Float.init))
        let dy = try Tensor(shape: input.shape, scalars: grad_output.map(Float.init))
        guard input.shape.count >= 2, input.shape[1] == description.channels else {
            throw FixtureError.malformed(
                path: name, reason: "normalizer.channels is \(description.channels), but the input's shape is \(input.shape)")
        }
        let layer = try description.settings.makeNormalizer(channelCount: description.channels)
        for (name, values) in parameters.sorted(by: { $0.key < $1.key }) {
            try layer.setParameter(named: name, to: values.map(Float.init))
        }
        let stateful = layer as? any StatefulNormalizer
        if let state, !state.isEmpty {
            guard let stateful else { throw NormalizerError.unknownState(kind: layer.kind, name: state.keys.sorted()[0]) }
            try stateful.setState(state.mapValues { $0.map(Float.init) })
        }
        let y = try layer.forward(x, mode: mode == "training" ? .training : .inference)
        let dx = try layer.backward(dy)
        let gradients = Dictionary(uniqueKeysWithValues: layer.parameters.map { ($0.name, $0.gradient) })
        return Outputs(output: y.scalars, gradInput: dx.scalars, gradients: gradients, state: stateful?.state ?? [:])
    }

    /// A `conv_ws` case: the convolution forward, then backward through the standardization.
    private func runConvolution() throws -> Outputs {
        guard let convolution, let weight else { preconditionFailure("a conv_ws case has its convolution and weights") }
        func malformed(_ reason: String) -> FixtureError { .malformed(path: name, reason: reason) }
        guard Float(convolution.eps) == WeightStandardization.epsilon else {
            throw malformed("conv_ws.eps is \(convolution.eps); the lab standardizes weights with ε \(WeightStandardization.epsilon)")
        }
        guard convolution.in_channels > 0, convolution.out_channels > 0, convolution.kernel > 0, convolution.stride > 0,
              convolution.padding >= 0, convolution.padding < convolution.kernel
        else {
            throw malformed("conv_ws needs positive channel counts, kernel and stride, and a padding of 0 or more, smaller than the kernel")
        }
        let geometry = ConvolutionGeometry(kernel: convolution.kernel, stride: convolution.stride, padding: convolution.padding)
        let x = try Tensor(shape: input.shape, scalars: input.data.map(Float.init))
        let weights = try Tensor(shape: weight.shape, scalars: weight.data.map(Float.init))
        guard x.shape.count == 4, x.shape[1] == convolution.in_channels,
              weights.shape == [convolution.out_channels, convolution.in_channels, convolution.kernel, convolution.kernel]
        else { throw malformed("input \(x.shape) and weight \(weights.shape) do not fit conv_ws") }
        var generator = SeededGenerator(seed: 0)
        let layer = Conv2D(
            inputChannels: convolution.in_channels, outputChannels: convolution.out_channels, geometry: geometry, bias: false,
            standardizesWeights: true, generator: &generator)
        guard try layer.outputShape(for: x.shape).reduce(1, *) == grad_output.count else {
            throw malformed("grad_output has \(grad_output.count) values, the output \(try layer.outputShape(for: x.shape))")
        }
        layer.weight.value = weights.scalars
        let y = try layer.forward(x, mode: .training)
        let dx = try layer.backward(try Tensor(shape: y.shape, scalars: grad_output.map(Float.init)))
        return Outputs(output: y.scalars, gradInput: dx.scalars, gradients: ["weight": layer.weight.gradient], state: [:])
    }

    private func compare(_ got: Outputs) -> FixtureResult {
        guard let expected else { preconditionFailure("compare needs expected values") }
        let tolerance = self.tolerance ?? Tolerance(abs: 1e-4, rel: 1e-4)
        var pairs: [(String, [Float], [Double])] = [
            ("output", got.output, expected.output),
            ("grad_input", got.gradInput, expected.grad_input),
        ]
        // Every parameter the normalizer has is compared, and every gradient the fixture gives.
        for name in Set(got.gradients.keys).union(expected.parameterGradients.keys).sorted() {
            pairs.append(("grad_" + name, got.gradients[name] ?? [], expected.parameterGradients[name] ?? []))
        }
        for (key, values) in (expected.state ?? [:]).sorted(by: { $0.key < $1.key }) {
            pairs.append(("state." + key, got.state[key] ?? [], values))
        }
        var comparisons: [(name: String, maxError: Double, passed: Bool)] = []
        for (label, actual, reference) in pairs {
            guard actual.count == reference.count else {
                comparisons.append((label, .infinity, false))
                continue
            }
            var maxError = 0.0
            var passed = true
            for (a, e) in zip(actual, reference) {
                let error = abs(Double(a) - e)
                maxError = max(maxError, error.isNaN ? .infinity : error)
                if !(error <= tolerance.abs + tolerance.rel * abs(e)) { passed = false }
            }
            comparisons.append((label, maxError, passed))
        }
        return FixtureResult(
            name: name, passed: comparisons.allSatisfy(\.passed), comparisons: comparisons, message: nil)
    }
}
