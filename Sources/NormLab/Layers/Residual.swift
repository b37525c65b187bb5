/// A residual block (He et al. 2016, https://arxiv.org/abs/1512.03385): `ReLU(body(x) + shortcut(x))`,
/// the shortcut the identity or a projection.
public final class Residual: Layer {
    public let body: Sequential
    /// nil: the identity.
    public let shortcut: Sequential?
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])
    private var sumGradient = Tensor(shape: [0])

    public init(body: Sequential, shortcut: Sequential? = nil) {
        self.body = body
        self.shortcut = shortcut
    }

    /// max(body(x) + shortcut(x), 0), the addition and the ReLU in one pass.
    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        let branch = try body.forward(input, mode: mode)
        let skip = try shortcut?.forward(input, mode: mode) ?? input
        precondition(branch.shape == skip.shape, "a residual body of shape \(branch.shape), a shortcut of \(skip.shape)")
        output.reshape(to: branch.shape)
        elementwise(branch, skip, into: &output) { max($0 + $1, 0) }
        return output
    }

    /// The ReLU's mask, then each branch's backward pass; their input gradients add up.
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        try backward(outputGradient, through: { try $0.backward($1) })
    }

    /// `backward`, each branch's pass by `pass`.
    private func backward(_ outputGradient: Tensor, through pass: (Sequential, Tensor) throws -> Tensor) throws -> Tensor {
        sumGradient.reshape(to: outputGradient.shape)
        elementwise(outputGradient, output, into: &sumGradient) { $1 > 0 ? $0 : 0 }
        let throughBody = try pass(body, sumGradient)
        let throughShortcut = try shortcut.map { try pass($0, sumGradient) } ?? sumGradient
        inputGradient.reshape(to: throughBody.shape)
        elementwise(throughBody, throughShortcut, into: &inputGradient) { $0 + $1 }
        return inputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] {
        let branch = try body.outputShape(for: shape)
        let skip = try shortcut?.outputShape(for: shape) ?? shape
        guard branch == skip else {
            throw ModelError.invalidShape("a residual block's body gives \(branch) but its shortcut \(skip): the shape changes, so it needs a projection")
        }
        return branch
    }

    public var sublayers: [any Layer] { [body] + (shortcut.map { [$0] } ?? []) }
}

extension Residual: LaneLayer {
    func makeLane() throws -> (any Layer)? {
        guard let body = try body.makeLane() as? Sequential else { return nil }
        guard let shortcut else { return Residual(body: body) }
        guard let laneShortcut = try shortcut.makeLane() as? Sequential else { return nil }
        return Residual(body: body, shortcut: laneShortcut)
    }

    func prepare(_ lane: any Layer) {
        let lane = lane as! Residual
        body.prepare(lane.body)
        if let shortcut, let laneShortcut = lane.shortcut { shortcut.prepare(laneShortcut) }
    }

    /// `backward` through `inputGradient` of the branches.
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        try backward(outputGradient, through: { try $0.inputGradient($1) })
    }

    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        let lane = lane as! Residual
        body.addParameterGradients(from: lane.body, piece: piece)
        if let shortcut, let laneShortcut = lane.shortcut { shortcut.addParameterGradients(from: laneShortcut, piece: piece) }
    }
}

/// A learnable scalar times its input, y = α·x (α also known as the SkipInit gain, De & Smith
/// 2020, https://arxiv.org/abs/2002.10444: at the end of a residual branch, starting at 0, it
/// lets a network without normalization train as if shallow at first).
public final class Scale: Layer {
    /// [α]
    public let scale: Parameter
    private var input = Tensor(shape: [0])
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])

    /// In a lane (`LaneLayer`): dL/dy of its share, for dα; nil outside lanes.
    private var laneOutputGradient: Tensor?
    /// dα's sum over the shares of a batch so far.
    private var laneTotal = 0.0

    public init(initialValue: Float) {
        scale = Parameter([initialValue])
    }

    private init(sharingParametersOf other: Scale) {
        scale = other.scale
        laneOutputGradient = Tensor(shape: [0])
    }

    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        self.input = mode == .training ? input : Tensor(shape: [0])
        let alpha = scale.value[0]
        output.reshape(to: input.shape)
        elementwise(input, input, into: &output) { x, _ in alpha * x }
        return output
    }

    /// dα = Σ dy·x, in element order (in Double); dx = α·dy.
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        var total = 0.0
        addProducts(outputGradient, to: &total)
        scale.gradient[0] = Float(total)
        return try inputGradient(outputGradient)
    }

    /// Adds Σ dy·x over the last forward's elements, in order, to `total`.
    private func addProducts(_ outputGradient: Tensor, to total: inout Double) {
        for (dy, x) in zip(outputGradient.scalars, input.scalars) { total += Double(dy * x) }
    }

    /// dx = α·dy; lets go of the input, after `addProducts` in a lane's case.
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        if laneOutputGradient == nil { input = Tensor(shape: [0]) } else { laneOutputGradient = outputGradient }
        let alpha = scale.value[0]
        inputGradient.reshape(to: outputGradient.shape)
        elementwise(outputGradient, outputGradient, into: &inputGradient) { dy, _ in alpha * dy }
        return inputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] { shape }

    /// α, which weight decay leaves alone (like gamma).
    public func visitOwnParameters(_ body: ParameterVisitor) {
        body(&scale.value, scale.gradient, false)
    }
}

extension Scale: LaneLayer {
    func makeLane() throws -> (any Layer)? { Scale(sharingParametersOf: self) }
    func prepare(_ lane: any Layer) {}

    /// The shares' Σ dy·x go on in sample order, in one Double: the same sum as one pass.
    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        let lane = lane as! Scale
        if piece.isFirst { laneTotal = 0 }
        lane.addProducts(lane.laneOutputGradient!, to: &laneTotal)
        lane.input = Tensor(shape: [0])
        if piece.isLast { scale.gradient[0] = Float(laneTotal) }
    }
}

/// z[i] = f(x[i], y[i]) over tensors of one size, split across threads (each element is one
/// thread's, so the bits do not depend on the thread count).
@inline(__always)
func elementwise(_ x: Tensor, _ y: Tensor, into z: inout Tensor, _ f: (Float, Float) -> Float) {
    let count = z.count, chunk = 4_096
    precondition(x.count == count && y.count == count)
    guard count > 0 else { return }
    x.scalars.withUnsafeBufferPointer { x in
        y.scalars.withUnsafeBufferPointer { y in
            z.scalars.withUnsafeMutableBufferPointer { z in
                let (x, y, z) = (x.baseAddress!, y.baseAddress!, z.baseAddress!)
                Parallelism.forEach((count + chunk - 1) / chunk, cost: chunk) { chunks in
                    for i in (chunks.lowerBound * chunk)..<min(count, chunks.upperBound * chunk) { z[i] = f(x[i], y[i]) }
                }
            }
        }
    }
}
