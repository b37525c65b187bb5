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
public struct ResNet: Architecture {
    /// The stages' widths.
    public static let widths = [16, 32, 64]

    /// D = 6n + 2.
    public let depth: Int
    /// false for the plain network.
    public let shortcuts: Bool

    public var name: String { "\(shortcuts ? "resnet" : "plain")-\(depth)" }
    public var normalizedWidths: [Int] { Self.widths }
    public var hasResidualBranches: Bool { shortcuts }
    public var tableDepth: Int? { depth }

    /// - Throws: `ModelError.unknownModel` unless D = 6n + 2 for some n ≥ 1.
    public init(depth: Int, shortcuts: Bool) throws {
        guard depth >= 8, (depth - 2) % 6 == 0 else {
            throw ModelError.unknownModel(
                "\"\(shortcuts ? "resnet" : "plain")-\(depth)\": the depth of \(shortcuts ? "resnet" : "plain")-D must be 6n + 2 for some n ≥ 1 (8, 14, 20, 32, 44, 56, 110)")
        }
        self.depth = depth
        self.shortcuts = shortcuts
    }

    public func pageDescription(zeroInitResidual: Bool) -> String {
        let blocks = (depth - 2) / 6
        var text = "\(name): conv3×3(C→16) → norm → ReLU, 3 stages of \(blocks) basic block\(blocks == 1 ? "" : "s") (widths 16, 32, 64; stride 2 into stages 2 and 3)"
        text += shortcuts ? " with identity shortcuts, or conv1×1 → norm where the shape changes" : ", no shortcuts"
        if zeroInitResidual { text += ", each residual branch starting at zero" }
        return text + ", global average pool → linear(64→10)"
    }

    /// - Parameter zeroInitResidual: each block's last gamma starts at 0; with no normalizer,
    ///   each residual branch ends in a learnable scalar that starts at 0 (SkipInit).
    public func make(image: ImageShape, classes: Int, zeroInitResidual: Bool, slots: inout NormSlots) throws -> Network {
        let widths = Self.widths
        let n = (depth - 2) / 6
        var layers = try slots.convolutionNormReLU(image.channels, widths[0])
        var channels = widths[0]
        for (stage, width) in widths.enumerated() {
            for block in 0..<n {
                let stride = stage > 0 && block == 0 ? 2 : 1
                layers += try Self.basicBlock(
                    channels, width, stride: stride, shortcuts: shortcuts, zeroInitResidual: zeroInitResidual, slots: &slots)
                channels = width
            }
        }
        layers += [GlobalAveragePool(), slots.linear(channels, classes)]
        let network = Network(layers)
        _ = try network.body.outputShape(for: [1, image.channels, image.height, image.width])
        return network
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

extension ResNet {
    /// Its entry in the lab (`ModelRegistry`): `resnet-D`.
    static let registration = ModelRegistration(
        name: "resnet-D", summary: "He et al.'s CIFAR ResNet, D = 6n + 2 (8, 14, 20, 32, …)"
    ) { name in
        guard name.hasPrefix("resnet-") else { return nil }
        return try ResNet(depth: Int(name.dropFirst("resnet-".count)) ?? -1, shortcuts: true)
    }

    /// The plain network's entry (`ModelRegistry`): `plain-D`, the ResNet without shortcuts.
    static let plainRegistration = ModelRegistration(
        name: "plain-D", summary: "the same network without shortcuts"
    ) { name in
        guard name.hasPrefix("plain-") else { return nil }
        return try ResNet(depth: Int(name.dropFirst("plain-".count)) ?? -1, shortcuts: false)
    }
}
