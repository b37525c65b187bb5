/// A normalization layer: standardizes its input with some statistics, then applies learnable
/// per-channel parameters (a scale gamma and a shift beta, for the classic methods).
///
/// The methods differ in which elements share statistics: batch norm and batch renorm share
/// them per channel across the batch (`ChannelStatistics`), layer, instance and group norm per
/// sample over a contiguous block of channels (`GroupStatistics`).
///
/// A forward pass remembers what its backward pass needs; `backward` must follow the `forward`
/// it differentiates and sets every parameter's gradient. Each forward serves one backward (as
/// in PyTorch): the backward lets go of the saved input, so a second backward throws until the
/// next forward.
///
/// This protocol names only what a normalizer is. What makes training faster is asked for
/// through optional capabilities — `RectifyingNormalizer` (the ReLU after it, fused),
/// `InputReleasingNormalizer` (buffers reused in place), `PerSampleNormalizer` and
/// `BatchStatisticsNormalizer` (its statistics declared, so that the engine can split a batch
/// between threads) — and a normalizer that offers none of them trains to the same numbers in
/// every model, only more slowly. A claim a capability makes is checked: a normalizer that is
/// asked to fuse the ReLU and writes a negative value is an error (`NormalizerLayer`), and the
/// tests hold every registered normalizer's split training steps to its whole-batch ones.
public protocol Normalizer: AnyObject {
    /// The method's name, as users write it.
    var kind: NormalizerKind { get }
    /// C, the size of axis 1 of the inputs.
    var channelCount: Int { get }
    /// The learnable per-channel vectors, in a fixed order (`gamma`, `beta`), which weight
    /// decay leaves alone; `backward` sets their gradients.
    var parameters: [Parameter] { get }

    /// Normalizes `input` (`[N, C]` or `[N, C, H, W]`) into `output`, reusing its storage.
    ///
    /// In `.training` mode a method with running statistics uses and updates them from the
    /// batch; `.inference` uses them and leaves all of its state unchanged.
    /// - Throws: `NormalizerError` when the input cannot be normalized by this method.
    func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor) throws

    /// Writes dL/dx for the last forward pass into `gradInput` and sets every parameter's
    /// gradient.
    /// - Throws: `NormalizerError` when no forward pass preceded it or the shapes differ.
    func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws
}

/// A normalizer that can apply the ReLU after it in the pass that writes its output, instead
/// of leaving the ReLU a pass of its own (every built-in normalizer that a ReLU follows can).
public protocol RectifyingNormalizer: Normalizer {
    /// `forward(_:mode:into:)`; with `rectifying`, writes max(y, 0) instead of y: the same bits
    /// as `ReLU` after it. `backward` stays the normalizer's alone: the ReLU's mask comes first,
    /// from this output.
    func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor, rectifying: Bool) throws
}

extension RectifyingNormalizer {
    public func forward(_ input: Tensor, mode: NormalizationMode, into output: inout Tensor) throws {
        try forward(input, mode: mode, into: &output, rectifying: false)
    }
}

/// A normalizer that keeps a reference to its forward input for the backward pass, and can let
/// go of it early.
public protocol InputReleasingNormalizer: Normalizer {
    /// Lets go of the input the last forward kept for its backward, which then throws until the
    /// next forward. A layer calls it before overwriting the buffer that input shares, so the
    /// buffer is reused in place instead of copied (evaluation runs forwards without backwards).
    func releaseSavedInput()
}

/// A normalizer with running statistics for inference, which PreciseBN re-estimates after
/// training (batch norm, batch renorm).
public protocol PopulationStatisticsNormalizer: Normalizer {
    /// From now on, training-mode forwards replace the running statistics with the plain
    /// average of their batch statistics, until `endPopulationEstimate`.
    func beginPopulationEstimate()
    /// Returns to the running average.
    func endPopulationEstimate()
}

/// A normalizer that draws random numbers in training (noisy batch norm): the model seeds it
/// from its own seeded generator as it fills the slot, so that a run is reproducible.
public protocol SeededNormalizer: Normalizer {
    func seed(_ seed: UInt64)
}

/// A normalizer that changes over training on a schedule of its own (batch renorm's clipping
/// bounds, `RenormSchedule`): the trainer tells it where training is before each step.
public protocol ScheduledNormalizer: Normalizer {
    /// Before training step `step` (from 0) of `totalSteps`.
    func prepare(step: Int, of totalSteps: Int) throws
}

/// A normalizer with running state besides its parameters (batch norm's running mean and
/// variance), which fixtures set and compare by name.
public protocol StatefulNormalizer: Normalizer {
    /// The state, by the names fixtures use (`running_mean`, `running_var`).
    var state: [String: [Float]] { get }
    /// Replaces the named parts of the state.
    /// - Throws: `NormalizerError` for a name it does not have or a length other than C.
    func setState(_ state: [String: [Float]]) throws
}

