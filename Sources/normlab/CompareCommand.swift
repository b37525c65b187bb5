import Foundation
import NormLab

/// `normlab compare A.jsonl B.jsonl [--names A,B] [--notes FILE] [--out FILE]`: two results
/// files side by side, cell by cell, with a summary line; the page goes to FILE or the terminal.
enum CompareCommand {
    static let usage = "usage: normlab compare A.jsonl B.jsonl [--names NAME_A,NAME_B] [--notes NOTES.md] [--out PAGE.md]"

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        let namesText = try options.value("--names")
        let notesFile = try options.value("--notes")
        let output = try options.value("--out")
        let files = try options.positionals()
        guard files.count == 2 else { throw UsageError(usage) }
        var names = (files[0], files[1])
        if let namesText {
            let parts = namesText.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts.contains(where: \.isEmpty) else { throw UsageError("--names takes two names, e.g. NormLab,PyTorch") }
            names = (parts[0], parts[1])
        }
        let notes = try notesFile.map { path -> String in
            do { return try String(contentsOfFile: path, encoding: .utf8) } catch { throw UsageError("cannot read \(path): \(error.localizedDescription)") }
        }
        for file in files where !FileManager.default.fileExists(atPath: file) { throw UsageError("no such file: \(file)") }
        let first = try ResultsLog(path: files[0], repairing: false).records
        let second = try ResultsLog(path: files[1], repairing: false).records
        let comparison = Comparison(first: first, second: second)
        guard !comparison.cells.isEmpty else {
            throw UsageError("\(files[0]) and \(files[1]) have no cell in common (model, normalizer, placement, batch size and base rate)")
        }
        var command = "normlab compare \(files[0]) \(files[1])"
        if let namesText { command += " --names \(namesText)" }
        if let notesFile { command += " --notes \(notesFile)" }
        if let output { command += " --out \(output)" }
        let page = comparison.markdown(
            names: names, paths: (files[0], files[1]), command: command, first: first, second: second, notes: notes)
        if let output {
            try page.write(toFile: output, atomically: true, encoding: .utf8)
            printNow("wrote \(output)")
            printNow(comparison.summary)
        } else {
            print(page, terminator: "")
        }
        return 0
    }
}
