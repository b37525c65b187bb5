import Foundation
import NormLab

/// `normlab verify FILE_OR_DIR…`: runs reference fixtures, one line each, and a summary line.
enum VerifyCommand {
    static func run(_ arguments: [String]) throws -> Int32 {
        let paths = try Options(arguments).positionals()
        guard !paths.isEmpty else { throw UsageError("name at least one fixture file or folder") }
        var files: [URL] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw UsageError("no such file or folder: \(path)")
            }
            let url = URL(fileURLWithPath: path)
            if isDirectory.boolValue {
                let contents = try FileManager.default.contentsOfDirectory(atPath: path)
                files += contents.filter { $0.hasSuffix(".json") }.sorted().map { url.appendingPathComponent($0) }
            } else {
                files.append(url)
            }
        }
        var passed = 0, failed = 0
        for file in files {
            let line: String
            do {
                let result = try Fixture.load(from: file).check()
                if result.passed { passed += 1 } else { failed += 1 }
                let errors = result.comparisons.map { comparison in
                    "\(comparison.name) \(String(format: "%.1e", comparison.maxError))\(comparison.passed ? "" : " (over tolerance)")"
                }.joined(separator: ", ")
                line = "\(result.passed ? "pass" : "FAIL")  \(result.name)  " + (result.message ?? "max error: " + errors)
            } catch {
                failed += 1
                line = "FAIL  \(file.lastPathComponent)  \(error)"
            }
            print(line)
        }
        print("\(passed) passed, \(failed) failed")
        return failed == 0 && passed > 0 ? 0 : 1
    }
}
