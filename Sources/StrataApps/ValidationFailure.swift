/// One path of a rejected definition and what is wrong there, as Marathon's error bodies list
/// them: `{"path":"/cpus","errors":["error.min"]}`.
public struct ValidationDetail: Sendable, Hashable, Codable {
    public var path: String
    public var errors: [String]

    public init(path: String, errors: [String]) {
        self.path = path
        self.errors = errors
    }

    /// Groups violations by path, paths in the order they were first met, each error once.
    static func grouped(_ violations: [(path: String, error: String)]) -> [ValidationDetail] {
        var details: [ValidationDetail] = []
        var position: [String: Int] = [:]
        for (path, error) in violations {
            if let index = position[path] {
                if !details[index].errors.contains(error) { details[index].errors.append(error) }
            } else {
                position[path] = details.count
                details.append(ValidationDetail(path: path, errors: [error]))
            }
        }
        return details
    }
}

/// Why a definition was refused, with the HTTP status and body Marathon answers with:
///
/// - a body that is not JSON: 400 `{"message":"Invalid JSON","details":"<parser's message>"}`;
/// - JSON whose fields have the wrong type or break the schema's bounds (Marathon's RAML
///   readers): 422 `{"message":"Invalid JSON","details":[{"path":..,"errors":["error.min"]}]}`;
/// - a definition that reads but breaks a rule (Marathon's validators): 422
///   `{"message":"Object is not valid","details":[...]}`.
public struct ValidationFailure: Error, Sendable, Hashable, Encodable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case unparsable(String)
        case invalidJSON
        case notValid
    }

    public var kind: Kind
    public var details: [ValidationDetail]

    public init(kind: Kind, details: [ValidationDetail]) {
        self.kind = kind
        self.details = details
    }

    public static func unparsable(_ parserMessage: String) -> ValidationFailure {
        ValidationFailure(kind: .unparsable(parserMessage), details: [])
    }

    public var status: Int {
        if case .unparsable = kind { 400 } else { 422 }
    }

    public var message: String {
        kind == .notValid ? "Object is not valid" : "Invalid JSON"
    }

    enum CodingKeys: String, CodingKey { case message, details }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message, forKey: .message)
        if case .unparsable(let parserMessage) = kind {
            try container.encode(parserMessage, forKey: .details)
        } else {
            try container.encode(details, forKey: .details)
        }
    }

    public var description: String {
        if case .unparsable(let parserMessage) = kind { return "\(message): \(parserMessage)" }
        let listed = details.map { "\($0.path): \($0.errors.joined(separator: "; "))" }.joined(separator: ", ")
        return "\(message): \(listed)"
    }
}
