/// A normalizer whose inference is batch norm's per-channel affine map of fixed statistics,
/// `γ·(x − μ)·(1/σ) + β`, which `BatchNormFolding` folds into the convolution before it: batch
/// norm, batch renorm, and the normalizers built on batch norm (ghost and noisy batch norm).
public protocol FoldableNormalizer: Normalizer {
    var gamma: Parameter { get }
    var beta: Parameter { get }
    /// The per-channel mean and 1/σ an inference forward pass normalizes with.
    func inferenceStatistics() -> (mean: [Float], invStd: [Float])
}

extension BatchNorm: FoldableNormalizer {}
extension BatchRenorm: FoldableNormalizer {}

/// Batch norm folded into the convolution before it, for inference. In inference a batch-norm
/// layer (or batch renorm, whose inference is the same transform of its running mean and std,
/// or any other `FoldableNormalizer`) is a per-channel affine map, `y = γ·(z − μ)/σ + β`, of the convolution's output `z = W∗x + b`;
/// with `s = γ/σ` the two are one convolution,
///
///     W' = s·W (each output channel's weights),   b' = s·(b − μ) + β,
///
/// so a deployed network spends no time on normalization. With weight standardization, W is the
/// standardized Ŵ. `fold` makes that network from a trained one with placement `before`; the
/// folded network is a copy for inference: fold again after more training.
public enum BatchNormFolding {
    /// `network` with every batch norm, batch renorm and other `FoldableNormalizer` folded into
    /// its convolution; the other layers are copied.
    /// - Parameter magnitudes: instead, the network of magnitudes that a float32 rounding-error
    ///   bound propagates through (`|W'|` for every weight, `|s·b| + |s·μ| + |β|` for a folded bias,
    ///   `|b|` otherwise), to be run on `|x|`.
    /// - Throws: `ModelError.invalidShape` for a normalizer that is not folded (a normalizer
    ///   after the ReLU, or one whose inference is not a fixed per-channel affine map).
    public static func fold(_ network: Network, magnitudes: Bool = false) throws -> Network {
        Network(try folded(network.body.layers, magnitudes: magnitudes))
    }

    /// Whether `normalizer`'s inference is an affine map of running statistics that `fold` folds.
    public static func folds(_ normalizer: any Normalizer) -> Bool { normalizer is any FoldableNormalizer }

    private static func folded(_ layers: [any Layer], magnitudes: Bool) throws -> [any Layer] {
        var result: [any Layer] = []
        var index = 0
        while index < layers.count {
            let layer = layers[index]
            index += 1
            switch layer {
            case let convolution as Conv2D:
                var norm: (any FoldableNormalizer)?
                if index < layers.count, let next = layers[index] as? NormalizerLayer {
                    guard let foldable = next.normalizer as? any FoldableNormalizer else {
                        throw ModelError.invalidShape("\(next.normalizer.kind.displayName) cannot be folded into a convolution: only batch norm and the normalizers built on it (batch renorm, ghost and noisy batch norm) are a fixed per-channel affine map in inference")
                    }
                    norm = foldable
                    index += 1
                }
                result.append(fold(convolution, norm, magnitudes: magnitudes))
            case let residual as Residual:
                result.append(Residual(
                    body: Sequential(try folded(residual.body.layers, magnitudes: magnitudes)),
                    shortcut: try residual.shortcut.map { Sequential(try folded($0.layers, magnitudes: magnitudes)) }))
            case let sequential as Sequential:
                result.append(Sequential(try folded(sequential.layers, magnitudes: magnitudes)))
            case let linear as Linear:
                var generator = SeededGenerator(seed: 0)
                let copy = Linear(inputCount: linear.inputCount, outputCount: linear.outputCount, generator: &generator)
                copy.weight.value = magnitudes ? linear.weight.value.map(abs) : linear.weight.value
                copy.bias.value = magnitudes ? linear.bias.value.map(abs) : linear.bias.value
                result.append(copy)
            case let scale as Scale:
                let copy = Scale(initialValue: magnitudes ? abs(scale.scale.value[0]) : scale.scale.value[0])
                result.append(copy)
            case is ReLU: result.append(ReLU())
            case is MaxPool2D: result.append(MaxPool2D())
            case is GlobalAveragePool: result.append(GlobalAveragePool())
            case let norm as NormalizerLayer:
                throw ModelError.invalidShape("\(norm.normalizer.kind.displayName) does not follow a convolution here (placement after?): there is nothing to fold it into")
            default:
                throw ModelError.invalidShape("\(type(of: layer)) cannot be copied into a folded network")
            }
        }
        return result
    }

    /// One convolution, with the normalizer after it folded in (or none).
    private static func fold(_ convolution: Conv2D, _ norm: (any FoldableNormalizer)?, magnitudes: Bool) -> Conv2D {
        var generator = SeededGenerator(seed: 0)
        let outputs = convolution.outputChannels
        let copy = Conv2D(
            inputChannels: convolution.inputChannels, outputChannels: outputs, geometry: convolution.geometry,
            bias: convolution.bias != nil || norm != nil, generator: &generator)
        var weight = convolution.weight.value
        if convolution.standardizesWeights {
            var standardized = weight
            WeightStandardization.standardize(weight, into: &standardized, outputs: outputs)
            weight = standardized
        }
        let bias = convolution.bias?.value.map(Double.init) ?? [Double](repeating: 0, count: outputs)
        var scale = [Double](repeating: 1, count: outputs), shift = bias, shiftMagnitude = bias.map(abs)
        if let norm {
            let (mean, invStd) = norm.inferenceStatistics()
            for c in 0..<outputs {
                scale[c] = Double(norm.gamma.value[c]) * Double(invStd[c])
                shift[c] = scale[c] * (bias[c] - Double(mean[c])) + Double(norm.beta.value[c])
                shiftMagnitude[c] = abs(scale[c] * bias[c]) + abs(scale[c] * Double(mean[c])) + abs(Double(norm.beta.value[c]))
            }
        }
        let fanIn = weight.count / outputs
        copy.weight.value = weight.indices.map { i in
            let folded = Float(scale[i / fanIn] * Double(weight[i]))
            return magnitudes ? abs(folded) : folded
        }
        copy.bias?.value = (magnitudes ? shiftMagnitude : shift).map { Float($0) }
        return copy
    }
}
