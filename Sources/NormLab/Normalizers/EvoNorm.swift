/// EvoNorm-S0 (Liu et al. 2020, https://arxiv.org/abs/2004.02967): a normalizer and activation
/// in one, found by search, with no batch dependence. With G groups of channels as in group norm,
/// `y = x · sigmoid(v · x) / sqrt(var_g(x) + ε) · γ + β`, where var_g is the biased variance over
/// the sample's group of channels and H, W (the numerator is not centred) and v a learnable
/// per-channel vector that starts at 1 and takes no weight decay. Its sigmoid gate replaces the
/// ReLU after it. Training and inference are the same; it needs `[N, C, H, W]` input.
///
/// Backward, with s = sigmoid(v·x), u = x·s, r = 1/sqrt(var + ε) and M values per group:
/// `dβ = Σ dy`, `dγ = Σ dy·u·r`, du = dy·γ·r, `dv = Σ du·x²·s(1−s)`, and
/// `dx = du·(s + v·x·s(1−s)) − r³·(x − μ)/M · Σ_group dy·γ·u`.
public final class EvoNorm: PerSampleNormalizer {
    public var kind: NormalizerKind { .evonorm }
    public let channelCount: Int
    /// G; it divides `channelCount`.
    public let groupCount: Int
    public let epsilon: Float
    /// The per-channel scale, shift and gate slope.
    public let gamma: Parameter, beta: Parameter, v: Parameter
    public let parameters: [Parameter]
    /// The last forward's input and each group's mean and r, for the backward pass.
    private var input: Tensor?
    private var layout: NormalizationLayout?
    private var groupMean: [Float] = []
    private var groupInverse: [Float] = []
    /// sigmoid(v·x) of the last forward, element by element: the backward pass's gates.
    private var gates: [Float] = []
    /// Each (sample, channel)'s terms of dγ, dβ and dv from the last backward pass.
    private var terms = SampleGradientTerms()

    /// - Throws: `NormalizerError` when the channel or group count is not positive, the group
    ///   count does not divide the channel count, or epsilon is not positive.
    public init(channelCount: Int, groupCount: Int, epsilon: Float = NormalizerSettings.defaultEpsilon) throws {
        guard channelCount > 0 else { throw NormalizerError.invalidChannelCount(channelCount) }
        guard groupCount > 0 else { throw NormalizerError.invalidGroupCount(groupCount) }
        guard channelCount % groupCount == 0 else {
            throw NormalizerError.groupsDoNotDivideChannels(channels: channelCount, groups: groupCount)
        }
        try NormalizerError.checkEpsilon(epsilon)
        (self.channelCount, self.groupCount, self.epsilon) = (channelCount, groupCount, epsilon)
        (gamma, beta) = (.gamma(channelCount: channelCount), .beta(channelCount: channelCount))
        v = Parameter("v", repeating: 1, count: channelCount, decays: false)
        parameters = [gamma, beta, v]
    }

