/// RMSNorm (Zhang & Sennrich 2019, https://arxiv.org/abs/1910.07467): layer norm without
/// centring. Each sample is divided by the root mean square of its values over C, H, W (over C
/// for `[N, C]`), then scaled per channel: `y = γ · x / sqrt(mean(x²) + ε)`. No shift, no
/// running state: training and inference are the same.
///
/// Backward, with r = 1/sqrt(mean(x²) + ε), x̂ = x·r and S values per sample:
/// `dx = r · (γ·dy − x̂ · mean(γ·dy·x̂))`, `dγ = Σ dy·x̂` over the samples and positions.
public final class RMSNorm: PerSampleNormalizer, RectifyingNormalizer {
    public var kind: NormalizerKind { .rms }
    public let channelCount: Int
    public let epsilon: Float
    /// The per-channel scale.
    public let gamma: Parameter
    public let parameters: [Parameter]
    /// The last forward's input and each sample's r, for the backward pass.
    private var input: Tensor?
    private var layout: NormalizationLayout?
    private var inverseRMS: [Float] = []
    /// Each sample's terms of dγ from the last backward pass.
    private var terms = SampleGradientTerms()

    /// - Throws: `NormalizerError` for a non-positive channel count or epsilon.
    public init(channelCount: Int, epsilon: Float = NormalizerSettings.defaultEpsilon) throws {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        try NormalizerError.checkEpsilon(epsilon)
        (self.channelCount, self.epsilon) = (channelCount, epsilon)
        gamma = .gamma(channelCount: channelCount)
        parameters = [gamma]
    }

    /// A copy with the same settings and the same `gamma` object.
    private init(sharingParametersOf other: RMSNorm) {
        (channelCount, epsilon, gamma, parameters) = (other.channelCount, other.epsilon, other.gamma, other.parameters)
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws {
        let layout = try NormalizationLayout(shape: input.shape, channelCount: channelCount, kind: kind)
        let (c, s) = (layout.channels, layout.spatial), size = c * s
        if inverseRMS.count != layout.batch { inverseRMS = [Float](repeating: 0, count: layout.batch) }
        output.reshape(to: input.shape)
        // Each sample on one thread, start to finish: the same bits on any thread count.
        input.scalars.withUnsafeBufferPointer { x in
            output.scalars.withUnsafeMutableBufferPointer { y in
                inverseRMS.withUnsafeMutableBufferPointer { inverseRMS in
                    gamma.value.withUnsafeBufferPointer { gamma in
                        let (x, y) = (x.baseAddress!, y.baseAddress!)
                        Parallelism.forEach(layout.batch, cost: 2 * size) { samples in
                            for sample in samples {
                                let first = sample * size
                                let meanSquare = Float(VectorKernels.sumOfSquaredDeviations(x + first, size, mean: 0) / Double(size))
                                let r = 1 / (meanSquare + epsilon).squareRoot()
                                inverseRMS[sample] = r
                                for channel in 0..<c {
                                    let start = first + channel * s
                                    VectorKernels.affine(x + start, y + start, s, scale: gamma[channel] * r, shift: 0, rectifying: rectifying)
                                }
                            }
                        }
                    }
                }
            }
        }
        self.input = input
        self.layout = layout
    }

    public func sharingParameters() -> any PerSampleNormalizer { RMSNorm(sharingParametersOf: self) }

    public func inputGradient(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        guard let input, let layout else { throw NormalizerError.backwardWithoutForward }
        guard gradOutput.shape == input.shape else {
            throw NormalizerError.gradientShapeMismatch(expected: input.shape, got: gradOutput.shape)
        }
        self.input = nil
        let (c, s) = (layout.channels, layout.spatial), size = c * s
        terms.reset(parameterCount: 1, batch: layout.batch, channels: c)
        gradInput.reshape(to: input.shape)
        input.scalars.withUnsafeBufferPointer { x in
            gradOutput.scalars.withUnsafeBufferPointer { dy in
                gradInput.scalars.withUnsafeMutableBufferPointer { dx in
                    terms.withUnsafeMutableBufferPointer { sampleTerms in
                        gamma.value.withUnsafeBufferPointer { gamma in
                            let (x, dy, dx) = (x.baseAddress!, dy.baseAddress!, dx.baseAddress!)
                            Parallelism.forEach(layout.batch, cost: 3 * size) { samples in
                                for sample in samples {
                                    let first = sample * size, r = inverseRMS[sample]
                                    // Each channel's Σ dy·x̂ = r·Σ dy·x, and mean(γ·dy·x̂) over the sample.
                                    var projection = 0.0
                                    for channel in 0..<c {
                                        let start = first + channel * s
                                        let total = Double(r) * VectorKernels.gradientSums(dy + start, x + start, s, mean: 0).sumDyCentered
                                        sampleTerms[sample * c + channel] = Float(total)
                                        projection += Double(gamma[channel]) * total
                                    }
                                    // dx = r·γ·dy − r²·mean(γ·dy·x̂)·x
                                    let b = -r * r * Float(projection / Double(size))
                                    for channel in 0..<c {
                                        let start = first + channel * s
                                        VectorKernels.linearCombination(dy + start, x + start, dx + start, s, a: gamma[channel] * r, b: b, c: 0)
                                    }
                                }
                            }
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
    public static let rms = NormalizerKind(registering: "rms")
}

extension RMSNorm {
    /// Its entry in the lab (`NormalizerRegistry`).
    static let registration = NormalizerRegistration(
        kind: .rms, displayName: "RMSNorm", summary: "per sample, over C, H, W, divided by the root mean square (no centring, no shift)"
    ) { settings, channels in
        try RMSNorm(channelCount: channels, epsilon: settings.epsilon)
    }
}