/// A normalizer whose statistics are each sample's own (layer, instance and group norm), so that
/// a training step can take a batch through it a few samples at a time and on several threads
/// at once (`Engine/`): copies of it that share its parameters, each with some of the samples,
/// whose gradient terms the engine adds up in sample order.
public protocol PerSampleNormalizer: InputReleasingNormalizer {
    /// A normalizer of the same settings with buffers of its own that shares this one's
    /// `parameters` (the same objects).
    func sharingParameters() -> any PerSampleNormalizer

    /// `backward` without touching the parameters' gradients: writes dL/dx and keeps each
    /// sample's terms of the parameters' gradients for `addParameterGradients`.
    func inputGradient(_ gradOutput: Tensor, into gradInput: inout Tensor) throws

    /// Adds the last backward pass's gradient terms to `parameters`' gradients (this
    /// normalizer's `parameters` or those of the normalizer it shares them with), sample by
    /// sample, in order: added to zeros, the same bits as `backward` over all the samples.
    func addParameterGradients(to parameters: [Parameter])
}

extension PerSampleNormalizer {
    /// `inputGradient`, then the parameters' gradients from zero.
    public func backward(_ gradOutput: Tensor, into gradInput: inout Tensor) throws {
        try inputGradient(gradOutput, into: &gradInput)
        for parameter in parameters { parameter.gradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        addParameterGradients(to: parameters)
    }
}

/// A per-sample normalizer's terms of its parameters' gradients: for each parameter, one value
/// per (sample, channel), which `add(to:)` adds into the gradients sample by sample, in order.
struct SampleGradientTerms {
    /// [parameter][sample][channel], one buffer reused from step to step.
    private var terms: [Float] = []
    private(set) var parameterCount = 0, batch = 0, channels = 0

    /// Room for `parameterCount` parameters' terms over `batch` samples of `channels` channels.
    mutating func reset(parameterCount: Int, batch: Int, channels: Int) {
        (self.parameterCount, self.batch, self.channels) = (parameterCount, batch, channels)
        if terms.count != parameterCount * batch * channels { terms = [Float](repeating: 0, count: parameterCount * batch * channels) }
    }

    /// Calls `body` with the terms' storage, where parameter p's term for plane
    /// `sample · channels + channel` is at `p · batch · channels + plane`: a pass writes it from
    /// any thread, each plane from one.
    mutating func withUnsafeMutableBufferPointer<Result>(_ body: (UnsafeMutableBufferPointer<Float>) -> Result) -> Result {
        terms.withUnsafeMutableBufferPointer { body($0) }
    }

    /// Adds the terms into `parameters`' gradients (in the order of the terms), sample by sample.
    func add(to parameters: [Parameter]) {
        let planes = batch * channels
        for (index, parameter) in parameters.prefix(parameterCount).enumerated() {
            parameter.gradient.withUnsafeMutableBufferPointer { gradient in
                for plane in 0..<planes { gradient[plane % channels] += terms[index * planes + plane] }
            }
        }
    }
}

extension Normalizer {
    /// Normalizes `input`, returning a new tensor.
    public func forward(_ input: Tensor, mode: NormalizationMode) throws -> Tensor {
        var output = Tensor(shape: input.shape)
        try forward(input, mode: mode, into: &output)
        return output
    }

    /// dL/dx for the last forward pass, as a new tensor; also sets every parameter's gradient.
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        var gradInput = Tensor(shape: gradOutput.shape)
        try backward(gradOutput, into: &gradInput)
        return gradInput
    }

    /// The parameter called `name` (`gamma`, `beta`), if the normalizer has one.
    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }

    /// Replaces the values of the parameter called `name`.
    /// - Throws: `NormalizerError.unknownParameter` when it has none of that name,
    ///   `NormalizerError.parameterLength` unless `values` has one value per channel.
    public func setParameter(named name: String, to values: [Float]) throws {
        guard let parameter = parameter(named: name) else { throw NormalizerError.unknownParameter(kind: kind, name: name) }
        try NormalizerError.checkLength(values, name, parameter.value.count)
        parameter.value = values
    }
}

/// Whether a forward pass uses batch statistics (and updates running ones) or stored ones.
public enum NormalizationMode: Sendable {
    case training, inference
}

extension Parameter {
    /// A normalizer's per-channel scale gamma, starting at 1.
    static func gamma(channelCount: Int) -> Parameter { Parameter("gamma", repeating: 1, count: channelCount, decays: false) }
    /// A normalizer's per-channel shift beta, starting at 0.
    static func beta(channelCount: Int) -> Parameter { Parameter("beta", repeating: 0, count: channelCount, decays: false) }
}

