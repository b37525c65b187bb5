import CZlib
import Foundation

/// Reads the IDX format of MNIST, Fashion-MNIST and KMNIST: a big-endian header (two zero
/// bytes, a type code, the number of dimensions, then each dimension's size as a 32-bit
/// integer) followed by the data. Files may be gzip-compressed or plain.
public enum IDXFile {
    /// The unsigned-byte arrays this lab reads: images [count, rows, columns] or labels [count].
    public struct Contents: Equatable, Sendable {
        public var dimensions: [Int]
        public var bytes: [UInt8]
    }

    /// Reads an unsigned-byte IDX file with `expectedRank` dimensions.
    /// - Throws: `DataError` when the file cannot be read, is not unsigned-byte IDX of that
    ///   rank, or is shorter or longer than its header says.
    public static func read(_ path: String, expectedRank: Int) throws -> Contents {
        try parse(decompressedBytes(path), path: path, expectedRank: expectedRank)
    }

    /// Reads an IDX file's (decompressed) bytes; `path` names it in errors.
    /// - Throws: `DataError` when the bytes are not unsigned-byte IDX of that rank, or are
    ///   shorter or longer than their header says.
    public static func parse(_ data: [UInt8], path: String, expectedRank: Int) throws -> Contents {
        guard data.count >= 4 else { throw DataError.truncated(path: path, detail: "\(data.count) bytes, no IDX header") }
        guard data[0] == 0, data[1] == 0 else {
            throw DataError.badMagic(path: path, detail: String(format: "starts with 0x%02x%02x, IDX files start with 0x0000", data[0], data[1]))
        }
        guard data[2] == 0x08 else {
            throw DataError.badMagic(path: path, detail: String(format: "type code 0x%02x, only unsigned bytes (0x08) are supported", data[2]))
        }
        let rank = Int(data[3])
        guard rank == expectedRank else {
            throw DataError.badMagic(path: path, detail: "\(rank) dimensions, expected \(expectedRank)")
        }
        let headerSize = 4 + 4 * rank
        guard data.count >= headerSize else { throw DataError.truncated(path: path, detail: "header cut short") }
        var dimensions: [Int] = []
        for axis in 0..<rank {
            let offset = 4 + 4 * axis
            dimensions.append(data[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) })
        }
        // Each dimension can be up to 2³² - 1: their product can pass Int.max.
        var expectedCount = 1
        for dimension in dimensions {
            let (product, overflow) = expectedCount.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw DataError.corrupt(path: path, detail: "header dimensions \(dimensions) describe more bytes than any file holds")
            }
            expectedCount = product
        }
        let actualCount = data.count - headerSize
        guard actualCount >= expectedCount else {
            throw DataError.truncated(path: path, detail: "header promises \(expectedCount) data bytes \(dimensions), file has \(actualCount)")
        }
        guard actualCount == expectedCount else {
            throw DataError.corrupt(path: path, detail: "\(actualCount - expectedCount) bytes after the data the header describes")
        }
        return Contents(dimensions: dimensions, bytes: Array(data[headerSize...]))
    }

    /// The file's bytes, gunzipped if it is gzip (zlib reads plain files through unchanged).
    static func decompressedBytes(_ path: String) throws -> [UInt8] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw DataError.unreadable(path: path, detail: FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")
        }
        guard let file = gzopen(path, "rb") else { throw DataError.unreadable(path: path, detail: "cannot open") }
        defer { gzclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let read = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if read < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown error"
                throw DataError.corrupt(path: path, detail: "gzip data is damaged: \(message)")
            }
            if read == 0 { break }
            result.append(contentsOf: chunk[0..<Int(read)])
        }
        // zlib reports a gzip stream cut short only through gzerror after the last read.
        var code: Int32 = 0
        let message = gzerror(file, &code)
        if code != Z_OK && code != Z_STREAM_END {
            let text = message.map { String(cString: $0) } ?? "code \(code)"
            throw DataError.truncated(path: path, detail: "gzip stream ends early: \(text)")
        }
        return result
    }
}

/// A data file or folder that cannot be used, with what is wrong.
public enum DataError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, detail: String)
    case truncated(path: String, detail: String)
    case badMagic(path: String, detail: String)
    case corrupt(path: String, detail: String)
    case mismatch(detail: String)
    case notFound(detail: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let detail): return "cannot read \(path): \(detail)"
        case .truncated(let path, let detail): return "\(path) is truncated: \(detail)"
        case .badMagic(let path, let detail): return "\(path) is not an unsigned-byte IDX file: \(detail)"
        case .corrupt(let path, let detail): return "\(path) is corrupt: \(detail)"
        case .mismatch(let detail): return detail
        case .notFound(let detail): return detail
        }
    }
}
