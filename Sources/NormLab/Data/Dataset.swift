import Foundation

/// Labelled grey images in memory, as bytes, standardized on the way into a batch.
public struct Dataset: Sendable {
    /// count × rows × columns bytes.
    public let pixels: [UInt8]
    public let labels: [UInt8]
    public let rows: Int
    public let columns: Int
    public let classes: Int

    public var count: Int { labels.count }

    /// Fashion-MNIST's training-set mean and standard deviation of pixel values scaled to [0, 1].
    public static let fashionMNISTMean: Float = 0.2860
    public static let fashionMNISTStd: Float = 0.3530

    /// - Throws: `DataError.mismatch` when the image and label counts differ or a label is out
    ///   of range.
    public init(images: IDXFile.Contents, labels: IDXFile.Contents, classes: Int = 10, description: String) throws {
        guard images.dimensions.count == 3, labels.dimensions.count == 1 else {
            throw DataError.mismatch(detail: "\(description): images need 3 dimensions and labels 1")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError.mismatch(detail: "\(description): \(images.dimensions[0]) images but \(labels.dimensions[0]) labels")
        }
        if let bad = labels.bytes.first(where: { Int($0) >= classes }) {
            throw DataError.corrupt(path: description, detail: "label \(bad) is outside 0..<\(classes)")
        }
        pixels = images.bytes
        self.labels = labels.bytes
        rows = images.dimensions[1]
        columns = images.dimensions[2]
        self.classes = classes
    }

    private init(pixels: [UInt8], labels: [UInt8], rows: Int, columns: Int, classes: Int) {
        self.pixels = pixels
        self.labels = labels
        self.rows = rows
        self.columns = columns
        self.classes = classes
    }

    /// The first `count` examples.
    public func prefix(_ count: Int) -> Dataset {
        let kept = min(count, self.count)
        return Dataset(
            pixels: Array(pixels[0..<kept * rows * columns]), labels: Array(labels[0..<kept]),
            rows: rows, columns: columns, classes: classes)
    }

    /// Writes the examples at `indices` into `images` ([n, 1, rows, columns], scaled to [0, 1]
    /// and standardized with Fashion-MNIST's mean and std).
    public func batch<Indices: Collection<Int>>(_ indices: Indices, into images: inout Tensor) {
        let size = rows * columns
        images.reshape(to: [indices.count, 1, rows, columns])
        let scale = 1 / (255 * Self.fashionMNISTStd)
        let shift = -Self.fashionMNISTMean / Self.fashionMNISTStd
        images.scalars.withUnsafeMutableBufferPointer { out in
            pixels.withUnsafeBufferPointer { pixels in
                for (slot, index) in indices.enumerated() {
                    for i in 0..<size { out[slot * size + i] = Float(pixels[index * size + i]) * scale + shift }
                }
            }
        }
    }
}

/// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; Zalando, MIT licence) from a folder of IDX files.
public enum FashionMNIST {
    /// The file names, as distributed and as in Debian's `dataset-fashion-mnist`.
    static let files = (
        trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
        testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    /// Where a full copy lives once `apt-get install dataset-fashion-mnist` has run.
    public static let systemDirectory = "/usr/share/datasets/fashion-mnist"

    /// The copy embedded in the repository (`data/fashion-mnist`): the full test set and the
    /// first 10,000 training images. Looked for from the working directory, then from the
    /// source tree this program was built from.
    public static func embeddedDirectory() throws -> String {
        let relative = "data/fashion-mnist"
        let fromSource = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(relative).path
        for candidate in [relative, fromSource] where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        throw DataError.notFound(
            detail: "the embedded Fashion-MNIST (\(relative)) was not found: run from the repository root, or name a folder with --data")
    }

    /// Loads the training and test sets from `directory` (files plain or `.gz`).
    /// - Parameter trainSize: keep only the first this many training examples.
    public static func load(directory: String, trainSize: Int? = nil) throws -> (train: Dataset, test: Dataset) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError.notFound(detail: "data folder \(directory) does not exist")
        }
        func path(_ name: String) throws -> String {
            for candidate in ["\(directory)/\(name).gz", "\(directory)/\(name)"]
            where FileManager.default.fileExists(atPath: candidate) {
                return candidate
            }
            throw DataError.notFound(detail: "\(directory) has no \(name) or \(name).gz")
        }
        func load(_ images: String, _ labels: String) throws -> Dataset {
            let imagesPath = try path(images), labelsPath = try path(labels)
            return try Dataset(
                images: IDXFile.read(imagesPath, expectedRank: 3), labels: IDXFile.read(labelsPath, expectedRank: 1),
                description: "\(imagesPath) and \(labelsPath)")
        }
        var train = try load(files.trainImages, files.trainLabels)
        let test = try load(files.testImages, files.testLabels)
        if let trainSize {
            guard trainSize > 0 else { throw DataError.mismatch(detail: "the training-set size must be positive, got \(trainSize)") }
            guard trainSize <= train.count else {
                throw DataError.mismatch(detail: "asked for \(trainSize) training images, \(directory) has \(train.count)")
            }
            train = train.prefix(trainSize)
        }
        return (train, test)
    }
}