/// The ways a normalizer can be misconfigured or misused. Each says what was wrong and what
/// would be right.
public enum NormalizerError: Error, Equatable, CustomStringConvertible {
    case invalidChannelCount(Int)
    case invalidGroupCount(Int)
    case groupsDoNotDivideChannels(channels: Int, groups: Int)
    case parameterLength(name: String, expected: Int, got: Int)
    case unsupportedRank(shape: [Int], kind: NormalizerKind)
    case needsSpatialInput(shape: [Int], kind: NormalizerKind)
    case channelMismatch(expected: Int, shape: [Int])
    case emptyInput(shape: [Int])
    case singleValuePerChannel(kind: NormalizerKind, shape: [Int])
    case gradientShapeMismatch(expected: [Int], got: [Int])
    case backwardWithoutForward
    case invalidEpsilon(Float)
    case invalidMomentum(Float)
    case invalidRmax(Float)
    case invalidDmax(Float)
    case alreadyRegistered(String)
    case unknownSetting(kind: NormalizerKind, key: String)
    case invalidSetting(key: String, reason: String)
    case unknownState(kind: NormalizerKind, name: String)
    case unknownParameter(kind: NormalizerKind, name: String)
    case ignoresRectifying(NormalizerKind)

    public var description: String {
        switch self {
        case .invalidChannelCount(let c):
            return "channel count must be positive, got \(c)"
        case .invalidGroupCount(let g):
            return "group count must be positive, got \(g)"
        case .groupsDoNotDivideChannels(let c, let g):
            return "\(c) channels cannot be split into \(g) groups: the group count must divide the channel count"
        case .parameterLength(let name, let expected, let got):
            return "\(name) needs one value per channel (\(expected)), got \(got)"
        case .unsupportedRank(let shape, let kind):
            return "\(kind.displayName) takes [N, C] or [N, C, H, W] input, got shape \(shape)"
        case .needsSpatialInput(let shape, let kind):
            return "\(kind.displayName) needs [N, C, H, W] input (it normalizes over H and W), got shape \(shape)"
        case .channelMismatch(let expected, let shape):
            return "input shape \(shape) has \(shape.count > 1 ? shape[1] : 0) channels on axis 1, but the normalizer has \(expected)"
        case .emptyInput(let shape):
            return "input shape \(shape) has no elements"
        case .singleValuePerChannel(let kind, let shape):
            return "training \(kind.displayName) needs more than one value per channel, but input shape \(shape) has N*H*W = 1: use a larger batch, or a per-sample normalizer (layer, group, instance)"
        case .gradientShapeMismatch(let expected, let got):
            return "gradient shape \(got) does not match the forward input's shape \(expected)"
        case .backwardWithoutForward:
            return "backward needs a preceding forward pass"
        case .invalidEpsilon(let e):
            return "epsilon must be positive, got \(e)"
        case .invalidMomentum(let m):
            return "momentum must lie in [0, 1], got \(m)"
        case .invalidRmax(let r):
            return "rmax must be at least 1, got \(r)"
        case .invalidDmax(let d):
            return "dmax must be at least 0, got \(d)"
        case .alreadyRegistered(let name):
            return "a normalizer named \"\(name)\" is already registered"
        case .unknownSetting(let kind, let key):
            let known = (["eps"] + kind.registration.settings.map(\.key)).joined(separator: ", ")
            return "\(kind.displayName) has no setting \"\(key)\" of that type; it takes \(known)"
        case .invalidSetting(let key, let reason):
            return "\(key): \(reason)"
        case .unknownState(let kind, let name):
            return "\(kind.displayName) has no state \"\(name)\""
        case .unknownParameter(let kind, let name):
            return "\(kind.displayName) has no parameter \"\(name)\""
        case .ignoresRectifying(let kind):
            return "\(kind.displayName) is a RectifyingNormalizer but wrote a negative value when asked to apply the ReLU after it: its forward pass must honour `rectifying`, or it must not claim the capability"
        }
    }

    static func checkLength(_ values: [Float], _ name: String, _ expected: Int) throws {
        guard values.count == expected else {
            throw NormalizerError.parameterLength(name: name, expected: expected, got: values.count)
        }
    }

    static func checkEpsilon(_ epsilon: Float) throws {
        guard epsilon > 0, epsilon.isFinite else { throw NormalizerError.invalidEpsilon(epsilon) }
    }

    static func checkMomentum(_ momentum: Float) throws {
        guard momentum >= 0, momentum <= 1 else { throw NormalizerError.invalidMomentum(momentum) }
    }
}

extension NormalizationLayout {
    /// Checks `shape` against a normalizer with `channelCount` channels.
    /// - Throws: `NormalizerError` for a rank other than 2 or 4 (4 only, with
    ///   `requiresSpatial`), another channel count, or an empty axis.
    init(shape: [Int], channelCount: Int, kind: NormalizerKind, requiresSpatial: Bool = false) throws {
        guard shape.count == 4 || (shape.count == 2 && !requiresSpatial) else {
            throw shape.count == 2 ? NormalizerError.needsSpatialInput(shape: shape, kind: kind)
                : NormalizerError.unsupportedRank(shape: shape, kind: kind)
        }
        guard shape[1] == channelCount else {
            throw NormalizerError.channelMismatch(expected: channelCount, shape: shape)
        }
        guard shape.allSatisfy({ $0 > 0 }) else { throw NormalizerError.emptyInput(shape: shape) }
        self.init(batch: shape[0], channels: shape[1], spatial: shape.count == 4 ? shape[2] * shape[3] : 1)
    }
}
