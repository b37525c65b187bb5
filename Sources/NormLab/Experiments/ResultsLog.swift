import Foundation

/// A JSON Lines file of finished runs, appended one complete line at a time and synced, so that
/// an interrupted sweep (Ctrl-C, kill -9, power loss) loses at most the run in progress.
///
/// A last line cut short by a crash is removed when the file is next opened; damage anywhere
/// else is reported, never skipped silently.
public final class ResultsLog {
    public let path: String
    public private(set) var records: [RunRecord] = []
    /// Set when opening removed a torn last line.
    public private(set) var repairedTornLine = false

    /// Opens (or creates on first append) the results file at `path`.
    /// - Parameter repairing: whether to cut a torn last line off the file; false for a reader
    ///   that must not touch a file another process may be appending to (the line is skipped).
    /// - Throws: `ExperimentError.results` when a complete line is not a valid record.
    public init(path: String, repairing: Bool = true) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let parsed = try Self.parse(data, path: path)
        records = parsed.records
        repairedTornLine = parsed.completeLength < data.count
        let goodLength = parsed.completeLength
        if repairedTornLine && repairing {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(goodLength))
            try handle.close()
        }
    }

    /// Appends one record as a single line with a single write, then syncs it to disk.
    public func append(_ record: RunRecord) throws {
        let line = try Self.line(for: record)
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ExperimentError.results("cannot create \(path)")
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
        try handle.synchronize()
        records.append(record)
    }

    /// The records of a results file's bytes, and the length of its complete lines: a last line
    /// without its newline (a write cut short) is left out. `path` names the file in errors.
    /// - Throws: `ExperimentError.results` when a complete line is not a valid record.
    public static func parse(_ data: Data, path: String) throws -> (records: [RunRecord], completeLength: Int) {
        var records: [RunRecord] = []
        var goodLength = 0
        var lineStart = 0
        var lineNumber = 0
        let bytes = [UInt8](data)
        let decoder = JSONDecoder()
        while lineStart < bytes.count {
            lineNumber += 1
            // No newline: the write of this line was interrupted.
            guard let newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            let line = Data(bytes[lineStart..<newline])
            if !line.allSatisfy({ $0 == UInt8(ascii: " ") }) {
                do {
                    records.append(try decoder.decode(RunRecord.self, from: line))
                } catch {
                    throw ExperimentError.results("\(path), line \(lineNumber), is not a run record: \(error)")
                }
            }
            lineStart = newline + 1
            goodLength = lineStart
        }
        return (records, goodLength)
    }

    /// A record as one line of a results file: its JSON with sorted keys, then a newline.
    public static func line(for record: RunRecord) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(record)
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Replaces the file with `records`, in that order: a reader sees the old file or the new
    /// one, never a mix.
    public static func write(_ records: [RunRecord], to path: String) throws {
        var text = Data()
        for record in records { text.append(try line(for: record)) }
        try writeWhole(text, to: path)
    }
}

/// Writes `data` to `path` whole or not at all: into a temporary file beside it, synced, then
/// renamed over it. A process killed at any moment leaves the old file (or none) or the new one,
/// and at worst a hidden temporary file.
func writeWhole(_ data: Data, to path: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    let temporary = (folder as NSString).appendingPathComponent(
        ".\((path as NSString).lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
    guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
        throw ExperimentError.results("cannot create \(temporary)")
    }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
    try handle.write(contentsOf: data)
    try handle.synchronize()
    try handle.close()
    guard rename(temporary, path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(atPath: temporary)
        throw ExperimentError.results("cannot move \(temporary) to \(path): \(reason)")
    }
}
