import Foundation
import NormLab

/// One libFuzzer entry point for every reader of files a user hands the lab; the environment
/// variable `NORMLAB_FUZZ_TARGET` picks the reader. A reader may reject its input with any
/// error it declares; a crash, a trap or a hang is a bug.
///
/// - `idx`: IDX bytes (`IDXFile.parse`), as images (rank 3) and labels (rank 1);
/// - `idx-gzip`: the same bytes as a file on disk, through zlib (`IDXFile.read`);
/// - `experiment`: an experiment file (`Experiment.decode`), then its grid;
/// - `fixture`: a reference fixture (`Fixture.decode`), then its check;
/// - `results`: a results file (`ResultsLog.parse`), then its table and report.
enum Target: String {
    case idx, idxGzip = "idx-gzip", experiment, fixture, results

    static let current: Target = {
        let name = ProcessInfo.processInfo.environment["NORMLAB_FUZZ_TARGET"] ?? ""
        guard let target = Target(rawValue: name) else {
            FileHandle.standardError.write(Data("set NORMLAB_FUZZ_TARGET to idx, idx-gzip, experiment, fixture or results\n".utf8))
            exit(2)
        }
        return target
    }()

    /// Where `idx-gzip` writes each input, once per process.
    static let scratch = FileManager.default.temporaryDirectory
        .appendingPathComponent("normlab-fuzz-\(ProcessInfo.processInfo.processIdentifier).gz").path

    func run(_ data: Data) {
        switch self {
        case .idx:
            for rank in [1, 3] { _ = try? IDXFile.parse([UInt8](data), path: "input", expectedRank: rank) }
        case .idxGzip:
            guard FileManager.default.createFile(atPath: Self.scratch, contents: data) else { return }
            for rank in [1, 3] { _ = try? IDXFile.read(Self.scratch, expectedRank: rank) }
        case .experiment:
            guard let experiment = try? Experiment.decode(data, path: "input") else { return }
            _ = experiment.runs(trainSize: experiment.trainSize ?? 1)
        case .fixture:
            guard let fixture = try? Fixture.decode(data, path: "input") else { return }
            // A fixture's tensors are at most a few thousand values; checking a huge one is
            // slow, not wrong.
            guard fixture.input.data.count <= 4_096 else { return }
            _ = fixture.check()
        case .results:
            guard let parsed = try? ResultsLog.parse(data, path: "input"), !parsed.records.isEmpty else { return }
            let table = ResultTable(records: parsed.records)
            _ = MarkdownReport.render(table, chartFile: "c.svg", csvFile: "c.csv", experimentFile: "e.json", resultsFile: "r.jsonl")
            _ = CSVReport.render(table)
            _ = SVGChart.render(table, title: "fuzz")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    Target.current.run(Data(bytes: bytes, count: count))
    return 0
}
