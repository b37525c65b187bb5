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

/// Builds each kind with the settings tests use by default.
func makeNormalizer(_ kind: NormalizerKind, channels: Int, groups: Int? = nil) -> any Normalizer {
    try! NormalizerSettings(kind: kind, groups: groups).makeNormalizer(channelCount: channels)
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
