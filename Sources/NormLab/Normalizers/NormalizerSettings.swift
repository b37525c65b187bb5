import Foundation

/// Everything needed to build a normalizer of any kind for a given channel count: what
/// experiment files, results records and fixtures describe.
///
/// ε is every method's; the rest are the kind's own settings, by key, as its registration
/// declares them (`NormalizerSetting`). A setting with a default always has a value; one without
/// (group norm's `groups`) is absent until given.
public struct NormalizerSettings: Equatable, Sendable {
    public let kind: NormalizerKind
    /// ε, added to the variance inside the square root.
    public var epsilon: Float
    /// The kind's own settings, by key.
    public private(set) var values: [String: any SettingValue]

    /// The usual ε.
    public static let defaultEpsilon: Float = 1e-5
    /// Batch norm and batch renorm: the default weight of the current batch in the running
    /// statistics, PyTorch's (batch renorm's paper uses 0.01; the lab's `brn-momentum`
    /// experiment compares the two).
    public static let defaultMomentum: Float = 0.1

    /// The kind's defaults.
    public init(kind: NormalizerKind) {
        let registration = kind.registration
        self.kind = kind
        epsilon = registration.defaultEpsilon ?? Self.defaultEpsilon
        values = [:]
        for setting in registration.settings {
            if let value = setting.defaultValue { values[setting.key] = value }
        }
    }

    /// The kind's defaults, with ε and the given settings in their place.
    /// - Throws: `NormalizerError.unknownSetting` for a key the kind does not take, or a value of
    ///   the wrong type.
    public init(kind: NormalizerKind, epsilon: Float? = nil, _ values: [String: any SettingValue]) throws {
        self.init(kind: kind)
        if let epsilon { self.epsilon = epsilon }
        for (key, value) in values.sorted(by: { $0.key < $1.key }) { try set(key, value) }
    }

    /// The value of setting `key`, if it has one.
    public subscript(key: String) -> (any SettingValue)? { values[key] }

    /// The value of setting `key` as a `Value`, if it has one of that type.
    public func value<Value: SettingValue>(_ key: String, as _: Value.Type = Value.self) -> Value? { values[key] as? Value }

    /// Gives setting `key` a value, or none (nil: its default, where it has one).
    /// - Throws: `NormalizerError.unknownSetting` for a key the kind does not take, or a value
    ///   of the wrong type.
    public mutating func set(_ key: String, _ value: (any SettingValue)?) throws {
        guard let setting = kind.registration.setting(key) else {
            throw NormalizerError.unknownSetting(kind: kind, key: key)
        }
        guard let value else {
            values[key] = setting.defaultValue
            return
        }
        guard setting.accepts(value) else { throw NormalizerError.unknownSetting(kind: kind, key: key) }
        values[key] = value
    }

    /// Builds the normalizer for a layer with `channelCount` channels.
    /// - Throws: `NormalizerError` when a setting is impossible for that layer.
    public func makeNormalizer(channelCount: Int) throws -> any Normalizer {
        try kind.registration.make(self, channelCount)
    }

    /// "ε 1e-05, momentum 0.1": the settings as a page states them, or the kind's own
    /// description.
    public var pageDescription: String {
        let registration = kind.registration
        if let description = registration.pageDescription { return description }
        var parts = ["ε \(formatSetting(Double(epsilon)))"]
        for setting in registration.settings {
            if let text = setting.describe(values[setting.key]) { parts.append(text) }
        }
        return parts.joined(separator: ", ")
    }

    public static func == (a: NormalizerSettings, b: NormalizerSettings) -> Bool {
        guard a.kind == b.kind, a.epsilon == b.epsilon, a.values.count == b.values.count else { return false }
        return a.values.allSatisfy { key, value in b.values[key].map(value.isEqual(to:)) ?? false }
    }
}

/// A value a normalizer setting can take: a number, a count, or an object such as batch
/// renorm's schedule.
public protocol SettingValue: Codable, Sendable {
    func isEqual(to other: any SettingValue) -> Bool
}

extension SettingValue where Self: Equatable {
    public func isEqual(to other: any SettingValue) -> Bool { (other as? Self) == self }
}

extension Float: SettingValue {}
extension Int: SettingValue {}
extension Bool: SettingValue {}

/// One setting of a normalizer besides ε: its keys, default, validation, and how records, pages
/// and `--help` describe it.
public struct NormalizerSetting: Sendable {
    /// Where a setting may be written.
    public enum Place: Sendable {
        /// A normalizer entry of an experiment file.
        case experiment
        /// A results record (under `recordKey`): what tells two runs apart.
        case record
        /// A fixture's `normalizer` object.
        case fixture
        /// `normlab train`, as `--KEY` (underscores as hyphens).
        case commandLine
    }

