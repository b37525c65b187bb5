import Foundation

/// Labelled images in memory, as bytes, standardized per channel on the way into a batch.
public struct Dataset: Sendable {
    /// count × channels × rows × columns bytes (each image's channel planes in turn).
    public let pixels: [UInt8]
    public let labels: [UInt8]
    public let channels: Int
    public let rows: Int
    public let columns: Int
    public let classes: Int
    /// Each channel's mean and standard deviation of pixel values scaled to [0, 1], which
    /// `batch` standardizes with (the training set's, for a test set too).
    public let mean: [Float]
    public let std: [Float]

    public var count: Int { labels.count }

    /// The size of one image.
    public var imageShape: ImageShape { ImageShape(channels: channels, height: rows, width: columns) }

    /// Fashion-MNIST's training-set mean and standard deviation of pixel values scaled to [0, 1].
    public static let fashionMNISTMean: Float = 0.2860
    public static let fashionMNISTStd: Float = 0.3530

    /// Grey images from IDX files, standardized with Fashion-MNIST's mean and std.
    /// - Throws: `DataError.mismatch` when the image and label counts differ or a label is out
    ///   of range.
    public init(images: IDXFile.Contents, labels: IDXFile.Contents, classes: Int = 10, description: String) throws {
        guard images.dimensions.count == 3, labels.dimensions.count == 1 else {
            throw DataError.mismatch(detail: "\(description): images need 3 dimensions and labels 1")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError.mismatch(detail: "\(description): \(images.dimensions[0]) images but \(labels.dimensions[0]) labels")
        }
        try self.init(
            pixels: images.bytes, labels: labels.bytes, channels: 1, rows: images.dimensions[1],
            columns: images.dimensions[2], classes: classes, mean: [Self.fashionMNISTMean], std: [Self.fashionMNISTStd],
            description: description)
    }

    /// - Throws: `DataError` when the sizes disagree or a label is out of range.
    init(
        pixels: [UInt8], labels: [UInt8], channels: Int, rows: Int, columns: Int, classes: Int,
        mean: [Float], std: [Float], description: String
    ) throws {
        guard pixels.count == labels.count * channels * rows * columns, mean.count == channels, std.count == channels else {
            throw DataError.mismatch(detail: "\(description): \(pixels.count) pixels do not make \(labels.count) images of \(channels)×\(rows)×\(columns)")
        }
        if let bad = labels.first(where: { Int($0) >= classes }) {
            throw DataError.corrupt(path: description, detail: "label \(bad) is outside 0..<\(classes)")
        }
        self.pixels = pixels
        self.labels = labels
        self.channels = channels
        self.rows = rows
        self.columns = columns
        self.classes = classes
        self.mean = mean
        self.std = std
    }

    /// The first `count` examples.
    public func prefix(_ count: Int) -> Dataset {
        let kept = min(count, self.count)
        return try! Dataset(
            pixels: Array(pixels[0..<kept * channels * rows * columns]), labels: Array(labels[0..<kept]),
            channels: channels, rows: rows, columns: columns, classes: classes, mean: mean, std: std, description: "")
    }

    /// The first `count` examples, or all for nil.
    /// - Throws: `DataError.mismatch` for a count that is not positive or larger than the set,
    ///   which came from `source`.
    func first(_ count: Int?, of source: String) throws -> Dataset {
        guard let count else { return self }
        guard count > 0 else { throw DataError.mismatch(detail: "the training-set size must be positive, got \(count)") }
        guard count <= self.count else {
            throw DataError.mismatch(detail: "asked for \(count) training images, \(source) has \(self.count)")
        }
        return prefix(count)
    }

    /// Writes the examples at `indices` into `images` ([n, C, rows, columns], scaled to [0, 1]
    /// and standardized with each channel's `mean` and `std`).
    public func batch<Indices: Collection<Int>>(_ indices: Indices, into images: inout Tensor) {
        let plane = rows * columns, size = channels * plane
        images.reshape(to: [indices.count, channels, rows, columns])
        let scales = std.map { 1 / (255 * $0) }
        let shifts = zip(mean, std).map { -$0 / $1 }
        images.scalars.withUnsafeMutableBufferPointer { out in
            pixels.withUnsafeBufferPointer { pixels in
                for (slot, index) in indices.enumerated() {
                    for channel in 0..<channels {
                        let (scale, shift) = (scales[channel], shifts[channel])
                        let first = channel * plane
                        for i in first..<(first + plane) { out[slot * size + i] = Float(pixels[index * size + i]) * scale + shift }
                    }
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
        let train = try load(files.trainImages, files.trainLabels)
        let test = try load(files.testImages, files.testLabels)
        return (try train.first(trainSize, of: directory), test)
    }
}
