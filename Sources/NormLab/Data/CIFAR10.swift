import Foundation

/// CIFAR-10 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html) in its binary
/// version: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, each a run of records
/// of one label byte (0–9) and 3 × 32 × 32 pixel bytes (the red, green and blue planes, row
/// by row). Images are standardized per channel with the training set's mean and standard
/// deviation.
public enum CIFAR10 {
    public static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
    public static let testFile = "test_batch.bin"
    public static let imageShape = ImageShape(channels: 3, height: 32, width: 32)
    public static let classes = 10
    static var recordSize: Int { 1 + imageShape.channels * imageShape.height * imageShape.width }

    /// The folder of the binary files: `directory` itself, or its `cifar-10-batches-bin` (as the
    /// archive unpacks); nil when neither holds `data_batch_1.bin`.
    public static func batchesDirectory(in directory: String) -> String? {
        for candidate in [directory, (directory as NSString).appendingPathComponent("cifar-10-batches-bin")]
        where FileManager.default.fileExists(atPath: (candidate as NSString).appendingPathComponent(trainFiles[0])) {
            return candidate
        }
        return nil
    }

    /// Loads the training and test sets.
    /// - Parameter trainSize: keep only the first this many training examples.
    /// - Throws: `DataError` for a missing, truncated or corrupt file.
    public static func load(directory: String, trainSize: Int? = nil) throws -> (train: Dataset, test: Dataset) {
        guard let folder = batchesDirectory(in: directory) else {
            throw DataError.notFound(detail: "\(directory) has no CIFAR-10 binary files (\(trainFiles[0]) …)")
        }
        var trainPixels: [UInt8] = [], trainLabels: [UInt8] = []
        for name in trainFiles {
            let part = try read((folder as NSString).appendingPathComponent(name))
            trainPixels += part.pixels
            trainLabels += part.labels
        }
        let (mean, std) = channelStatistics(trainPixels, channels: imageShape.channels)
        let testPart = try read((folder as NSString).appendingPathComponent(testFile))
        func dataset(_ pixels: [UInt8], _ labels: [UInt8], _ description: String) throws -> Dataset {
            try Dataset(
                pixels: pixels, labels: labels, channels: imageShape.channels, rows: imageShape.height,
                columns: imageShape.width, classes: classes, mean: mean, std: std, description: description)
        }
        let train = try dataset(trainPixels, trainLabels, folder)
        let test = try dataset(testPart.pixels, testPart.labels, (folder as NSString).appendingPathComponent(testFile))
        return (try train.first(trainSize, of: folder), test)
    }

    /// One binary file's images (channel planes in turn) and labels.
    /// - Throws: `DataError` when the file is missing, empty, not a whole number of records, or
    ///   holds a label outside 0–9.
    static func read(_ path: String) throws -> (pixels: [UInt8], labels: [UInt8]) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DataError.notFound(detail: "\(path) is missing: CIFAR-10 needs \(trainFiles.joined(separator: ", ")) and \(testFile)")
        }
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw DataError.unreadable(path: path, detail: error.localizedDescription)
        }
        let size = recordSize
        guard !bytes.isEmpty else { throw DataError.truncated(path: path, detail: "the file is empty") }
        guard bytes.count % size == 0 else {
            throw DataError.truncated(
                path: path, detail: "\(bytes.count) bytes is not a whole number of \(size)-byte records (\(bytes.count / size) whole, \(bytes.count % size) bytes left over)")
        }
        let count = bytes.count / size
        var labels = [UInt8](repeating: 0, count: count)
        var pixels = [UInt8](repeating: 0, count: count * (size - 1))
        for record in 0..<count {
            let label = bytes[record * size]
            guard Int(label) < classes else {
                throw DataError.corrupt(path: path, detail: "record \(record) has label \(label), outside 0..<\(classes)")
            }
            labels[record] = label
            pixels.replaceSubrange(record * (size - 1)..<(record + 1) * (size - 1), with: bytes[(record * size + 1)..<((record + 1) * size)])
        }
        return (pixels, labels)
    }

    /// Each channel's mean and (population) standard deviation of pixel values scaled to [0, 1].
    static func channelStatistics(_ pixels: [UInt8], channels: Int) -> (mean: [Float], std: [Float]) {
        let plane = imageShape.height * imageShape.width, size = channels * plane
        var sums = [Double](repeating: 0, count: channels), squares = [Double](repeating: 0, count: channels)
        for (index, pixel) in pixels.enumerated() {
            let channel = index % size / plane, value = Double(pixel) / 255
            sums[channel] += value
            squares[channel] += value * value
        }
        let perChannel = Double(max(1, pixels.count / channels))
        let mean = sums.map { $0 / perChannel }
        let std = zip(squares, mean).map { max(1e-12, $0 / perChannel - $1 * $1).squareRoot() }
        return (mean.map(Float.init), std.map(Float.init))
    }
}

extension Dataset {
    /// The training and test sets in `directory`: CIFAR-10 when it holds CIFAR-10's binary
    /// files, else Fashion-MNIST's IDX files.
    /// - Parameter trainSize: keep only the first this many training examples.
    public static func load(directory: String, trainSize: Int? = nil) throws -> (train: Dataset, test: Dataset) {
        if CIFAR10.batchesDirectory(in: directory) != nil { return try CIFAR10.load(directory: directory, trainSize: trainSize) }
        return try FashionMNIST.load(directory: directory, trainSize: trainSize)
    }
}
