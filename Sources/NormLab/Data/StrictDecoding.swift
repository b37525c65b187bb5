import Foundation

/// Any key, for listing what an object really holds.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Rejects keys outside `allowed`, naming the key and where it is, so that a typo in an
    /// experiment file is an error rather than a silently ignored setting.
    func rejectUnknownKeys(_ allowed: Set<String>, context: String) throws {
        let container = try container(keyedBy: AnyKey.self)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            let place = codingPath.isEmpty ? "" : " in \(pathDescription(codingPath))"
            throw UnknownKeyError(
                message: "unknown key \"\(key.stringValue)\"\(place); \(context) takes \(allowed.sorted().joined(separator: ", "))")
        }
    }
}

/// A key that the object it stands in does not take.
struct UnknownKeyError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// `normalizers[2].groups`, from a coding path.
func pathDescription(_ codingPath: [any CodingKey]) -> String {
    var text = ""
    for key in codingPath {
        if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
    }
    return text.isEmpty ? "the top level" : text
}

/// A value that may be written as one item or a list of them: `"placement": "before"` or
/// `"placement": ["before", "after"]`.
struct OneOrMany<Element: Decodable & Equatable>: Decodable, Equatable {
    var values: [Element]

    init(_ values: [Element]) { self.values = values }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(Element.self) {
            values = [one]
        } else {
            values = try container.decode([Element].self)
        }
    }
}

/// A readable account of a JSON decoding failure: which key, and what was wrong with it.
func describe(_ error: DecodingError) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "missing key \"\(key.stringValue)\" in \(path(context.codingPath))"
    case .typeMismatch(let type, let context):
        return "\(path(context.codingPath)) should be \(type): \(context.debugDescription)"
    case .valueNotFound(let type, let context):
        return "\(path(context.codingPath)) is null, expected \(type)"
    case .dataCorrupted(let context):
        let underlying = (context.underlyingError as NSError?)?.localizedDescription ?? ""
        return "\(context.debugDescription) at \(path(context.codingPath)) \(underlying)"
    @unknown default:
        return "\(error)"
    }
}
