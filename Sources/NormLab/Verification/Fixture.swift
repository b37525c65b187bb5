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

    /// A weight-standardized convolution (`conv_ws` cases): its channels, square kernel,
    /// stride, zero padding and the standardization's ε.
    public struct StandardizedConvolution: Decodable, Sendable {
        public var in_channels: Int
        public var out_channels: Int
        public var kernel: Int
        public var stride: Int
        public var padding: Int
        public var eps: Double
    }

    public struct Expected: Decodable, Sendable {
        public var output: [Double]
        public var grad_input: [Double]
        /// dL/d of each parameter, by the parameter's name (`grad_gamma` → `gamma`).
        public var parameterGradients: [String: [Double]]
        public var state: [String: [Double]]?

        enum CodingKeys: String, CodingKey {
            case output, grad_input, state
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            output = try container.decode([Double].self, forKey: .output)
            grad_input = try container.decode([Double].self, forKey: .grad_input)
            state = try container.decodeIfPresent([String: [Double]].self, forKey: .state)
            let all = try decoder.container(keyedBy: AnyKey.self)
            parameterGradients = [:]
            for key in all.allKeys where key.stringValue.hasPrefix("grad_") && key.stringValue != "grad_input" {
                parameterGradients[String(key.stringValue.dropFirst("grad_".count))] = try all.decode([Double].self, forKey: key)
            }
        }
    }

    public struct Tolerance: Decodable, Sendable {
        public var abs: Double
        public var rel: Double
    }

    public var format: String
    public var name: String
    /// What the case checks: a normalizer, or (`conv_ws`) a weight-standardized convolution
    /// with its raw weights.
    public var normalizer: NormalizerDescription?
    public var convolution: StandardizedConvolution?
    public var weight: Input?
    public var mode: String
    public var input: Input
    /// The normalizer's parameters by name (`gamma`, `beta`, and a kind's own, such as `tau` or `v`): every
    /// top-level list of numbers that is not one of the fields above or below.
    public var parameters: [String: [Double]]
    public var grad_output: [Double]
    public var state: [String: [Double]]?
    public var expected: Expected?
    public var expect_error: String?
    public var tolerance: Tolerance?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case format, name, normalizer, convolution = "conv_ws", weight, mode, input, grad_output, state, expected, expect_error
        case tolerance
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        format = try container.decode(String.self, forKey: .format)
        name = try container.decode(String.self, forKey: .name)
        normalizer = try container.decodeIfPresent(NormalizerDescription.self, forKey: .normalizer)
        convolution = try container.decodeIfPresent(StandardizedConvolution.self, forKey: .convolution)
        weight = try container.decodeIfPresent(Input.self, forKey: .weight)
        guard (normalizer == nil) != (convolution == nil) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath, debugDescription: "a fixture has exactly one of \"normalizer\" and \"conv_ws\""))
        }
        if convolution != nil && weight == nil {
            throw DecodingError.keyNotFound(CodingKeys.weight, .init(codingPath: decoder.codingPath, debugDescription: "a conv_ws case needs its weights"))
        }
        mode = try container.decodeIfPresent(String.self, forKey: .mode) ?? "training"
        input = try container.decode(Input.self, forKey: .input)
        // A list, or (`conv_ws` cases) a tensor with its own shape.
        if let tensor = try? container.decode(Input.self, forKey: .grad_output) {
            grad_output = tensor.data
        } else {
            grad_output = try container.decode([Double].self, forKey: .grad_output)
        }
        state = try container.decodeIfPresent([String: [Double]].self, forKey: .state)
        expected = try container.decodeIfPresent(Expected.self, forKey: .expected)
        expect_error = try container.decodeIfPresent(String.self, forKey: .expect_error)
        tolerance = try container.decodeIfPresent(Tolerance.self, forKey: .tolerance)
        let fixed = Set(CodingKeys.allCases.map(\.rawValue))
        let all = try decoder.container(keyedBy: AnyKey.self)
        parameters = [:]
        for key in all.allKeys where !fixed.contains(key.stringValue) {
            parameters[key.stringValue] = try all.decode([Double].self, forKey: key)
        }
    }

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
