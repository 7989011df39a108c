/// A JSON value with object keys kept in the order given: WebHDFS bodies are written exactly as
/// the spec shows them, with no dependence on a dictionary's order.
enum JSONValue: Sendable, Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int64)
    case boolean(Bool)
    case null

    static func == (left: JSONValue, right: JSONValue) -> Bool { left.encoded() == right.encoded() }

    static func unsigned(_ value: UInt64) -> JSONValue { .integer(Int64(clamping: value)) }

    func encoded() -> String {
        var text = ""
        write(into: &text)
        return text
    }

    func write(into text: inout String) {
        switch self {
        case .object(let members):
            text.append("{")
            for (position, (key, value)) in members.enumerated() {
                if position > 0 { text.append(",") }
                Self.writeString(key, into: &text)
                text.append(":")
                value.write(into: &text)
            }
            text.append("}")
        case .array(let elements):
            text.append("[")
            for (position, element) in elements.enumerated() {
                if position > 0 { text.append(",") }
                element.write(into: &text)
            }
            text.append("]")
        case .string(let string): Self.writeString(string, into: &text)
        case .integer(let number): text.append(String(number))
        case .boolean(let flag): text.append(flag ? "true" : "false")
        case .null: text.append("null")
        }
    }

    static func writeString(_ string: String, into text: inout String) {
        text.append("\"")
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text.append("\\\"")
            case "\\": text.append("\\\\")
            case "\n": text.append("\\n")
            case "\r": text.append("\\r")
            case "\t": text.append("\\t")
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    text.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        text.append("\"")
    }
}
