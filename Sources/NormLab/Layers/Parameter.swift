/// A trainable array of a convolution or linear layer, with its gradient.
///
/// Normalizers keep their gamma and beta themselves (`Normalizer.parameters`); the optimizer
/// reaches both kinds through `ParameterReference`.
public final class Parameter {
    public var value: [Float]
    /// dL/dvalue from the last backward pass.
    public var gradient: [Float]

    init(_ value: [Float]) {
        self.value = value
        gradient = [Float](repeating: 0, count: value.count)
    }
}
