import Foundation

/// A parsed JSON document, read field by field so that every wrong field is reported with its
/// path (Marathon reports them all at once, not only the first a decoder meets).
public enum JSONValue: Sendable, Hashable, Codable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case boolean(Bool)
    case null

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .boolean(flag)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let elements = try? container.decode([JSONValue].self) {
            self = .array(elements)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .object(let members): try container.encode(members)
        case .array(let elements): try container.encode(elements)
        case .string(let text): try container.encode(text)
        case .number(let number): try container.encode(number)
        case .boolean(let flag): try container.encode(flag)
        case .null: try container.encodeNil()
        }
    }

    /// Parses a request body. A body that is not JSON at all is Marathon's 400
    /// (`{"message":"Invalid JSON","details":"..."}`), not a validation failure.
    public static func parse(_ bytes: some Collection<UInt8>) throws(ValidationFailure) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw ValidationFailure.unparsable(String(describing: error))
        }
    }

    /// Play JSON's name for this kind of value, as its `error.expected.*` messages use.
    var kindName: String {
        switch self {
        case .object: "jsobject"
        case .array: "jsarray"
        case .string: "jsstring"
        case .number: "jsnumber"
        case .boolean: "jsboolean"
        case .null: "jsnull"
        }
    }
}
