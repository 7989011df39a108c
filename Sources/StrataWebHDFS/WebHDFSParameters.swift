import Foundation
import StrataWire

/// The query parameters of a WebHDFS request. Names are matched without regard to case, as
/// HDFS's `ParamFilter` does (`startAfter` and `startafter` are one parameter); values are
/// URL-decoded, `+` as a space. The first occurrence of a name wins.
struct WebHDFSParameters: Sendable {
    private var values: [String: String] = [:]
    /// The query as it came, to carry over into redirects.
    let rawQuery: String

    init(query: String?) {
        rawQuery = query ?? ""
        for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0]).lowercased()
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            if values[name] == nil { values[name] = value }
        }
    }

    static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    subscript(_ name: String) -> String? { values[name.lowercased()] }

    static func invalid(_ name: String, _ reason: String) -> RemoteException {
        RemoteException.illegalArgument("Invalid value for webhdfs parameter \"\(name)\": \(reason)")
    }

    /// `true` or `false` (any case); an empty or absent value gives `defaultValue`.
    func boolean(_ name: String, default defaultValue: Bool) throws(RemoteException) -> Bool {
        guard let text = self[name], !text.isEmpty else { return defaultValue }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw Self.invalid(name, "Failed to parse \"\(text)\" to Boolean.")
        }
    }

    /// A decimal integer no less than `minimum`; absent or empty gives nil.
    func integer(_ name: String, minimum: Int64? = nil, maximum: Int64 = .max) throws(RemoteException) -> Int64? {
        guard let text = self[name], !text.isEmpty else { return nil }
        guard let value = Int64(text) else { throw Self.invalid(name, "Failed to parse \"\(text)\" as a radix-10 long integer.") }
        if let minimum, value < minimum {
            throw Self.invalid(name, "Invalid value: \"\(name)\" = \(value) < \(minimum)")
        }
        if value > maximum {
            throw Self.invalid(name, "Invalid value: \"\(name)\" = \(value) > \(maximum)")
        }
        return value
    }

    /// An octal mode from 0 to 1777 (HDFS `PermissionParam`).
    func permission(_ name: String = "permission") throws(RemoteException) -> UInt16? {
        guard let text = self[name], !text.isEmpty else { return nil }
        guard let value = UInt16(text, radix: 8), value <= 0o1777 else {
            throw Self.invalid(name, "Failed to parse \"\(text)\" as a radix-8 short integer in the range 0 to 1777.")
        }
        return value
    }

    /// An absolute path parameter (`destination`); absent gives nil.
    func absolutePath(_ name: String) throws(RemoteException) -> String? {
        guard let text = self[name], !text.isEmpty else { return nil }
        guard text.hasPrefix("/") else { throw Self.invalid(name, "Invalid path \"\(text)\": the path must be absolute") }
        return text
    }
}