    /// A copy with the same settings and the same parameter objects.
    private init(sharingParametersOf other: EvoNorm) {
        (channelCount, groupCount, epsilon) = (other.channelCount, other.groupCount, other.epsilon)
        (gamma, beta, v, parameters) = (other.gamma, other.beta, other.v, other.parameters)
    }

    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor) throws {
        let layout = try NormalizationLayout(shape: input.shape, channelCount: channelCount, kind: kind, requiresSpatial: true)
        let (c, p) = (layout.channels, layout.spatial), perGroup = c / groupCount, size = perGroup * p
        let groups = layout.batch * groupCount
        if groupMean.count != groups { (groupMean, groupInverse) = ([Float](repeating: 0, count: groups), [Float](repeating: 0, count: groups)) }
        output.reshape(to: input.shape)
        if gates.count != input.count { gates = [Float](repeating: 0, count: input.count) }
        let (gamma, beta, v, epsilon) = (gamma.value, beta.value, v.value, epsilon)
        // Each group on one thread, start to finish: the same bits on any thread count.
        input.scalars.withUnsafeBufferPointer { x in
            output.scalars.withUnsafeMutableBufferPointer { y in
                groupMean.withUnsafeMutableBufferPointer { groupMean in
                    groupInverse.withUnsafeMutableBufferPointer { groupInverse in
                        gates.withUnsafeMutableBufferPointer { gates in
                            let (x, y) = (x.baseAddress!, y.baseAddress!)
                            Parallelism.forEach(groups, cost: 8 * size) { groupRange in
                                for group in groupRange {
                                    let first = group * size
                                    let mean = Float(VectorKernels.sum(x + first, size) / Double(size))
                                    let variance = Float(VectorKernels.sumOfSquaredDeviations(x + first, size, mean: mean) / Double(size))
                                    let r = 1 / (variance + epsilon).squareRoot()
                                    (groupMean[group], groupInverse[group]) = (mean, r)
                                    for plane in first / p..<(first + size) / p {
                                        let channel = plane % c
                                        VectorKernels.gatedScale(
                                            x + plane * p, gates: gates.baseAddress! + plane * p, y + plane * p, p,
                                            slope: v[channel], scale: gamma[channel] * r, shift: beta[channel])
                                    }
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

    public func sharingParameters() -> any PerSampleNormalizer { EvoNorm(sharingParametersOf: self) }

    public func inputGradient(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        guard let input, let layout else { throw NormalizerError.backwardWithoutForward }
        guard gradOutput.shape == input.shape else {
            throw NormalizerError.gradientShapeMismatch(expected: input.shape, got: gradOutput.shape)
        }
        self.input = nil
        let (c, p) = (layout.channels, layout.spatial), perGroup = c / groupCount, size = perGroup * p
        terms.reset(parameterCount: 3, batch: layout.batch, channels: c)
        let (gamma, v) = (gamma.value, v.value)
        let planes = layout.batch * c
        gradInput.reshape(to: input.shape)
        input.scalars.withUnsafeBufferPointer { x in
            gradOutput.scalars.withUnsafeBufferPointer { dy in
                gradInput.scalars.withUnsafeMutableBufferPointer { dx in
                    terms.withUnsafeMutableBufferPointer { planeTerms in
                        groupMean.withUnsafeBufferPointer { groupMean in
                            groupInverse.withUnsafeBufferPointer { groupInverse in
                                gates.withUnsafeBufferPointer { gates in
                                    let (x, dy, dx) = (x.baseAddress!, dy.baseAddress!, dx.baseAddress!)
                                    Parallelism.forEach(layout.batch * groupCount, cost: 16 * size) { groupRange in
                                        for group in groupRange {
                                            let r = groupInverse[group], mean = groupMean[group]
                                            // Σ dy·γ·u over the group: dL/dr.
                                            var gradientOfInverse = 0.0
                                            for planeIndex in group * perGroup..<(group + 1) * perGroup {
                                                let channel = planeIndex % c, g = gamma[channel]
                                                var (sumDyU, sumDy, sumDv) = (0.0, 0.0, 0.0)
                                                for i in planeIndex * p..<(planeIndex + 1) * p {
                                                    let s = gates[i], u = x[i] * s
                                                    sumDyU += Double(dy[i] * u)
                                                    sumDy += Double(dy[i])
                                                    sumDv += Double(dy[i] * g * r * x[i] * x[i] * s * (1 - s))
                                                }
                                                (planeTerms[planeIndex], planeTerms[planes + planeIndex], planeTerms[2 * planes + planeIndex]) =
                                                    (Float(sumDyU) * r, Float(sumDy), Float(sumDv))
                                                gradientOfInverse += Double(g) * sumDyU
                                            }
                                            let varianceTerm = -r * r * r * Float(gradientOfInverse) / Float(size)
                                            for planeIndex in group * perGroup..<(group + 1) * perGroup {
                                                let channel = planeIndex % c, (g, slope) = (gamma[channel] * r, v[channel])
                                                for i in planeIndex * p..<(planeIndex + 1) * p {
                                                    let s = gates[i]
                                                    dx[i] = dy[i] * g * (s + slope * x[i] * s * (1 - s)) + varianceTerm * (x[i] - mean)
                                                }
                                            }
                                        }
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
    public static let evonorm = NormalizerKind(registering: "evonorm")
}

extension EvoNorm {
    /// Its entry in the lab (`NormalizerRegistry`).
    static let registration = NormalizerRegistration(
        kind: .evonorm, displayName: "EvoNorm-S0",
        summary: "x·sigmoid(v·x) over the standard deviation of the sample's group of C/G channels and H, W; replaces the ReLU after it",
        settings: [.groups], replacesReLU: true, benchmark: .init(settings: ["groups": 8])
    ) { settings, channels in
        try EvoNorm(channelCount: channels, groupCount: settings.value("groups") ?? min(8, channels), epsilon: settings.epsilon)
    }
}
