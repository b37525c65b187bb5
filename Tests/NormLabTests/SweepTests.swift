import Foundation
import XCTest
@testable import NormLab

/// Sweeps: every run recorded once, resumed after an interruption, same numbers either way.
final class SweepTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("normlab-sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func tinyExperiment(name: String = "tiny", seeds: String = "[0, 1]") throws -> String {
        try writeTinyExperiment(in: directory, name: name, seeds: seeds)
    }

    private func sweep(_ path: String, into folder: String) throws -> Sweep.Summary {
        try Sweep.run(Experiment.load(from: path), outputDirectory: folder, commit: "test", progress: { _ in })
    }

    func testSweepRecordsEveryRunOnceAndResumes() throws {
        let experiment = try tinyExperiment()
        let out = directory.appendingPathComponent("out").path
        let first = try sweep(experiment, into: out)
        XCTAssertEqual(first.ran, 8)
        let log = try ResultsLog(path: first.resultsPath)
        XCTAssertEqual(log.records.count, 8)
        XCTAssertEqual(Set(log.records.map(\.spec.label)), ["batch", "layer"])
        XCTAssertTrue(log.records.filter { $0.spec.normalizer == .batch }.allSatisfy { $0.result.preciseBNAccuracy != nil })
        XCTAssertTrue(log.records.filter { $0.spec.normalizer == .layer }.allSatisfy { $0.result.preciseBNAccuracy == nil })
        let second = try sweep(experiment, into: out)
        XCTAssertEqual(second.ran, 0)
        XCTAssertEqual(second.alreadyRecorded, 8)

        // A torn last line (a crash mid-write) is removed and that run done again.
        let text = try String(contentsOfFile: first.resultsPath, encoding: .utf8)
        var lines = text.split(separator: "\n").map(String.init)
        let last = lines.removeLast()
        try (lines.joined(separator: "\n") + "\n" + last.prefix(40)).write(toFile: first.resultsPath, atomically: true, encoding: .utf8)
        let repaired = try ResultsLog(path: first.resultsPath)
        XCTAssertTrue(repaired.repairedTornLine)
        XCTAssertEqual(repaired.records.count, 7)
        let third = try sweep(experiment, into: out)
        XCTAssertEqual(third.ran, 1)
        let final = try ResultsLog(path: first.resultsPath).records
        XCTAssertEqual(final.count, 8)
        // The redone run gives the same numbers as the first time.
        XCTAssertEqual(final.map(\.result.testAccuracy), log.records.map(\.result.testAccuracy))
    }

    func testResultsOfAnotherConfigurationAreNotMixedIn() throws {
        let out = directory.appendingPathComponent("out").path
        _ = try sweep(try tinyExperiment(seeds: "[0]"), into: out)
        // Same name and output file, different epochs.
        let changed = try String(contentsOfFile: try tinyExperiment(seeds: "[0]"), encoding: .utf8)
            .replacingOccurrences(of: "\"epochs\": 1", with: "\"epochs\": 2")
        let path = directory.appendingPathComponent("tiny.json").path
        try changed.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try sweep(path, into: out)) { error in
            XCTAssertTrue("\(error)".contains("not in this experiment's grid"), "\(error)")
        }
    }

    func testDamagedResultsFileIsReportedNotSkipped() throws {
        let path = directory.appendingPathComponent("damaged.jsonl").path
        try "{\"not\": \"a record\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ResultsLog(path: path)) { error in
            XCTAssertTrue("\(error)".contains("line 1"), "\(error)")
        }
    }

    /// Records with values no run produces (the fuzzer found that an accuracy of -1e308 reached
    /// the chart, whose axis became infinite) are refused by name; the inputs the fuzzer kept in
    /// `Tests/Fuzz/regressions/results` are refused or reported without a crash.
    /// Every committed record reads and writes back to the same line: the settings each
    /// normalizer records, under the keys its registration gives, are what the records hold.
    func testCommittedRecordsWriteBackToTheirOwnLines() throws {
        let folders = ["results", "results/pytorch"].map { repositoryRoot.appendingPathComponent($0) }
        var checked = 0
        for folder in folders {
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".jsonl") {
                let text = try String(contentsOfFile: folder.appendingPathComponent(name).path, encoding: .utf8)
                let lines = text.split(separator: "\n")
                let records = try ResultsLog.parse(Data(text.utf8), path: name).records
                XCTAssertEqual(records.count, lines.count, name)
                for (record, line) in zip(records, lines) {
                    // Records from before models had names gain `"model": "smallcnn"`; a null is
                    // an absent value.
                    var original = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                    if original["model"] == nil { original["model"] = "smallcnn" }
                    original = original.filter { !($0.value is NSNull) }
                    let written = try XCTUnwrap(JSONSerialization.jsonObject(with: try ResultsLog.line(for: record)) as? [String: Any])
                    XCTAssertEqual(NSDictionary(dictionary: written), NSDictionary(dictionary: original), name)
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 400)
    }

    func testImpossibleValuesInARecordAreRefused() throws {
        let line = try String(contentsOfFile: repositoryRoot.appendingPathComponent("results/small-batch.jsonl").path, encoding: .utf8)
            .split(separator: "\n")[0]
        XCTAssertNoThrow(try ResultsLog.parse(Data((line + "\n").utf8), path: "good"))
        for (find, replace, named) in [
            ("\"test_accuracy\":0.8598", "\"test_accuracy\":-1e308", "test_accuracy"),
            ("\"test_accuracy\":0.8598", "\"test_accuracy\":1.5", "test_accuracy"),
            ("\"batch_size\":2", "\"batch_size\":0", "batch_size"),
            ("\"base_lr\":0.05", "\"base_lr\":-0.05", "base_lr"),
            ("\"seconds\":16.946521395", "\"seconds\":-3", "seconds"),
            ("\"placement\":\"before\"", "\"placement\":\"before\",\"renorm_schedule\":{\"warmup\":0.1}", "renorm_schedule is a setting of batch renorm"),
        ] {
            let bad = line.replacingOccurrences(of: find, with: replace) + "\n"
            XCTAssertNotEqual(bad, line + "\n")
            XCTAssertThrowsError(try ResultsLog.parse(Data(bad.utf8), path: "bad")) { error in
                XCTAssertTrue("\(error)".contains(named), "\(error)")
            }
        }
        let renorm = try XCTUnwrap(try String(contentsOfFile: repositoryRoot.appendingPathComponent("results/small-batch.jsonl").path, encoding: .utf8)
            .split(separator: "\n").first { $0.contains("\"normalizer\":\"batchrenorm\"") })
        XCTAssertNoThrow(try ResultsLog.parse(Data((renorm + "\n").utf8), path: "good"))
        let unreachable = renorm.replacingOccurrences(of: "\"warmup\":0.05", with: "\"warmup\":1e300") + "\n"
        XCTAssertThrowsError(try ResultsLog.parse(Data(unreachable.utf8), path: "bad")) { error in
            XCTAssertTrue("\(error)".contains("warmup 1e+300 is not a fraction of the steps"), "\(error)")
        }
        // Each kept input is refused, or its reports are written (a crash would end the test).
        let kept = repositoryRoot.appendingPathComponent("Tests/Fuzz/regressions/results")
        for file in try FileManager.default.contentsOfDirectory(atPath: kept.path) {
            guard let records = try? ResultsLog.parse(Data(contentsOf: kept.appendingPathComponent(file)), path: file).records,
                  !records.isEmpty else { continue }
            let table = ResultTable(records: records)
            XCTAssertFalse(MarkdownReport.render(table, chartFile: "c.svg", csvFile: "c.csv", experimentFile: "e.json", resultsFile: "r.jsonl").isEmpty)
            XCTAssertFalse(CSVReport.render(table).isEmpty)
            XCTAssertFalse(SVGChart.render(table, title: file).isEmpty)
        }
    }

    /// A real interruption: `normlab sweep` killed with SIGKILL mid-sweep, then run again,
    /// records every run exactly once, with the numbers of an uninterrupted sweep.
    func testKillNineThenResume() throws {
        let executable = try normlabExecutable()
        let experiment = try tinyExperiment(name: "killed", seeds: "[0, 1, 2]")
        let interrupted = directory.appendingPathComponent("interrupted").path
        let results = (interrupted as NSString).appendingPathComponent("killed.jsonl")
        func launch() throws -> Process {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["sweep", experiment, "--out", interrupted, "--jobs", "1"]
            process.currentDirectoryURL = repositoryRoot
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        let process = try launch()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let count = (try? String(contentsOfFile: results, encoding: .utf8))?.split(separator: "\n").count ?? 0
            if count >= 2 { break }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let partial = try ResultsLog(path: results).records.count
        XCTAssertGreaterThanOrEqual(partial, 2)
        XCTAssertLessThan(partial, 12, "the sweep should have been killed before it finished")
        let resumed = try launch()
        resumed.waitUntilExit()
        XCTAssertEqual(resumed.terminationStatus, 0)
        let records = try ResultsLog(path: results).records
        XCTAssertEqual(records.count, 12)
        XCTAssertEqual(Set(records.map { "\($0.spec.label) \($0.spec.batchSize) \($0.spec.seed)" }).count, 12)

        let clean = try sweep(experiment, into: directory.appendingPathComponent("clean").path)
        let reference = try ResultsLog(path: clean.resultsPath).records
        for record in records {
            let match = try XCTUnwrap(reference.first { $0.spec == record.spec })
            XCTAssertEqual(match.result.testAccuracy, record.result.testAccuracy, record.spec.summary)
            XCTAssertEqual(match.result.finalLoss, record.result.finalLoss, record.spec.summary)
        }
    }

    func testMalformedExperimentWritesNothing() throws {
        let path = directory.appendingPathComponent("bad.json").path
        try "{\"format\": \"normlab-experiment/1\", \"name\": \"bad\", \"epochs\": 1, \"learning_rate\": {\"base\": 0.1}, \"normalizers\": [{\"kind\": \"group\", \"groups\": 3}], \"batch_sizes\": [8], \"seeds\": [0]}"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let out = directory.appendingPathComponent("never").path
        XCTAssertThrowsError(try sweep(path, into: out))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