    /// Its key in experiment files and fixtures (`momentum`, `groups`).
    public let key: String
    /// Its key in results records (`norm_momentum`).
    public let recordKey: String
    /// What it is, for `--help` and the documentation.
    public let help: String
    /// Its value when none is given, or nil: absent until given.
    public let defaultValue: (any SettingValue)?
    /// Where it may be written.
    public let places: Set<Place>
    let accepts: @Sendable (any SettingValue) -> Bool
    let decode: @Sendable (_ container: KeyedDecodingContainer<AnyKey>, _ key: AnyKey) throws -> any SettingValue
    let parseText: @Sendable (_ text: String) -> (any SettingValue)?
    /// Why the value cannot be used, or nil.
    let problem: @Sendable (any SettingValue) -> String?
    /// How a page states the value (nil: absent), or nil to leave it out.
    let describe: @Sendable ((any SettingValue)?) -> String?
    /// The value a layer of C channels uses when none is given, for `train --json`.
    public let layerDefault: (@Sendable (_ channelCount: Int) -> any SettingValue)?

    /// - Parameters:
    ///   - recordKey: its key in results records; by default `key`.
    ///   - problem: why a value cannot be used, or nil when it can (ranges the normalizer's own
    ///     initializer does not check).
    ///   - describe: how a page states a value, or the absence of one; nil leaves it out.
    ///   - layerDefault: for a setting without a default, the value a layer of C channels uses.
    public init<Value: SettingValue & LosslessStringConvertible>(
        _ key: String, recordKey: String? = nil, default defaultValue: Value?, help: String, places: Set<Place>,
        problem: (@Sendable (Value) -> String?)? = nil, describe: (@Sendable (Value?) -> String?)? = nil,
        layerDefault: (@Sendable (Int) -> Value)? = nil
    ) {
        self.init(
            key, recordKey: recordKey, default: defaultValue, help: help, places: places, parse: { Value($0) },
            problem: problem, describe: describe, layerDefault: layerDefault)
    }

    /// A setting whose value is an object, written in experiment files and records only.
    public init<Value: SettingValue>(
        object key: String, recordKey: String? = nil, default defaultValue: Value?, help: String, places: Set<Place>,
        problem: (@Sendable (Value) -> String?)? = nil, describe: (@Sendable (Value?) -> String?)? = nil
    ) {
        self.init(
            key, recordKey: recordKey, default: defaultValue, help: help, places: places.subtracting([.commandLine]),
            parse: { _ in nil }, problem: problem, describe: describe, layerDefault: nil)
    }

    private init<Value: SettingValue>(
        _ key: String, recordKey: String?, default defaultValue: Value?, help: String, places: Set<Place>,
        parse: @escaping @Sendable (String) -> Value?, problem: (@Sendable (Value) -> String?)?,
        describe: (@Sendable (Value?) -> String?)?, layerDefault: (@Sendable (Int) -> Value)?
    ) {
        self.key = key
        self.recordKey = recordKey ?? key
        self.help = help
        self.defaultValue = defaultValue
        self.places = places
        accepts = { $0 is Value }
        decode = { container, key in try container.decode(Value.self, forKey: key) }
        parseText = { text -> (any SettingValue)? in parse(text) }
        self.problem = { value -> String? in
            guard let problem, let value = value as? Value else { return nil }
            return problem(value)
        }
        self.describe = { value -> String? in describe?(value as? Value) }
        if let layerDefault {
            self.layerDefault = { channels -> any SettingValue in layerDefault(channels) }
        } else {
            self.layerDefault = nil
        }
    }

    /// The command-line option (`--groups`).
    public var option: String { "--" + key.replacingOccurrences(of: "_", with: "-") }

    /// Reads the value from `container`, if present, and checks it.
    /// - Throws: the container's `DecodingError`, or `NormalizerError.invalidSetting`.
    func decodeIfPresent(from container: KeyedDecodingContainer<AnyKey>, key: String) throws -> (any SettingValue)? {
        let codingKey = AnyKey(stringValue: key)
        guard container.contains(codingKey) else { return nil }
        let value = try decode(container, codingKey)
        try check(value)
        return value
    }

    /// Reads a command-line value and checks it.
    /// - Throws: `NormalizerError.invalidSetting` when it is not a value of this setting.
    public func parse(_ text: String) throws -> any SettingValue {
        guard let value = parseText(text) else {
            let expected = defaultValue is Int || layerDefault?(1) is Int ? "a whole number" : "a number"
            throw NormalizerError.invalidSetting(key: key, reason: "expected \(expected), got \"\(text)\"")
        }
        try check(value)
        return value
    }

    /// - Throws: `NormalizerError.invalidSetting` when the value cannot be used.
    func check(_ value: any SettingValue) throws {
        if let reason = problem(value) { throw NormalizerError.invalidSetting(key: key, reason: reason) }
    }

    /// The value as JSON (for `train --json`).
    public func jsonObject(_ value: any SettingValue) -> Any? {
        guard let data = try? JSONEncoder().encode(value) else { return nil }
        return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }
}

/// 3.0 → "3", 0.1 → "0.1", 1e-5 → "0.00001": a number as pages write it (six decimals at
/// most, trailing zeros dropped).
func formatSetting(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e9 { return String(Int(value)) }
    var text = String(format: "%.6f", value)
    while text.hasSuffix("0") { text.removeLast() }
    return text
}
