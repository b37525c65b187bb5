import Foundation
import XCTest
@testable import NormLab

/// The CIFAR-10 binary reader, on small files the tests write in its format.
final class CIFAR10Tests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("normlab-cifar-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// `count` records: label i % 10; pixel bytes from a seeded generator.
    private func records(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var bytes: [UInt8] = []
        for index in 0..<count {
            bytes.append(UInt8(index % 10))
            for _ in 0..<3072 { bytes.append(UInt8(truncatingIfNeeded: generator.next())) }
        }
        return bytes
    }

    /// Five training files of `perFile` records and a test file of 4, in `folder`.
    @discardableResult
    private func writeSet(perFile: Int = 3, in folder: URL? = nil) throws -> URL {
        let folder = folder ?? directory!
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (index, name) in CIFAR10.trainFiles.enumerated() {
            try Data(records(perFile, seed: UInt64(index))).write(to: folder.appendingPathComponent(name))
        }
        try Data(records(4, seed: 9)).write(to: folder.appendingPathComponent(CIFAR10.testFile))
        return folder
    }

    func testReadsImagesLabelsAndStandardizesWithTheTrainingSetsStatistics() throws {
        try writeSet()
        let (train, test) = try Dataset.load(directory: directory.path)
        XCTAssertEqual(train.count, 15)
        XCTAssertEqual(test.count, 4)
        XCTAssertEqual(train.imageShape, ImageShape(channels: 3, height: 32, width: 32))
        XCTAssertEqual(Array(train.labels.prefix(4)), [0, 1, 2, 0])
        // The second file's first record follows the first file's three.
        XCTAssertEqual(Array(train.pixels[3 * 3072..<3 * 3072 + 16]), Array(records(1, seed: 1)[1...16]))
        XCTAssertEqual(test.mean, train.mean)
        XCTAssertEqual(test.std, train.std)
        // Each channel of the standardized training images has mean 0 and std 1.
        var images = Tensor(shape: [0])
        train.batch(0..<train.count, into: &images)
        XCTAssertEqual(images.shape, [15, 3, 32, 32])
        for channel in 0..<3 {
            var values: [Double] = []
            for sample in 0..<15 {
                let start = (sample * 3 + channel) * 1024
                values += images.scalars[start..<start + 1024].map(Double.init)
            }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            XCTAssertEqual(mean, 0, accuracy: 1e-4, "channel \(channel)")
            XCTAssertEqual(variance, 1, accuracy: 1e-3, "channel \(channel)")
        }
        XCTAssertEqual(try Dataset.load(directory: directory.path, trainSize: 7).train.count, 7)
    }

    func testFindsTheArchivesFolderAndTrainsAModel() throws {
        try writeSet(perFile: 4, in: directory.appendingPathComponent("cifar-10-batches-bin"))
        let (train, test) = try Dataset.load(directory: directory.path)
        for model in ["resnet-8", "smallcnn"] {
            for kind in [NormalizerKind.group, .batch] {
                let settings = TrainingSettings(
                    model: try ModelSettings(name: model), normalizer: NormalizerSettings(kind: kind), batchSize: 4,
                    epochs: 1, baseLearningRate: 0.05, seed: 0)
                let outcome = try Trainer.train(settings, train: train, test: test)
                XCTAssertEqual(outcome.steps, 5, "\(model) \(kind)")
                XCTAssertNotNil(outcome.testAccuracy, "\(model) \(kind)")
            }
        }
    }

    func testBadFilesAreClearErrors() throws {
        func rejected(mentioning text: String, line: UInt = #line) {
            XCTAssertThrowsError(try Dataset.load(directory: directory.path), line: line) { error in
                XCTAssertTrue(error is DataError, "\(error)", line: line)
                XCTAssertTrue("\(error)".contains(text), "\(error)", line: line)
            }
        }
        try writeSet()
        let second = directory.appendingPathComponent(CIFAR10.trainFiles[1])
        // Truncated in the middle of a record.
        try Data(records(3, seed: 1).dropLast(100)).write(to: second)
        rejected(mentioning: "not a whole number of 3073-byte records")
        // A label outside 0–9.
        var bytes = records(3, seed: 1)
        bytes[3073] = 200
        try Data(bytes).write(to: second)
        rejected(mentioning: "record 1 has label 200")
        try Data().write(to: second)
        rejected(mentioning: "empty")
        try FileManager.default.removeItem(at: second)
        rejected(mentioning: "data_batch_2.bin is missing")
        try writeSet()
        try FileManager.default.removeItem(at: directory.appendingPathComponent(CIFAR10.testFile))
        rejected(mentioning: "test_batch.bin is missing")
        XCTAssertThrowsError(try CIFAR10.load(directory: directory.appendingPathComponent("nowhere").path)) {
            XCTAssertTrue("\($0)".contains("no CIFAR-10 binary files"), "\($0)")
        }
    }
}
