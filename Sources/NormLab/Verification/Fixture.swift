import Foundation

/// One reference case in the `normlab-fixture/1` format (see `Tests/Fixtures/normalizers/FORMAT.md`):
/// a normalizer, an input, and what a correct implementation returns, computed in float64.
public struct Fixture: Decodable, Sendable {
    /// `kind`, `channels`, `eps`, and the settings the kind's registration reads from fixtures
    /// (`momentum`, `groups`, …; defaults where absent).
    public struct NormalizerDescription: Decodable, Sendable {
        public var channels: Int
        public var settings: NormalizerSettings
        public var kind: NormalizerKind { settings.kind }

        enum CodingKeys: String, CodingKey {
            case kind, channels, eps
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            settings = NormalizerSettings(kind: try container.decode(NormalizerKind.self, forKey: .kind))
            channels = try container.decode(Int.self, forKey: .channels)
            settings.epsilon = Float(try container.decode(Double.self, forKey: .eps))
            let values = try decoder.container(keyedBy: AnyKey.self)
            for setting in settings.kind.registration.settings(in: .fixture) {
                if let value = try setting.decodeIfPresent(from: values, key: setting.key) { try settings.set(setting.key, value) }
            }
        }
    }

    public struct Input: Decodable, Sendable {
        public var shape: [Int]
        public var data: [Double]
    }

    public struct Expected: Decodable, Sendable {
        public var output: [Double]
        public var grad_input: [Double]
        public var grad_gamma: [Double]
        public var grad_beta: [Double]
        public var state: [String: [Double]]?
    }

    public struct Tolerance: Decodable, Sendable {
        public var abs: Double
        public var rel: Double
    }

    public var format: String
    public var name: String
    public var normalizer: NormalizerDescription
    public var mode: String
    public var input: Input
    public var gamma: [Double]
    public var beta: [Double]
    public var grad_output: [Double]
    public var state: [String: [Double]]?
    public var expected: Expected?
    public var expect_error: String?
    public var tolerance: Tolerance?

    /// Reads and checks a fixture file.
    /// - Throws: `FixtureError` when the file cannot be read or is not a valid fixture.
    public static func load(from url: URL) throws -> Fixture {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw FixtureError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        return try decode(data, path: url.path)
    }

    /// Reads a fixture from its file's bytes; `path` names it in errors.
    /// - Throws: `FixtureError.malformed` for anything but a valid fixture.
    public static func decode(_ data: Data, path: String) throws -> Fixture {
        let fixture: Fixture
        do {
            fixture = try JSONDecoder().decode(Fixture.self, from: data)
        } catch let error as DecodingError {
            throw FixtureError.malformed(path: path, reason: describe(error))
        } catch {
            throw FixtureError.malformed(path: path, reason: "\(error)")
        }
        guard fixture.format == "normlab-fixture/1" else {
            throw FixtureError.malformed(path: path, reason: "format is \"\(fixture.format)\", expected \"normlab-fixture/1\"")
        }
        guard fixture.mode == "training" || fixture.mode == "inference" else {
            throw FixtureError.malformed(path: path, reason: "mode is \"\(fixture.mode)\", expected \"training\" or \"inference\"")
        }
        guard (fixture.expected == nil) != (fixture.expect_error == nil) else {
            throw FixtureError.malformed(path: path, reason: "a fixture has exactly one of \"expected\" and \"expect_error\"")
        }
        return fixture
    }
}

/// A fixture file that could not be used.
public enum FixtureError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
        case .malformed(let path, let reason): return "\(path): not a valid normlab fixture: \(reason)"
        }
    }
}
