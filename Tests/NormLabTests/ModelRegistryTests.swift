import Foundation
import XCTest
@testable import NormLab

/// The model registry is open: a network defined here is registered, named in an experiment file,
/// trained with any normalizer and described on its page, like the lab's own.
final class ModelRegistryTests: XCTestCase {
    /// conv3×3(C→8) → norm → ReLU → global average pool → linear(8→classes).
    struct TinyNet: Architecture {
        static let registration = ModelRegistration(name: "test-tiny", summary: "one convolution") {
            $0 == "test-tiny" ? TinyNet() : nil
        }
        static let registered: Void = { try! ModelRegistry.register(registration) }()

        var name: String { "test-tiny" }
        var normalizedWidths: [Int] { [8] }
        func pageDescription(zeroInitResidual: Bool) -> String { "test-tiny: conv3×3(C→8) → norm → ReLU → linear" }
        func make(image: ImageShape, classes: Int, zeroInitResidual: Bool, slots: inout NormSlots) throws -> Network {
            Network(try slots.convolutionNormReLU(image.channels, 8) + [GlobalAveragePool(), slots.linear(8, classes)])
        }
    }

    override func setUp() { TinyNet.registered }

    func testARegisteredModelIsSweptWithEveryNormalizerAndDescribed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("normlab-models-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("tiny-model.json").path
        let entries = builtInKinds.map { "{\"kind\": \"\($0.rawValue)\"\($0 == .group ? ", \"groups\": 4" : "")}" }
        try """
            {"format": "normlab-experiment/1", "name": "tiny-model", "train_size": 64, "test_size": 100, "epochs": 1,
             "model": "test-tiny", "learning_rate": {"base": 0.05}, "normalizers": [\(entries.joined(separator: ", "))],
             "batch_sizes": [8], "seeds": [0]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let summary = try Sweep.run(Experiment.load(from: path), outputDirectory: directory.path, commit: "test", progress: { _ in })
        XCTAssertEqual(summary.ran, builtInKinds.count)
        let records = try ResultsLog(path: summary.resultsPath).records
        XCTAssertTrue(records.allSatisfy { $0.spec.model == "test-tiny" && $0.result.testAccuracy != nil })
        let page = MarkdownReport.render(
            ResultTable(records: records), chartFile: "c.svg", csvFile: "c.csv", experimentFile: path, resultsFile: summary.resultsPath)
        XCTAssertTrue(page.contains("test-tiny: conv3×3(C→8) → norm → ReLU → linear"), page)
        XCTAssertThrowsError(try ModelRegistry.register(TinyNet.registration))
        XCTAssertThrowsError(try ModelSettings(name: "test-huge")) { XCTAssertTrue("\($0)".contains("test-tiny"), "\($0)") }
    }
}
