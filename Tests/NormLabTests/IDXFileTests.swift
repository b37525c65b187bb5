import Foundation
import XCTest
@testable import NormLab

/// Reading IDX files: the embedded data, plain and gzip files, and every kind of bad file.
final class IDXFileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("normlab-idx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func idx(dimensions: [Int], payload: [UInt8]) -> Data {
        var bytes: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for size in dimensions { bytes += [UInt8(size >> 24 & 255), UInt8(size >> 16 & 255), UInt8(size >> 8 & 255), UInt8(size & 255)] }
        return Data(bytes + payload)
    }

    private func write(_ data: Data, _ name: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    /// gzip-compresses with the system's gzip, as the distributed files are.
    private func gzip(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-kf", path]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return path + ".gz"
    }

    func testEmbeddedFashionMNIST() throws {
        let data = try FashionMNIST.load(directory: FashionMNIST.embeddedDirectory())
        XCTAssertEqual(data.train.count, 10_000)
        XCTAssertEqual(data.test.count, 10_000)
        XCTAssertEqual([data.train.rows, data.train.columns], [28, 28])
        // Fashion-MNIST's first training label is 9 (ankle boot), its first test label 9 too.
        XCTAssertEqual(data.train.labels[0], 9)
        XCTAssertEqual(data.test.labels[0], 9)
        // Every class appears, roughly equally.
        let counts = (0..<10).map { label in data.test.labels.filter { $0 == label }.count }
        XCTAssertEqual(counts, [Int](repeating: 1000, count: 10))
        // Standardized pixels: the embedded subset's mean and std are close to 0 and 1.
        var batch = Tensor(shape: [0])
        data.train.batch(0..<1000, into: &batch)
        let mean = batch.scalars.reduce(0.0) { $0 + Double($1) } / Double(batch.count)
        let variance = batch.scalars.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(batch.count)
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(variance.squareRoot(), 1, accuracy: 0.05)
        XCTAssertEqual(try FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 123).train.count, 123)
    }

    func testPlainAndGzipFilesReadTheSame() throws {
        let payload = (0..<24).map { UInt8($0 * 7 % 256) }
        let plain = try write(idx(dimensions: [2, 3, 4], payload: payload), "images")
        let compressed = try gzip(plain)
        let a = try IDXFile.read(plain, expectedRank: 3)
        let b = try IDXFile.read(compressed, expectedRank: 3)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.dimensions, [2, 3, 4])
        XCTAssertEqual(a.bytes, payload)
    }

    func testBadFilesAreClearErrors() throws {
        func assertDataError(_ path: String, contains text: String, rank: Int = 3, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try IDXFile.read(path, expectedRank: rank), file: file, line: line) { error in
                XCTAssertTrue(error is DataError, "\(error)", file: file, line: line)
                XCTAssertTrue("\(error)".contains(text), "\"\(error)\" should mention \"\(text)\"", file: file, line: line)
            }
        }
        assertDataError(directory.appendingPathComponent("missing").path, contains: "no such file")
        assertDataError(try write(Data([0, 0]), "tiny"), contains: "truncated")
        assertDataError(try write(Data([0x1f, 0x8c, 8, 3, 0, 0, 0, 0]), "magic"), contains: "not an unsigned-byte IDX")
        assertDataError(try write(idx(dimensions: [2, 2, 2], payload: [1, 2, 3, 4, 5, 6, 7, 8]), "rank"), contains: "dimensions, expected 1", rank: 1)
        var floats = idx(dimensions: [1], payload: [0, 0, 0, 0])
        floats[2] = 0x0D
        assertDataError(try write(floats, "floats"), contains: "type code", rank: 1)
        let short = try write(idx(dimensions: [2, 2, 2], payload: [1, 2, 3]), "short")
        assertDataError(short, contains: "truncated")
        assertDataError(try write(idx(dimensions: [1, 1, 2], payload: [1, 2, 3]), "long"), contains: "corrupt")
        // A hostile header: 0xFFFFFFFF³ bytes is past Int.max; rejected, not an overflow trap.
        let huge = 0xFFFF_FFFF
        assertDataError(try write(idx(dimensions: [huge, huge, huge], payload: [1, 2]), "huge"), contains: "more bytes than any file holds")

        // A gzip file cut in half.
        let big = try write(idx(dimensions: [100, 10, 10], payload: (0..<10_000).map { UInt8($0 * 131 % 251) }), "big")
        let gz = try Data(contentsOf: URL(fileURLWithPath: gzip(big)))
        let cut = try write(gz.prefix(gz.count / 2), "cut.gz")
        XCTAssertThrowsError(try IDXFile.read(cut, expectedRank: 3)) { error in XCTAssertTrue(error is DataError, "\(error)") }
    }

    func testImageAndLabelCountsMustAgree() throws {
        let folder = directory.appendingPathComponent("mismatch")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (prefix, count) in [("train", 3), ("t10k", 2)] {
            try idx(dimensions: [count, 2, 2], payload: [UInt8](repeating: 1, count: count * 4))
                .write(to: folder.appendingPathComponent("\(prefix)-images-idx3-ubyte"))
            try idx(dimensions: [2], payload: [0, 1]).write(to: folder.appendingPathComponent("\(prefix)-labels-idx1-ubyte"))
        }
        XCTAssertThrowsError(try FashionMNIST.load(directory: folder.path)) { error in
            XCTAssertTrue("\(error)".contains("3 images but 2 labels"), "\(error)")
        }
        XCTAssertThrowsError(try FashionMNIST.load(directory: directory.appendingPathComponent("nowhere").path))
        XCTAssertThrowsError(try FashionMNIST.load(directory: FashionMNIST.embeddedDirectory(), trainSize: 20_000)) { error in
            XCTAssertTrue("\(error)".contains("has 10000"), "\(error)")
        }
    }
}
