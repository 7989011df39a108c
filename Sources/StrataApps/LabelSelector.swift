/// One selector of Marathon's label query (`GET /v2/apps?label=`, `LabelSelectorParsers`):
/// `key` (the label exists), `key==value`, `key!=value`, `key in (a, b)`, `key notin (a, b)`.
/// Every kind needs the label to exist: `tier!=frontend` does not match an app without `tier`.
public struct LabelSelector: Sendable, Hashable {
    public enum Operator: Sendable, Hashable {
        case exists, equals, notEquals, isIn, notIn
    }

    public var key: String
    public var `operator`: Operator
    public var values: [String]

    public init(key: String, operator: Operator, values: [String] = []) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    public func matches(_ labels: [String: String]) -> Bool {
        guard let value = labels[key] else { return false }
        switch self.operator {
        case .exists: return true
        case .equals: return values.first == value
        case .notEquals: return values.first != value
        case .isIn: return values.contains(value)
        case .notIn: return !values.contains(value)
        }
    }

    /// Parses a query of comma-separated selectors, all of which must match. Terms are letters,
    /// digits and `-_.`; any other character is taken literally after a backslash (`\ `, `\,`).
    /// Spaces between tokens are skipped. An empty query selects every app, as in Marathon.
    public static func parse(_ query: String) -> Result<[LabelSelector], LabelSelectorError> {
        var parser = Parser(characters: Array(query))
        do {
            return .success(try parser.selectors())
        } catch {
            return .failure(LabelSelectorError(query: query, reason: error.reason))
        }
    }

    struct Failure: Error { var reason: String }

    /// A recursive-descent reading of Marathon's grammar:
    /// `query: selector {, selector}`, `selector: set | equality | existence`.
    struct Parser {
        let characters: [Character]
        var position = 0

        mutating func selectors() throws(Failure) -> [LabelSelector] {
            skipSpaces()
            if position == characters.count { return [] }
            var result: [LabelSelector] = []
            while true {
                result.append(try selector())
                skipSpaces()
                if position == characters.count { return result }
                guard characters[position] == "," else { throw expected("','") }
                position += 1
            }
        }

        mutating func selector() throws(Failure) -> LabelSelector {
            guard let key = term() else { throw expected("a label") }
            let afterKey = position
            // Set: `key in (..)` / `key notin (..)`.
            skipSpaces()
            for (word, kind) in [("notin", Operator.notIn), ("in", Operator.isIn)] where consume(word) {
                skipSpaces()
                if position < characters.count, characters[position] == "(" {
                    position += 1
                    return LabelSelector(key: key, operator: kind, values: try set())
                }
                break
            }
            position = afterKey
            // Equality: `key==value` / `key!=value`.
            skipSpaces()
            for (word, kind) in [("==", Operator.equals), ("!=", Operator.notEquals)] where consume(word) {
                guard let value = term() else { throw expected("a value") }
                return LabelSelector(key: key, operator: kind, values: [value])
            }
            position = afterKey
            return LabelSelector(key: key, operator: .exists)
        }

        /// The terms of a set after its `(`, up to and including `)`.
        mutating func set() throws(Failure) -> [String] {
            var values: [String] = []
            skipSpaces()
            if consume(")") { return values }
            while true {
                guard let value = term() else { throw expected("a value") }
                values.append(value)
                skipSpaces()
                if consume(")") { return values }
                guard consume(",") else { throw expected("',' or ')'") }
            }
        }

        /// A term, escapes resolved; nil (nothing consumed but spaces) when none starts here.
        mutating func term() -> String? {
            skipSpaces()
            var text = ""
            while position < characters.count {
                let character = characters[position]
                if character == "\\", position + 1 < characters.count {
                    text.append(characters[position + 1])
                    position += 2
                } else if character.isASCII && (character.isLetter || character.isNumber) || "-_.".contains(character) {
                    text.append(character)
                    position += 1
                } else {
                    break
                }
            }
            return text.isEmpty ? nil : text
        }

        mutating func consume(_ word: String) -> Bool {
            let letters = Array(word)
            guard position + letters.count <= characters.count, Array(characters[position..<position + letters.count]) == letters else {
                return false
            }
            position += letters.count
            return true
        }

        mutating func skipSpaces() {
            while position < characters.count, characters[position].isWhitespace { position += 1 }
        }

        func expected(_ what: String) -> Failure {
            let found = position < characters.count ? "'\(characters[position])'" : "end of input"
            return Failure(reason: "\(what) expected but \(found) found at position \(position + 1)")
        }
    }
}

/// A label query that does not parse. Marathon throws an `IllegalArgumentException` with this
/// message, which its exception mapper answers with 422.
public struct LabelSelectorError: Error, Sendable, Hashable, CustomStringConvertible {
    public var query: String
    public var reason: String

    public var message: String { "Can not parse label selector \(query). Reason: \(reason)" }
    public var description: String { message }
}

/// `GET /v2/apps`' filters (Marathon's `AppsResource.search`): `cmd` and `id` match apps whose
/// command or id contains the text, ignoring case; `label` is a label query. All given must match.
public struct AppQuery: Sendable, Hashable {
    public var cmd: String?
    public var id: String?
    public var labels: [LabelSelector]?

    public init(cmd: String? = nil, id: String? = nil, labels: [LabelSelector]? = nil) {
        self.cmd = cmd
        self.id = id
        self.labels = labels
    }

    /// The query of the request's parameters; a label query that does not parse is an error.
    public static func parse(cmd: String?, id: String?, label: String?) -> Result<AppQuery, LabelSelectorError> {
        guard let label else { return .success(AppQuery(cmd: cmd, id: id)) }
        return LabelSelector.parse(label).map { AppQuery(cmd: cmd, id: id, labels: $0) }
    }

    public func matches(_ app: AppDefinition) -> Bool {
        if let cmd, !(app.cmd.map { $0.lowercased().contains(cmd.lowercased()) } ?? false) { return false }
        if let id, !app.id.description.lowercased().contains(id.lowercased()) { return false }
        if let labels, !labels.allSatisfy({ $0.matches(app.labels) }) { return false }
        return true
    }
}
