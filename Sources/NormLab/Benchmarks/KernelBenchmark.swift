/// `normlab bench kernels`: each normalizer's training forward, backward and inference forward
/// on the shapes of a small CNN and of a large feature map.
public enum KernelBenchmark {
    /// One timing.
    public struct Measurement: Sendable {
        public var normalizer: NormalizerKind
        public var shape: [Int]
        /// `forward_training`, `backward` or `forward_inference`.
        public var phase: String
        /// Median seconds per call.
        public var seconds: Double
    }

    /// The normalizers timed by default: those whose registration asks to be (the identity
    /// costs nothing).
    public static var defaultKinds: [NormalizerKind] { NormalizerRegistry.all.filter { $0.benchmark != nil }.map(\.kind) }

    /// Times every kind on the shapes its registration names (or on `shapes`), shape by shape,
    /// calling `report` as each measurement is made.
    public static func run(
        kinds: [NormalizerKind] = defaultKinds, shapes: [[Int]]? = nil, minimumSeconds: Double = 0.2,
        report: (Measurement) -> Void
    ) throws {
        var plan: [[Int]: [NormalizerKind]] = [:], order: [[Int]] = []
        for kind in kinds {
            for shape in shapes ?? kind.registration.benchmark?.shapes ?? NormalizerRegistration.Benchmark.defaultShapes {
                if plan[shape] == nil { order.append(shape) }
                plan[shape, default: []].append(kind)
            }
        }
        for shape in order {
            let x = randomInput(shape, seed: 1)
            let dy = randomInput(shape, seed: 2)
            var y = Tensor(shape: shape)
            var dx = Tensor(shape: shape)
            for kind in plan[shape] ?? [] {
                let settings = try NormalizerSettings(kind: kind, kind.registration.benchmark?.settings ?? [:])
                let layer = try settings.makeNormalizer(channelCount: shape[1])
                let forward = try Stopwatch.median(minimumSeconds: minimumSeconds) {
                    try layer.forward(x, mode: .training, into: &y)
                }
                report(Measurement(normalizer: kind, shape: shape, phase: "forward_training", seconds: forward))
                let backward = try Stopwatch.median(minimumSeconds: minimumSeconds) {
                    try layer.forward(x, mode: .training, into: &y)
                } _: {
                    try layer.backward(dy, into: &dx)
                }
                report(Measurement(normalizer: kind, shape: shape, phase: "backward", seconds: backward))
                let inference = try Stopwatch.median(minimumSeconds: minimumSeconds) {
                    try layer.forward(x, mode: .inference, into: &y)
                }
                report(Measurement(normalizer: kind, shape: shape, phase: "forward_inference", seconds: inference))
            }
        }
    }

    private static func randomInput(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        let count = shape.reduce(1, *)
        // Uniform values are enough for timing and much faster to make than normals.
        let scalars = (0..<count).map { _ in Float(generator.nextUnit() * 2 - 1) }
        return try! Tensor(shape: shape, scalars: scalars)
    }
}
