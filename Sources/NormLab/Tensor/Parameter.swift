/// A trainable array — a convolution's weights, a normalizer's gamma — with its gradient.
///
/// Every layer's parameters, a normalizer's included, are visited by one traversal
/// (`Layer.visitParameters`) and updated by the same optimizer; whether weight decay applies is
/// the parameter's own property. Copies of a layer that share its parameters (the engine's,
/// one per thread) hold references to the same objects.
public final class Parameter {
    /// What the layer calls it (`weight`, `bias`, `gamma`, `beta`), as fixtures name it.
    public let name: String
    public var value: [Float]
    /// dL/dvalue from the last backward pass.
    public var gradient: [Float]
    /// Whether L2 weight decay applies (convolution and linear weights; not biases, nor a
    /// normalizer's per-channel vectors).
    public let decays: Bool

    public init(_ name: String, _ value: [Float], decays: Bool) {
        self.name = name
        self.value = value
        self.decays = decays
        gradient = [Float](repeating: 0, count: value.count)
    }

    /// `count` copies of `value`.
    public convenience init(_ name: String, repeating value: Float, count: Int, decays: Bool) {
        self.init(name, [Float](repeating: value, count: count), decays: decays)
    }
}
