/// Filter response normalization with a thresholded linear unit (Singh & Krishnan 2020,
/// https://arxiv.org/abs/1911.09737): each (sample, channel) plane is divided by the root mean
/// square of its values over H and W, with no mean subtracted and no batch dependence, then
/// scaled, shifted and thresholded by a learned τ in place of the ReLU:
/// `y = max(γ · x / sqrt(ν² + ε) + β, τ)`, `ν² = mean over H, W of x²`. τ starts at 0 and takes
/// no weight decay. Training and inference are the same; it needs `[N, C, H, W]` input.
///
/// Backward, with r = 1/sqrt(ν² + ε), x̂ = x·r, z = γ·x̂ + β and P positions per plane: the
/// threshold passes dy to z where z > τ and to τ elsewhere (dτ = Σ dy there); then
/// `dx = γ·r·(dz − x̂ · mean(dz·x̂))` over the plane, `dγ = Σ dz·x̂`, `dβ = Σ dz`.
public final class FilterResponseNorm: PerSampleNormalizer {
    public var kind: NormalizerKind { .frn }
    public let channelCount: Int
    public let epsilon: Float
    /// The per-channel scale, shift and threshold.
    public let gamma: Parameter, beta: Parameter, tau: Parameter
    public let parameters: [Parameter]
    /// The last forward's input and each plane's r, for the backward pass.
    private var input: Tensor?
    private var layout: NormalizationLayout?
    private var inverseRMS: [Float] = []
    /// Each plane's terms of dγ, dβ and dτ from the last backward pass.
    private var terms = SampleGradientTerms()

    /// - Throws: `NormalizerError` for a non-positive channel count or epsilon.
    public init(channelCount: Int, epsilon: Float = FilterResponseNorm.defaultEpsilon) throws {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        try NormalizerError.checkEpsilon(epsilon)
        (self.channelCount, self.epsilon) = (channelCount, epsilon)
        (gamma, beta) = (.gamma(channelCount: channelCount), .beta(channelCount: channelCount))
        tau = Parameter("tau", repeating: 0, count: channelCount, decays: false)
        parameters = [gamma, beta, tau]
    }

    /// The paper's ε for feature maps larger than 1×1.
    public static let defaultEpsilon: Float = 1e-6

    /// A copy with the same settings and the same parameter objects.
    private init(sharingParametersOf other: FilterResponseNorm) {
        (channelCount, epsilon) = (other.channelCount, other.epsilon)
        (gamma, beta, tau, parameters) = (other.gamma, other.beta, other.tau, other.parameters)
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor) throws {
        let layout = try NormalizationLayout(shape: input.shape, channelCount: channelCount, kind: kind, requiresSpatial: true)
        let (c, p) = (layout.channels, layout.spatial)
        if inverseRMS.count != layout.batch * c { inverseRMS = [Float](repeating: 0, count: layout.batch * c) }
        output.reshape(to: input.shape)
        let (gamma, beta, tau) = (gamma.value, beta.value, tau.value)
        input.scalars.withUnsafeBufferPointer { x in
            output.scalars.withUnsafeMutableBufferPointer { y in
                for plane in 0..<layout.batch * c {
                    let channel = plane % c, first = plane * p
                    var squares = 0.0
                    for i in first..<first + p { squares += Double(x[i] * x[i]) }
                    let r = 1 / (Float(squares / Double(p)) + epsilon).squareRoot()
                    inverseRMS[plane] = r
                    for i in first..<first + p { y[i] = max(gamma[channel] * (x[i] * r) + beta[channel], tau[channel]) }
                }
            }
        }
        self.input = input
        self.layout = layout
    }

    public func sharingParameters() -> any PerSampleNormalizer { FilterResponseNorm(sharingParametersOf: self) }

    public func inputGradient(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        guard let input, let layout else { throw NormalizerError.backwardWithoutForward }
        guard gradOutput.shape == input.shape else {
            throw NormalizerError.gradientShapeMismatch(expected: input.shape, got: gradOutput.shape)
        }
        self.input = nil
        let (c, p) = (layout.channels, layout.spatial), planes = layout.batch * c
        terms.reset(parameterCount: 3, batch: layout.batch, channels: c)
        let (gamma, beta, tau) = (gamma.value, beta.value, tau.value)
        gradInput.reshape(to: input.shape)
        input.scalars.withUnsafeBufferPointer { x in
            gradOutput.scalars.withUnsafeBufferPointer { dy in
                gradInput.scalars.withUnsafeMutableBufferPointer { dx in
                    for plane in 0..<planes {
                        let channel = plane % c, first = plane * p, r = inverseRMS[plane]
                        var (sumDz, sumDzNormalized, sumDtau) = (0.0, 0.0, 0.0)
                        for i in first..<first + p {
                            let normalized = x[i] * r
                            if gamma[channel] * normalized + beta[channel] > tau[channel] {
                                sumDz += Double(dy[i])
                                sumDzNormalized += Double(dy[i] * normalized)
                            } else {
                                sumDtau += Double(dy[i])
                            }
                        }
                        let sample = plane / c
                        terms[0, sample, channel] = Float(sumDzNormalized)
                        terms[1, sample, channel] = Float(sumDz)
                        terms[2, sample, channel] = Float(sumDtau)
                        let scale = gamma[channel] * r, meanProjection = Float(sumDzNormalized / Double(p))
                        for i in first..<first + p {
                            let normalized = x[i] * r
                            let dz = gamma[channel] * normalized + beta[channel] > tau[channel] ? dy[i] : 0
                            dx[i] = scale * (dz - normalized * meanProjection)
                        }
                    }
                }
            }
        }
    }

    public func addParameterGradients(to parameters: [Parameter]) { terms.add(to: parameters) }

    public func releaseSavedInput() {
        input = nil
    }
}

extension NormalizerKind {
    public static let frn = NormalizerKind(registering: "frn")
}

extension FilterResponseNorm {
    /// Its entry in the lab (`NormalizerRegistry`).
    static let registration = NormalizerRegistration(
        kind: .frn, displayName: "FRN",
        summary: "per sample and channel, divided by the root mean square over H, W; its learned threshold (TLU) replaces the ReLU after it",
        defaultEpsilon: FilterResponseNorm.defaultEpsilon, replacesReLU: true
    ) { settings, channels in
        try FilterResponseNorm(channelCount: channels, epsilon: settings.epsilon)
    }
}
