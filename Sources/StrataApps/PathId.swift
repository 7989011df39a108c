/// An app's or group's id: a path of labels (`/shop/web`). Marathon's rules: a relative id is
/// resolved against its group (the root for a top-level app); `.` and `..` segments are resolved
/// when made absolute; every label is lowercase letters, digits, hyphens and dots, beginning and
/// ending with a letter or digit.
public struct PathId: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var segments: [String]
    public var isAbsolute: Bool

    public init(segments: [String], isAbsolute: Bool = true) {
        self.segments = segments
        self.isAbsolute = isAbsolute
    }

    /// Parses `/a/b` or `a/b` as Marathon does: leading and trailing slashes are dropped, empty
    /// segments are left out, and a leading slash makes the path absolute.
    public init(_ text: String) {
        self.init(segments: text.split(separator: "/").map(String.init), isAbsolute: text.hasPrefix("/"))
    }

    public static let root = PathId(segments: [])

    public var isRoot: Bool { segments.isEmpty && isAbsolute }

    public var parent: PathId {
        segments.isEmpty ? .root : PathId(segments: Array(segments.dropLast()), isAbsolute: isAbsolute)
    }

    /// The absolute path, relative ones taken from `base`; `.` is dropped and `..` goes up one
    /// level (never above the root).
    public func canonical(base: PathId = .root) -> PathId {
        var result: [String] = []
        for segment in (isAbsolute ? segments : base.segments + segments) {
            switch segment {
            case ".": continue
            case "..": if !result.isEmpty { result.removeLast() }
            default: result.append(segment)
            }
        }
        return PathId(segments: result, isAbsolute: true)
    }

    public func appending(_ segment: String) -> PathId { PathId(segments: segments + [segment], isAbsolute: isAbsolute) }

    /// Whether this path is `ancestor` or lies below it.
    public func isWithin(_ ancestor: PathId) -> Bool {
        segments.count >= ancestor.segments.count && Array(segments.prefix(ancestor.segments.count)) == ancestor.segments
    }

    /// The id as one label list joined by `_` (Marathon's `safePath`), for task ids.
    public var safePath: String { segments.joined(separator: "_") }

    public var description: String { (isAbsolute ? "/" : "") + segments.joined(separator: "/") }

    public static func < (left: PathId, right: PathId) -> Bool {
        left.canonical().segments.lexicographicallyPrecedes(right.canonical().segments)
    }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    // MARK: - Marathon's id rules

    /// The label rule, as Marathon's `PathId.ID_PATH_SEGMENT_PATTERN` writes it (its messages
    /// quote the expression).
    public static let segmentPattern = #"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$"#

    /// Last labels an app may not end with: they are the API's own sub-resources.
    public static let reservedKeywords = ["restart", "tasks", "versions", ".", ".."]

    /// Whether `label` is dot-separated parts of letters, digits and inner hyphens, or `.`/`..`.
    public static func isValidSegment(_ label: String) -> Bool {
        if label == "." || label == ".." { return true }
        let parts = label.split(separator: ".", omittingEmptySubsequences: false)
        return parts.allSatisfy { part in
            guard let first = part.first, let last = part.last else { return false }
            return isLowerAlphanumeric(first) && isLowerAlphanumeric(last)
                && part.allSatisfy { isLowerAlphanumeric($0) || $0 == "-" }
        }
    }

    /// Whether `text` is a path Marathon's JSON schema accepts (its `strings.PathId` pattern):
    /// valid labels or `..` separated by slashes (empty labels are dropped when parsed).
    public static func isWellFormed(_ text: String) -> Bool {
        guard !text.isEmpty else { return false }
        var body = Substring(text)
        if body.first == "/" { body = body.dropFirst() }
        if body.last == "/" { body = body.dropLast() }
        if body.isEmpty { return true }
        return body.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { label in
            label.isEmpty || label == ".." || (label != "." && isValidSegment(String(label)))
        }
    }

    /// Marathon's `pathIdValidator` messages for this (canonical) id.
    func violations() -> [String] {
        var errors: [String] = []
        if !segments.allSatisfy(Self.isValidSegment) {
            errors.append("must fully match regular expression '\(Self.segmentPattern)'")
        }
        if let last = segments.last, Self.reservedKeywords.contains(last) {
            errors.append("must not end with any of the following reserved keywords: \(Self.reservedKeywords.joined(separator: ", "))")
        }
        if !isAbsolute { errors.append("Path needs to be absolute") }
        if segments.isEmpty { errors.append("Path must contain at least one path element") }
        return errors
    }

    private static func isLowerAlphanumeric(_ character: Character) -> Bool {
        ("a"..."z").contains(character) || ("0"..."9").contains(character)
    }
}
