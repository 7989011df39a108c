import Foundation

/// A JSON value as cron reads and writes it: objects keep their members in order, so what the
/// service answers reads like Chronos' output (name, command, shell, ... as its serializer
/// writes them) and the same job always renders to the same bytes.
public indirect enum CronJSON: Sendable, Hashable {
    case object([Member])
    case array([CronJSON])
    case string(String)
    case integer(Int64)
    case number(Double)
    case boolean(Bool)
    case null

    public struct Member: Sendable, Hashable {
        public var key: String
        public var value: CronJSON

        public init(_ key: String, _ value: CronJSON) {
            self.key = key
            self.value = value
        }
    }

    /// An object from key-value pairs, in the order given.
    public static func object(_ pairs: KeyValuePairs<String, CronJSON>) -> CronJSON {
        .object(pairs.map { Member($0.key, $0.value) })
    }

    /// The member named `key` of an object (the last one, if a document repeats it), or nil.
    public subscript(key: String) -> CronJSON? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.key == key }?.value
    }

    /// Parses a request body. Anything but one well-formed JSON document is refused, with the
    /// parser's reason.
    public static func parse(_ bytes: some Collection<UInt8>) throws(CronError) -> CronJSON {
        do {
            return try JSONDecoder().decode(Decoded.self, from: Data(bytes)).value
        } catch {
            throw CronError(.invalidJSON, "the request body is not valid JSON: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return underlying ?? context.debugDescription
        }
        return String(describing: error)
    }

    /// Reads any JSON value through `JSONDecoder`, trying the narrowest type first: a boolean is
    /// never read as a number, and a whole number stays an integer.
    private struct Decoded: Decodable {
        var value: CronJSON

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            if let object = try? decoder.container(keyedBy: Key.self) {
                value = .object(try object.allKeys.sorted { $0.stringValue < $1.stringValue }.map { key in
                    Member(key.stringValue, try object.decode(Decoded.self, forKey: key).value)
                })
                return
            }
            if var array = try? decoder.unkeyedContainer() {
                var elements: [CronJSON] = []
                while !array.isAtEnd { elements.append(try array.decode(Decoded.self).value) }
                value = .array(elements)
                return
            }
            let single = try decoder.singleValueContainer()
            if single.decodeNil() {
                value = .null
            } else if let flag = try? single.decode(Bool.self) {
                value = .boolean(flag)
            } else if let whole = try? single.decode(Int64.self) {
                value = .integer(whole)
            } else if let number = try? single.decode(Double.self) {
                value = .number(number)
            } else {
                value = .string(try single.decode(String.self))
            }
        }
    }

    /// The value as compact JSON text.
    public var serialized: String {
        var text = ""
        write(into: &text)
        return text
    }

    private func write(into text: inout String) {
        switch self {
        case .object(let members):
            text += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { text += "," }
                Self.writeString(member.key, into: &text)
                text += ":"
                member.value.write(into: &text)
            }
            text += "}"
        case .array(let elements):
            text += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { text += "," }
                element.write(into: &text)
            }
            text += "]"
        case .string(let value):
            Self.writeString(value, into: &text)
        case .integer(let value):
            text += String(value)
        case .number(let value):
            // Jackson writes doubles with a fraction (`128.0`), as Swift's description does.
            text += value.isFinite ? String(describing: value) : "null"
        case .boolean(let value):
            text += value ? "true" : "false"
        case .null:
            text += "null"
        }
    }

    private static func writeString(_ value: String, into text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
