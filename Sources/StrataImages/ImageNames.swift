/// The names the distribution spec allows: repositories are path components of lowercase
/// letters and digits joined by `.`, `_`, `__` or runs of `-`
/// (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`), tags are
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
public enum ImageNames {
    /// The longest repository name (the reference registry's bound, with the host name part).
    public static let maximumRepositoryLength = 255
    public static let maximumTagLength = 128

    /// Throws `nameInvalid` unless `name` is a repository name.
    public static func validateRepository(_ name: String) throws(ImageStoreError) {
        guard !name.isEmpty, name.utf8.count <= maximumRepositoryLength else {
            throw .nameInvalid("a repository name has 1 to \(maximumRepositoryLength) characters: '\(name)'")
        }
        for component in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard isComponent(component.utf8) else {
                throw .nameInvalid(
                    "invalid repository name '\(name)': each /-separated part is lowercase letters and digits, "
                        + "joined by '.', '_', '__' or dashes")
            }
        }
    }

    /// Throws `tagInvalid` unless `tag` is a tag.
    public static func validateTag(_ tag: String) throws(ImageStoreError) {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= maximumTagLength,
            isAlphanumeric(first) || first == UInt8(ascii: "_"),
            bytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else {
            throw .tagInvalid("invalid tag '\(tag)': letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'")
        }
    }

    public static func isValidRepository(_ name: String) -> Bool { (try? validateRepository(name)) != nil }
    public static func isValidTag(_ tag: String) -> Bool { (try? validateTag(tag)) != nil }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isComponent(_ bytes: Substring.UTF8View) -> Bool {
        var previousWasSeparator = true  // nothing yet: a component starts with a letter or digit
        var separator: [UInt8] = []
        for byte in bytes {
            if isLowercaseAlphanumeric(byte) {
                if !separator.isEmpty {
                    guard isSeparator(separator) else { return false }
                    separator = []
                }
                previousWasSeparator = false
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") {
                if previousWasSeparator && separator.isEmpty { return false }
                separator.append(byte)
                previousWasSeparator = true
            } else {
                return false
            }
        }
        return !previousWasSeparator
    }

    static func isSeparator(_ bytes: [UInt8]) -> Bool {
        bytes == [UInt8(ascii: ".")] || bytes == [UInt8(ascii: "_")] || bytes == [UInt8(ascii: "_"), UInt8(ascii: "_")]
            || bytes.allSatisfy { $0 == UInt8(ascii: "-") }
    }

    static func isLowercaseAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowercaseAlphanumeric(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
}

/// A manifest reference within a repository: a tag or a digest.
public enum ManifestReference: Hashable, Sendable, CustomStringConvertible {
    case tag(String)
    case digest(Digest)

    /// A digest if it has a `:` (tags cannot), else a tag; validated either way.
    public init(parsing text: String) throws(ImageStoreError) {
        if text.contains(":") {
            self = .digest(try Digest(parsing: text))
        } else {
            try ImageNames.validateTag(text)
            self = .tag(text)
        }
    }

    public var description: String {
        switch self {
        case .tag(let tag): tag
        case .digest(let digest): digest.description
        }
    }
}

/// `REPO:TAG` or `REPO@sha256:...` as people write them; `REPO` alone means the tag `latest`.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    public var repository: String
    public var reference: ManifestReference

    public init(repository: String, reference: ManifestReference) {
        self.repository = repository
        self.reference = reference
    }

    public init(parsing text: String) throws(ImageStoreError) {
        if let at = text.firstIndex(of: "@") {
            repository = String(text[..<at])
            reference = .digest(try Digest(parsing: String(text[text.index(after: at)...])))
        } else if let colon = text.lastIndex(of: ":"), !text[colon...].contains("/") {
            repository = String(text[..<colon])
            let tag = String(text[text.index(after: colon)...])
            try ImageNames.validateTag(tag)
            reference = .tag(tag)
        } else {
            repository = text
            reference = .tag("latest")
        }
        try ImageNames.validateRepository(repository)
    }

    /// The tag, if the reference is one.
    public var tag: String? {
        if case .tag(let tag) = reference { return tag }
        return nil
    }

    public var description: String {
        switch reference {
        case .tag(let tag): "\(repository):\(tag)"
        case .digest(let digest): "\(repository)@\(digest)"
        }
    }
}
