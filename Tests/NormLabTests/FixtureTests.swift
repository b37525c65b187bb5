import Foundation
import XCTest
@testable import NormLab

/// Every normalizer against the reference fixtures (forward, backward, running statistics,
/// errors), exactly as `normlab verify` runs them.
final class FixtureTests: XCTestCase {
    func testEveryFixturePasses() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: normalizerFixtures.path)
            .filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 25, "fixtures are missing from \(normalizerFixtures.path)")
        var kinds = Set<NormalizerKind>()
        for file in files {
            let fixture = try Fixture.load(from: normalizerFixtures.appendingPathComponent(file))
            if let normalizer = fixture.normalizer { kinds.insert(normalizer.kind) }
            let result = fixture.check()
            XCTAssertTrue(result.passed, "\(file): \(result.message ?? "") \(result.comparisons)")
        }
        // Every normalizer of the lab's own has reference cases ("none" has nothing to check, and
        // a normalizer that draws noise no fixed reference).
        XCTAssertEqual(kinds, Set(NormalizerRegistry.builtIn.filter { $0.fillsSlots && !$0.drawsNoise }.map(\.kind)))
    }

    func testAWrongReferenceFails() throws {
        // The check must be able to fail: corrupt one expected value and expect a failure.
        let url = normalizerFixtures.appendingPathComponent("layer-2d-train.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var expected = try XCTUnwrap(json["expected"] as? [String: Any])
        var output = try XCTUnwrap(expected["output"] as? [Double])
        output[3] += 0.01
        expected["output"] = output
        json["expected"] = expected
        let temporary = try writeTemporary(JSONSerialization.data(withJSONObject: json))
        let result = try Fixture.load(from: temporary).check()
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.comparisons.first { $0.name == "output" }?.passed, false)
    }

    func testMalformedFixtureIsReportedNotCrashedOn() throws {
        let cases = [
            "{\"format\": \"normlab-fixture/1\"",
            "{\"format\": \"normlab-fixture/2\"}",
            "[1, 2, 3]",
        ]
        for text in cases {
            let url = try writeTemporary(Data(text.utf8))
            XCTAssertThrowsError(try Fixture.load(from: url), text) { error in
                XCTAssertTrue(error is FixtureError, "\(error)")
            }
        }
        XCTAssertThrowsError(try Fixture.load(from: URL(fileURLWithPath: "/nonexistent/fixture.json")))
    }

    /// Hostile fixtures, one of them found by the fuzzer (`Tests/Fuzz/regressions/fixture`, which
    /// the fuzz script replays): channel counts near 10¹⁶ and a shape whose product passes
    /// Int.max fail the check with a message; they used to crash (an allocation failure, an
    /// overflow trap).
    func testHostileFixturesFailWithoutCrashing() throws {
        let folder = repositoryRoot.appendingPathComponent("Tests/Fuzz/regressions/fixture")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 2)
        for name in names {
            let result = try Fixture.load(from: folder.appendingPathComponent(name)).check()
            XCTAssertFalse(result.passed, name)
            XCTAssertNotNil(result.message, name)
        }
    }

    private func writeTemporary(_ data: Data) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("normlab-fixture-\(UUID().uuidString).json")
        try data.write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
