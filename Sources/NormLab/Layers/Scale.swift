/// A learnable scalar times its input, y = α·x (α also known as the SkipInit gain, De & Smith
/// 2020, https://arxiv.org/abs/2002.10444: at the end of a residual branch, starting at 0, it
/// lets a network without normalization train as if shallow at first).
public final class Scale: Layer {
    /// [α]
    public let scale: Parameter
    /// α, which weight decay leaves alone (like gamma).
    public let parameters: [Parameter]
    var input = Tensor(shape: [0])
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])

    /// dL/dy, kept with the input when dα is added up later (by the engine); nil
    /// when the backward pass sets dα itself and lets go of the input.
    var keptOutputGradient: Tensor?
    /// dα's sum over the samples so far, when it is added up later.
    var gradientTotal = 0.0

    public init(initialValue: Float) {
        scale = Parameter("alpha", [initialValue], decays: false)
        parameters = [scale]
    }

    /// A layer that shares `other`'s α (the same `Parameter`) and keeps dL/dy for dα.
    init(sharingParametersOf other: Scale) {
        scale = other.scale
        parameters = other.parameters
        keptOutputGradient = Tensor(shape: [0])
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
    func addProducts(_ outputGradient: Tensor, to total: inout Double) {
        for (dy, x) in zip(outputGradient.scalars, input.scalars) { total += Double(dy * x) }
    }

    /// dx = α·dy; lets go of the input, or keeps dL/dy with it for dα.
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        if keptOutputGradient == nil { input = Tensor(shape: [0]) } else { keptOutputGradient = outputGradient }
        let alpha = scale.value[0]
        inputGradient.reshape(to: outputGradient.shape)
        elementwise(outputGradient, outputGradient, into: &inputGradient) { dy, _ in alpha * dy }
        return inputGradient
    }

    public func outputShape(for shape: [Int]) throws -> [Int] { shape }
}
