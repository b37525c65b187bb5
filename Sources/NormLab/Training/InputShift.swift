/// A change of the input distribution, to test a trained network on images unlike those it
/// trained on. Each applies to pixel values x in [0, 1], before the dataset's standardization:
///
/// - contrast c: x' = m + c·(x − m), m the image's own mean (over all its channels);
/// - brightness b: x' = min(1, x + b) (max(0, …) too, for b < 0);
/// - noise σ: x' = clamp(x + σ·z, 0, 1), z ~ N(0, 1) per pixel value.
///
/// The shifted values are rounded to the 256 levels of an 8-bit image, as a shifted image file
/// would be (half a level, 0.002, at most). Noise draws from a generator seeded by σ alone, so
/// that every run is tested on the same noisy images.
public struct InputShift: Hashable, Sendable, CustomStringConvertible {
    public enum Family: String, CaseIterable, Codable, Sendable {
        case contrast, brightness, noise
    }

    public var family: Family
    public var level: Double

    /// - Throws: `TrainingError.invalidSetting` for a contrast or noise below 0, a brightness
    ///   outside [−1, 1], or a level that is not a number.
    public init(_ family: Family, _ level: Double) throws {
        let valid = switch family {
        case .contrast, .noise: level >= 0 && level.isFinite
        case .brightness: (-1...1).contains(level)
        }
        guard valid else {
            throw TrainingError.invalidSetting(
                "\(family.rawValue) \(level) is not a shift: contrast and noise are numbers of at least 0, brightness lies in [-1, 1]")
        }
        (self.family, self.level) = (family, level)
    }

    /// Contrast 0.5 and 0.25, brightness 0.2 and 0.4, noise 0.1 and 0.2.
    public static let defaults: [InputShift] = [
        (Family.contrast, 0.5), (.contrast, 0.25), (.brightness, 0.2), (.brightness, 0.4), (.noise, 0.1), (.noise, 0.2),
    ].map { try! InputShift($0, $1) }

    /// The level as a record's key: "0.5", "0.25", "1".
    public var levelKey: String { Statistics.format(level) }

    public var description: String { "\(family.rawValue) \(levelKey)" }

    /// A copy of `data` with every image shifted.
    public func apply(to data: Dataset) -> Dataset {
        let size = data.channels * data.rows * data.columns
        var pixels = data.pixels
        var generator = SeededGenerator(seed: 0x5348_4946_5445_4400 ^ level.bitPattern)
        let level = level
        func quantized(_ x: Double) -> UInt8 { UInt8((min(1, max(0, x)) * 255).rounded()) }
        for image in 0..<data.count {
            let values = image * size..<(image + 1) * size
            switch family {
            case .contrast:
                let mean = values.reduce(0.0) { $0 + Double(data.pixels[$1]) } / Double(size * 255)
                for i in values { pixels[i] = quantized(mean + level * (Double(data.pixels[i]) / 255 - mean)) }
            case .brightness:
                for i in values { pixels[i] = quantized(Double(data.pixels[i]) / 255 + level) }
            case .noise:
                for i in values { pixels[i] = quantized(Double(data.pixels[i]) / 255 + level * generator.nextNormal()) }
            }
        }
        return try! Dataset(
            pixels: pixels, labels: data.labels, channels: data.channels, rows: data.rows, columns: data.columns,
            classes: data.classes, mean: data.mean, std: data.std, description: "")
    }

    /// A record's table as (family, level, value) in family order, then by level.
    public static func defaultsOrder(of table: [String: [String: Double]]) -> [(String, String, Double)] {
        Family.allCases.flatMap { family in
            (table[family.rawValue] ?? [:]).sorted { (Double($0.key) ?? 0) < (Double($1.key) ?? 0) }.map { (family.rawValue, $0.key, $0.value) }
        }
    }

    /// Each family's levels as a record holds them: `{"contrast": {"0.5": …}, …}`.
    static func byFamily(_ values: [(InputShift, Double)]) -> [String: [String: Double]] {
        var table: [String: [String: Double]] = [:]
        for (shift, value) in values { table[shift.family.rawValue, default: [:]][shift.levelKey] = value }
        return table
    }
}
