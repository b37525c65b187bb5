/// The CIFAR ResNets of He et al. 2016 (https://arxiv.org/abs/1512.03385, section 4.2), and the
/// same networks without shortcuts ("plain"), for depth D = 6n + 2:
///
/// | stage | output | layers |
/// |---|---|---|
/// | stem | 16 × H × W | conv3×3(C→16) → norm → ReLU |
/// | 1 | 16 × H × W | n basic blocks |
/// | 2 | 32 × H/2 × W/2 | n basic blocks, the first with stride 2 |
/// | 3 | 64 × H/4 × W/4 | n basic blocks, the first with stride 2 |
/// | head | classes | global average pool → linear(64 → classes) |
///
/// A basic block is conv3×3 → norm → ReLU → conv3×3 → norm, plus the shortcut — the identity,
/// or conv1×1 with stride 2 → norm where the shape changes — then ReLU. Without shortcuts it is
/// the same two convolutions, then ReLU.
public enum ResNet {
    /// The stages' widths.
    public static let widths = [16, 32, 64]

    /// - Parameters:
    ///   - shortcuts: false for the plain network.
    ///   - zeroInitResidual: each block's last gamma starts at 0; with no normalizer, each
    ///     residual branch ends in a learnable scalar that starts at 0 (SkipInit).
    public static func make(
        depth: Int, shortcuts: Bool, zeroInitResidual: Bool, imageChannels: Int, classes: Int, slots: inout NormSlots
    ) throws -> Network {
        let n = (depth - 2) / 6
        var layers = try slots.convolutionNormReLU(imageChannels, widths[0])
        var channels = widths[0]
        for (stage, width) in widths.enumerated() {
            for block in 0..<n {
                let stride = stage > 0 && block == 0 ? 2 : 1
                layers += try basicBlock(
                    channels, width, stride: stride, shortcuts: shortcuts, zeroInitResidual: zeroInitResidual, slots: &slots)
                channels = width
            }
        }
        layers += [GlobalAveragePool(), slots.linear(channels, classes)]
        return Network(layers)
    }

    /// conv3×3 → norm → ReLU → conv3×3 → norm (+ shortcut) → ReLU.
    static func basicBlock(
        _ input: Int, _ output: Int, stride: Int, shortcuts: Bool, zeroInitResidual: Bool, slots: inout NormSlots
    ) throws -> [any Layer] {
        var body = try slots.convolutionNormReLU(input, output, stride: stride)
        guard shortcuts else { return body + (try slots.convolutionNormReLU(output, output)) }
        body.append(slots.convolution(output, output))
        let lastNorm = try slots.norm(output)
        body += lastNorm
        if zeroInitResidual {
            if let gamma = (lastNorm.first as? NormalizerLayer)?.normalizer.parameter(named: "gamma") {
                gamma.value = [Float](repeating: 0, count: output)
            } else {
                body.append(Scale(initialValue: 0))
            }
        }
        var shortcut: Sequential?
        if stride != 1 || input != output {
            shortcut = Sequential([slots.convolution(input, output, kernel: 1, stride: stride)] + (try slots.norm(output)))
        }
        return [Residual(body: Sequential(body), shortcut: shortcut)]
    }
}
