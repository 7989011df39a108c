/// A placement constraint in Marathon's form: a field (`hostname` or an agent attribute), an
/// operator and, for some operators, a value. JSON: `["hostname", "UNIQUE"]`,
/// `["rack", "LIKE", "r[12]"]`; on the command line `hostname:UNIQUE`, `rack:LIKE:r[12]`.
public struct Constraint: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Operator: String, Sendable, Hashable, Codable, CaseIterable {
        /// At most one task of the group per distinct value of the field.
        case unique = "UNIQUE"
        /// Every task of the group on agents whose field has the given value (or, without one,
        /// the value the group's first task got).
        case cluster = "CLUSTER"
        /// Only on agents whose field matches the regular expression (whole value).
        case like = "LIKE"
        /// Only on agents whose field does not match the regular expression.
        case unlike = "UNLIKE"
        /// Spread the group evenly over the field's values.
        case groupBy = "GROUP_BY"
        /// At most the given number of the group's tasks per value of the field.
        case maxPer = "MAX_PER"
    }

    public var field: String
    public var `operator`: Operator
    public var value: String?

    public init(field: String, operator: Operator, value: String? = nil) {
        self.field = field
        self.operator = `operator`
        self.value = value
    }

    /// Parses the command-line form `field:OPERATOR[:value]`.
    public init(parsing text: String) throws(ConstraintError) {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, !parts[0].isEmpty else {
            throw ConstraintError(message: "constraint '\(text)' is not field:OPERATOR[:value]")
        }
        try self.init(fields: parts)
    }

    /// Builds a constraint from Marathon's array form.
    public init(fields: [String]) throws(ConstraintError) {
        guard fields.count == 2 || fields.count == 3, !fields[0].isEmpty else {
            throw ConstraintError(message: "a constraint is [field, OPERATOR] or [field, OPERATOR, value], not \(fields)")
        }
        guard let op = Operator(rawValue: fields[1].uppercased()) else {
            let known = Operator.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConstraintError(message: "unknown constraint operator '\(fields[1])' (known: \(known))")
        }
        let value = fields.count == 3 ? fields[2] : nil
        switch op {
        case .like, .unlike, .maxPer:
            guard value != nil else { throw ConstraintError(message: "constraint \(op.rawValue) on \(fields[0]) needs a value") }
        case .unique:
            guard value == nil else { throw ConstraintError(message: "constraint UNIQUE on \(fields[0]) takes no value") }
        case .cluster, .groupBy:
            break
        }
        if op == .maxPer, Int(value!) == nil || Int(value!)! < 1 {
            throw ConstraintError(message: "constraint MAX_PER on \(fields[0]) needs a positive whole number, not '\(value!)'")
        }
        self.init(field: fields[0], operator: op, value: value)
    }

    public init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        var fields: [String] = []
        while !container.isAtEnd { fields.append(try container.decode(String.self)) }
        do {
            try self.init(fields: fields)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        try container.encode(field)
        try container.encode(self.operator.rawValue)
        if let value { try container.encode(value) }
    }

    public var description: String {
        value.map { "\(field):\(self.operator.rawValue):\($0)" } ?? "\(field):\(self.operator.rawValue)"
    }
}

public struct ConstraintError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
