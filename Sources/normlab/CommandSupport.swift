import Foundation
import NormLab

/// A mistake in how a command was called.
struct UsageError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Prints a line at once, unbuffered, so progress shows while long work runs. A closed output
/// (`normlab sweep … | head`) is not an error here: see `ParallelSweep` for what a sweep does.
func printNow(_ text: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((text + "\n").utf8))
}

func printError(_ text: String) {
    try? FileHandle.standardError.write(contentsOf: Data((text + "\n").utf8))
}

/// A Float setting for JSON output as the decimal a user would write: 0.05, not the
/// 0.05000000074505806 that the Float holds once widened to Double. Its shortest form that reads
/// back as the same Float, so no information is lost.
func decimal(_ value: Float) -> Double {
    Double(value.description) ?? Double(value)
}

/// Options of the form `--name value` and `--flag`, taken out of an argument list one by one,
/// so that whatever is left over can be reported as unknown.
struct Options {
    private(set) var remaining: [String]

    init(_ arguments: [String]) { remaining = arguments }

    /// Removes `--name` and reports whether it was there.
    mutating func flag(_ name: String) -> Bool {
        guard let index = remaining.firstIndex(of: name) else { return false }
        remaining.remove(at: index)
        return true
    }

    /// Removes `--name VALUE` and returns VALUE.
    mutating func value(_ name: String) throws -> String? {
        guard let index = remaining.firstIndex(of: name) else { return nil }
        guard index + 1 < remaining.count else { throw UsageError("\(name) needs a value") }
        let value = remaining[index + 1]
        remaining.removeSubrange(index...index + 1)
        return value
    }

    /// Removes `--name N` and returns N, which must be a whole number in `range`.
    mutating func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = try value(name) else { return nil }
        guard let number = Int(text), range.contains(number) else {
            throw UsageError("\(name) takes a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return number
    }

    /// Removes `--name X` and returns X, which must be a finite number.
    mutating func float(_ name: String) throws -> Float? {
        guard let text = try value(name) else { return nil }
        guard let number = Float(text), number.isFinite else {
            throw UsageError("\(name) takes a number, got '\(text)'")
        }
        return number
    }

    /// Fails on any option left over; returns the positional arguments.
    func positionals() throws -> [String] {
        if let unknown = remaining.first(where: { $0.hasPrefix("-") }) {
            throw UsageError("unknown option '\(unknown)'")
        }
        return remaining
    }
}

/// The normalizer a user named (one of `NormalizerRegistry.kinds`).
func normalizerKind(named name: String) throws -> NormalizerKind {
    guard let kind = NormalizerKind(rawValue: name) else {
        throw UsageError("unknown normalizer '\(name)'; use one of \(NormalizerRegistry.nameList)")
    }
    return kind
}

/// This program's own file, absolute (`/proc/self/exe` on Linux, else Foundation's idea of it),
/// for starting copies of it: `sweep --jobs`'s children, Slurm's tasks.
func programPath() -> String? {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? Bundle.main.executablePath
}
