/// A learnable scalar times its input, y = α·x (α also known as the SkipInit gain, De & Smith
/// 2020, https://arxiv.org/abs/2002.10444: at the end of a residual branch, starting at 0, it
/// lets a network without normalization train as if shallow at first).
public final class Scale: Layer {
    /// [α]
    public let scale: Parameter
    /// α, which weight decay leaves alone (like gamma).
    public let parameters: [Parameter]
    private var input = Tensor(shape: [0])
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])

    /// In a lane (`LaneLayer`): dL/dy of its share, for dα; nil outside lanes.
    private var laneOutputGradient: Tensor?
    /// dα's sum over the shares of a batch so far.
    private var laneTotal = 0.0

    public init(initialValue: Float) {
        scale = Parameter("alpha", [initialValue], decays: false)
        parameters = [scale]
    }

    private init(sharingParametersOf other: Scale) {
        scale = other.scale
        parameters = other.parameters
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


}

extension Scale: LaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? { Scale(sharingParametersOf: self) }
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
