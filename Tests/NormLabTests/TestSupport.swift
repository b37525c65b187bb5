import Foundation
import XCTest
@testable import NormLab

/// The repository's root, found from this file's location.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// `Tests/Fixtures/normalizers`: the reference cases copied from the shared fixtures.
let normalizerFixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures/normalizers")

/// A tensor of seeded standard-normal values (scaled and shifted).
func randomTensor(_ shape: [Int], seed: UInt64, mean: Float = 0, std: Float = 1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return try! Tensor(shape: shape, scalars: generator.normals(shape.reduce(1, *), mean: mean, std: std))
}

/// The lab's own normalizers, in registry order (a test may register more).
var builtInKinds: [NormalizerKind] { NormalizerRegistry.builtIn.map(\.kind) }

/// The placements a model can give `kind`: not `after` for a normalizer whose own
/// non-linearity replaces the ReLU.
func placements(for kind: NormalizerKind) -> [NormalizerPlacement] {
    NormalizerPlacement.allCases.filter { $0 == .before || !kind.registration.replacesReLU }
}

/// `kind`'s settings with `groups` where it takes a group count, and batch renorm's r and d
/// clipped at `rmax`, `dmax` (the defaults 1 and 0 make it batch norm in training).
func settings(_ kind: NormalizerKind, groups: Int? = nil, rmax: Float = 1, dmax: Float = 0) -> NormalizerSettings {
    var settings = NormalizerSettings(kind: kind)
    let registration = kind.registration
    if let groups, registration.setting("groups") != nil { try! settings.set("groups", groups) }
    if registration.setting("rmax") != nil {
        try! settings.set("rmax", rmax)
        try! settings.set("dmax", dmax)
    }
    return settings
}

/// gamma and beta, or their gradients, of a normalizer that has them.
struct AffineParameters: Equatable {
    var gamma: [Float]
    var beta: [Float]
}

extension Normalizer {
    /// gamma's and beta's values (empty for a normalizer without them); setting them replaces them.
    var affine: AffineParameters {
        get { AffineParameters(gamma: parameter(named: "gamma")?.value ?? [], beta: parameter(named: "beta")?.value ?? []) }
        set {
            parameter(named: "gamma")?.value = newValue.gamma
            parameter(named: "beta")?.value = newValue.beta
        }
    }

    /// gamma's and beta's gradients from the last backward pass.
    var affineGradients: AffineParameters {
        AffineParameters(gamma: parameter(named: "gamma")?.gradient ?? [], beta: parameter(named: "beta")?.gradient ?? [])
    }

    /// Replaces gamma and beta, checking their lengths, where the normalizer has them (the
    /// identity has neither, RMSNorm no beta).
    func setParameters(gamma: [Float], beta: [Float]) throws {
        if parameter(named: "gamma") != nil { try setParameter(named: "gamma", to: gamma) }
        if parameter(named: "beta") != nil { try setParameter(named: "beta", to: beta) }
    }
}

/// Builds each kind with the settings tests use by default.
func makeNormalizer(_ kind: NormalizerKind, channels: Int, groups: Int? = nil) -> any Normalizer {
    try! settings(kind, groups: groups).makeNormalizer(channelCount: channels)
}

func assertClose(
    _ actual: [Float], _ expected: [Float], tolerance: Float, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "count differs \(message)", file: file, line: line)
    var worst: Float = 0
    for (a, e) in zip(actual, expected) { worst = max(worst, abs(a - e) / max(1, abs(e))) }
    XCTAssertLessThanOrEqual(worst, tolerance, "largest relative difference \(worst) \(message)", file: file, line: line)
}

/// The `normlab` program built beside the tests (`swift test` builds it with them), for tests
/// that run it as a user would. Fails, rather than skips, when it is missing.
func normlabExecutable(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    let executable = Bundle.main.bundleURL.appendingPathComponent("normlab")
    guard FileManager.default.isExecutableFile(atPath: executable.path) else {
        XCTFail("no normlab program at \(executable.path): build it with `swift build` in the same configuration", file: file, line: line)
        throw CocoaError(.fileNoSuchFile)
    }
    return executable
}

/// Runs `normlab` with `arguments` in the repository's root; returns its exit status.
@discardableResult
func runNormlab(_ arguments: [String], environment: [String: String]? = nil) throws -> Int32 {
    let process = Process()
    process.executableURL = try normlabExecutable()
    process.arguments = arguments
    process.currentDirectoryURL = repositoryRoot
    if let environment { process.environment = environment }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// A sweep of seconds: batch and layer norm, batch 8 and 32, 256 training images, one epoch.
/// - Returns: the experiment file's path, `directory/NAME.json`.
func writeTinyExperiment(in directory: URL, name: String = "tiny", seeds: String = "[0, 1]") throws -> String {
    let path = directory.appendingPathComponent("\(name).json").path
    try """
        {"format": "normlab-experiment/1", "name": "\(name)", "train_size": 256, "test_size": 500, "epochs": 1,
         "learning_rate": {"base": 0.05}, "normalizers": [{"kind": "batch"}, {"kind": "layer"}],
         "batch_sizes": [8, 32], "seeds": \(seeds), "precise_bn": {"images": 64, "batch_size": 32}}
        """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// Runs `body` with the execution settings in force changed as given (`Execution`).
func withExecution<T>(threads: Int? = nil, wideTiles: Bool? = nil, splitsBatches: Bool? = nil, _ body: () throws -> T) rethrows -> T {
    var execution = Execution.current
    if let threads { execution.threads = threads }
    if let wideTiles { execution.wideTiles = wideTiles }
    if let splitsBatches { execution.splitsBatches = splitsBatches }
    return try execution.run(body)
}
