/// 2×2 max pooling with stride 2; H and W must be even.
public final class MaxPool2D {
    /// For each output, which element of its window it took: 0 top-left, 1 top-right,
    /// 2 bottom-left, 3 bottom-right.
    private var choices: [Int32] = []
    private var inputShape: [Int] = []
    /// As a `Layer`: its output and input gradient.
    private var layerOutput = Tensor(shape: [0])
    private var layerInputGradient = Tensor(shape: [0])
    var absorbsReLU = false

    public init() {}

    public func forward(_ x: Tensor, into y: inout Tensor) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(h % 2 == 0 && w % 2 == 0, "max pooling needs even H and W, got \(x.shape)")
        inputShape = x.shape
        let ow = w / 2
        y.reshape(to: [n, c, h / 2, ow])
        if choices.count != y.count { choices = [Int32](repeating: 0, count: y.count) }
        x.scalars.withUnsafeBufferPointer { x in
            y.scalars.withUnsafeMutableBufferPointer { y in
                choices.withUnsafeMutableBufferPointer { choices in
                    let (x, y, choices) = (x.baseAddress!, y.baseAddress!, choices.baseAddress!)
                    Parallelism.forEach(n * c * h / 2, cost: 4 * w) { rows in
                        withScratch { scratch in
                            Self.forEachGroup(rows, outputWidth: ow) { row, ox in
                                let (upper, lower) = (x + 2 * row * w + 2 * ox, x + (2 * row + 1) * w + 2 * ox)
                                Self.pool(upper, lower, y + row * ow + ox, choices + row * ow + ox)
                            } padded: { row in
                                scratch.clear()
                                scratch.upper.update(from: x + 2 * row * w, count: w)
                                scratch.lower.update(from: x + (2 * row + 1) * w, count: w)
                                Self.pool(scratch.upper, scratch.lower, scratch.values, scratch.choices)
                                (y + row * ow).update(from: scratch.values, count: ow)
                                (choices + row * ow).update(from: scratch.choices, count: ow)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Routes each output's gradient to the input element it took; the others get zero.
    ///
    /// With `rectifiedOutput` — this pool's forward output, when a ReLU came just before the
    /// pool — the gradient goes back through that ReLU as well, in the same pass: a window whose
    /// maximum is not positive passes nothing, exactly as the ReLU's backward would have zeroed
    /// its chosen element (the only one that gets a gradient).
    public func backward(_ dy: Tensor, into dx: inout Tensor, rectifiedOutput: Tensor? = nil) {
        precondition(rectifiedOutput == nil || rectifiedOutput!.shape == dy.shape, "pool output \(rectifiedOutput!.shape), gradient \(dy.shape)")
        dx.reshape(to: inputShape)
        let w = inputShape[3], ow = w / 2, rows = dy.count / max(1, ow)
        dy.scalars.withUnsafeBufferPointer { dy in
            choices.withUnsafeBufferPointer { choices in
                dx.scalars.withUnsafeMutableBufferPointer { dx in
                    withScalars(of: rectifiedOutput) { pooled in
                        let (dy, choices, dx) = (dy.baseAddress!, choices.baseAddress!, dx.baseAddress!)
                        Parallelism.forEach(rows, cost: 4 * w) { rows in
                            withScratch { scratch in
                                Self.forEachGroup(rows, outputWidth: ow) { row, ox in
                                    let (upper, lower) = (dx + 2 * row * w + 2 * ox, dx + (2 * row + 1) * w + 2 * ox)
                                    Self.route(dy + row * ow + ox, choices + row * ow + ox, pooled.map { $0 + row * ow + ox }, upper, lower)
                                } padded: { row in
                                    scratch.clear()
                                    scratch.values.update(from: dy + row * ow, count: ow)
                                    scratch.choices.update(from: choices + row * ow, count: ow)
                                    if let pooled { scratch.pooled.update(from: pooled + row * ow, count: ow) }
                                    Self.route(scratch.values, scratch.choices, pooled == nil ? nil : scratch.pooled, scratch.upper, scratch.lower)
                                    (dx + 2 * row * w).update(from: scratch.upper, count: w)
                                    (dx + (2 * row + 1) * w).update(from: scratch.lower, count: w)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Visits a range of output rows in groups of eight windows. `group(row, ox)` handles the
    /// eight outputs from `ox` in place: a row of eight or more outputs ends with a group that
    /// overlaps the one before (the same outputs again), and a shorter row's group reaches into
    /// the next rows — reading their inputs and writing their outputs (forward) or input
    /// gradients (backward) — which are done after it. The range's last short rows, with no
    /// rows of their own after them, go to `padded(row)`, through zero-padded scratch.
    @inline(__always)
    private static func forEachGroup(
        _ rows: Range<Int>, outputWidth ow: Int, group: (Int, Int) -> Void, padded: (Int) -> Void
    ) {
        for row in rows {
            if ow >= 8 {
                var ox = 0
                while ox < ow {
                    ox = min(ox, ow - 8)
                    group(row, ox)
                    ox += 8
                }
            } else if row + 8 < rows.upperBound {
                group(row, 0)
            } else {
                padded(row)
            }
        }
    }

    /// Eight windows of two rows: the top-left value, replaced by the top-right, bottom-left
    /// and bottom-right in turn when strictly larger (so the first of equal maxima wins, and a
    /// NaN that comes first stays). Selects, not branches: which element wins is data-dependent.
    /// (Vector operands throughout: the scalar forms of `replace` and `.==` compile to loops.)
    @inline(__always)
    private static func pool(
        _ upper: UnsafePointer<Float>, _ lower: UnsafePointer<Float>,
        _ y: UnsafeMutablePointer<Float>, _ choices: UnsafeMutablePointer<Int32>
    ) {
        let top = UnsafeRawPointer(upper).loadUnaligned(as: SIMD16<Float>.self)
        let bottom = UnsafeRawPointer(lower).loadUnaligned(as: SIMD16<Float>.self)
        var value = top.evenHalf
        var choice = SIMD8<Int32>()
        @inline(__always) func consider(_ candidate: SIMD8<Float>, _ k: Int32) {
            let larger = candidate .> value
            value.replace(with: candidate, where: larger)
            choice.replace(with: SIMD8(repeating: k), where: larger)
        }
        consider(top.oddHalf, 1)
        consider(bottom.evenHalf, 2)
        consider(bottom.oddHalf, 3)
        UnsafeMutableRawPointer(y).storeBytes(of: value, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(choices).storeBytes(of: choice, as: SIMD8<Int32>.self)
    }

    /// Eight outputs' gradients to their windows' 2×8 inputs: 0 + dy where chosen (as when
    /// gradients were added to a zeroed dx, so -0 becomes +0), else 0; with `pooled` (the
    /// outputs, after a ReLU), 0 for a window whose output is not positive.
    @inline(__always)
    private static func route(
        _ dy: UnsafePointer<Float>, _ choices: UnsafePointer<Int32>, _ pooled: UnsafePointer<Float>?,
        _ upper: UnsafeMutablePointer<Float>, _ lower: UnsafeMutablePointer<Float>
    ) {
        var gradient = UnsafeRawPointer(dy).loadUnaligned(as: SIMD8<Float>.self) + 0
        if let pooled {
            let positive = UnsafeRawPointer(pooled).loadUnaligned(as: SIMD8<Float>.self) .> 0
            gradient.replace(with: 0, where: .!positive)
        }
        let choice = UnsafeRawPointer(choices).loadUnaligned(as: SIMD8<Int32>.self)
        var parts = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
        parts.0.replace(with: gradient, where: choice .== SIMD8(repeating: 0))
        parts.1.replace(with: gradient, where: choice .== SIMD8(repeating: 1))
        parts.2.replace(with: gradient, where: choice .== SIMD8(repeating: 2))
        parts.3.replace(with: gradient, where: choice .== SIMD8(repeating: 3))
        var row = SIMD16<Float>()
        row.evenHalf = parts.0
        row.oddHalf = parts.1
        UnsafeMutableRawPointer(upper).storeBytes(of: row, as: SIMD16<Float>.self)
        row.evenHalf = parts.2
        row.oddHalf = parts.3
        UnsafeMutableRawPointer(lower).storeBytes(of: row, as: SIMD16<Float>.self)
    }
}

/// Zero-padded room for one group of eight windows (two 16-input rows, eight outputs and
/// their choices), for rows too short to load directly.
private struct PoolScratch {
    let upper: UnsafeMutablePointer<Float>
    let lower: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>
    /// The pool's outputs, for a backward pass through a ReLU before it.
    let pooled: UnsafeMutablePointer<Float>
    let choices: UnsafeMutablePointer<Int32>

    func clear() {
        upper.update(repeating: 0, count: 16)
        lower.update(repeating: 0, count: 16)
        values.update(repeating: 0, count: 8)
        pooled.update(repeating: 0, count: 8)
        choices.update(repeating: 0, count: 8)
    }
}

private func withScratch(_ body: (PoolScratch) -> Void) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 48) { floats in
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 8) { ints in
            let f = floats.baseAddress!
            body(PoolScratch(upper: f, lower: f + 16, values: f + 32, pooled: f + 40, choices: ints.baseAddress!))
        }
    }
}

extension MaxPool2D: ReLUAbsorbingLayer {
    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        forward(input, into: &layerOutput)
        return layerOutput
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        backward(outputGradient, into: &layerInputGradient, rectifiedOutput: absorbsReLU ? layerOutput : nil)
        return layerInputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 4, shape[2] % 2 == 0, shape[3] % 2 == 0, shape[2] > 0, shape[3] > 0 else {
            throw ModelError.invalidShape("2×2 max pooling needs [N, C, H, W] input with even H and W, got \(shape)")
        }
        return [shape[0], shape[1], shape[2] / 2, shape[3] / 2]
    }
}

/// Global average pooling: [N, C, H, W] → [N, C], each plane's mean.
public final class GlobalAveragePool: ReLUAbsorbingLayer {
    private var inputShape: [Int] = []
    /// As a `Layer`: its output and input gradient.
    private var layerOutput = Tensor(shape: [0])
    private var layerInputGradient = Tensor(shape: [0])
    var absorbsReLU = false
    /// With `absorbsReLU`, a training forward's input (the ReLU's output), until the backward.
    private var rectifiedInput = Tensor(shape: [0])

    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        if absorbsReLU && mode == .training { rectifiedInput = input }
        forward(input, into: &layerOutput)
        return layerOutput
    }

    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        // Lets go of the input, which is the layer before's buffer, so that its next forward
        // overwrites it in place.
        defer { rectifiedInput = Tensor(shape: [0]) }
        backward(outputGradient, into: &layerInputGradient, rectifiedInput: absorbsReLU ? rectifiedInput : nil)
        return layerInputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 4, shape[2] > 0, shape[3] > 0 else {
            throw ModelError.invalidShape("global average pooling needs [N, C, H, W] input, got \(shape)")
        }
        return [shape[0], shape[1]]
    }

    public init() {}

    public func forward(_ x: Tensor, into y: inout Tensor) {
        inputShape = x.shape
        let (n, c, p) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        y.reshape(to: [n, c])
        x.scalars.withUnsafeBufferPointer { x in
            for plane in 0..<(n * c) {
                y.scalars[plane] = Float(VectorKernels.sum(x.baseAddress! + plane * p, p) / Double(p))
            }
        }
    }

    /// dx = dy / P over each plane. With `rectifiedInput` — the forward input, when it is a
    /// ReLU's output — the gradient goes back through that ReLU as well: 0 where the input is
    /// not positive.
    public func backward(_ dy: Tensor, into dx: inout Tensor, rectifiedInput: Tensor? = nil) {
        precondition(rectifiedInput == nil || rectifiedInput!.shape == inputShape, "ReLU output \(rectifiedInput!.shape), pool input \(inputShape)")
        let p = inputShape[2] * inputShape[3]
        dx.reshape(to: inputShape)
        dx.scalars.withUnsafeMutableBufferPointer { dx in
            withScalars(of: rectifiedInput) { x in
                let dx = dx.baseAddress!
                for plane in 0..<dy.count {
                    let gradient = dy.scalars[plane] / Float(p), first = plane * p
                    if let x {
                        for i in first..<(first + p) { dx[i] = x[i] > 0 ? gradient : 0 }
                    } else {
                        (dx + first).update(repeating: gradient, count: p)
                    }
                }
            }
        }
    }
}

/// Calls `body` with the address of the tensor's scalars, or with nil when there is no tensor.
private func withScalars<Result>(of tensor: Tensor?, _ body: (UnsafePointer<Float>?) -> Result) -> Result {
    guard let tensor else { return body(nil) }
    return tensor.scalars.withUnsafeBufferPointer { body($0.baseAddress) }
}
