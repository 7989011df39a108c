import Crypto
import NIOCore

/// A content address, `sha256:<64 lowercase hex digits>`: the only algorithm the image store
/// writes blobs under. Anything else (another algorithm, upper-case or short hex) is refused
/// when parsed, so a digest that reaches a path is always 64 hex digits.
public struct Digest: Hashable, Comparable, Sendable, CustomStringConvertible, Codable, CodingKeyRepresentable {
    /// The 64 lowercase hex digits.
    public let hex: String

    public static let algorithm = "sha256"
    static let hexLength = 64

    /// Parses `sha256:<64 lowercase hex>`; throws `ImageStoreError.digestInvalid` otherwise.
    public init(parsing text: String) throws(ImageStoreError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw .digestInvalid("'\(text)' is not a digest: expected sha256:<64 hex digits>")
        }
        let algorithm = text[..<colon]
        let encoded = text[text.index(after: colon)...]
        guard algorithm == Self.algorithm else {
            throw .digestInvalid("digest algorithm '\(algorithm)' is not supported: only sha256")
        }
        guard encoded.utf8.count == Self.hexLength, encoded.utf8.allSatisfy(Self.isLowercaseHex) else {
            throw .digestInvalid("'\(text)' is not a digest: a sha256 digest has 64 lowercase hex digits")
        }
        hex = String(encoded)
    }

    /// Nil for text that is not a sha256 digest.
    public init?(_ text: String) {
        guard let digest = try? Digest(parsing: text) else { return nil }
        self = digest
    }

    init(bytes: some Sequence<UInt8>) {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(Self.hexLength)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xf)])
        }
        hex = String(decoding: text, as: UTF8.self)
    }

    /// The digest of `bytes`.
    public static func of(_ bytes: some Sequence<UInt8>) -> Digest {
        var hasher = SHA256Hasher()
        hasher.update(Array(bytes))
        return hasher.finalize()
    }

    static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    public var description: String { Self.algorithm + ":" + hex }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.hex < rhs.hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            self = try Digest(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var codingKey: any CodingKey { AnyCodingKey(description) }

    public init?<T: CodingKey>(codingKey: T) {
        self.init(codingKey.stringValue)
    }
}

struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

/// SHA-256 over bytes that arrive in pieces (a blob streamed through an upload or a read). A
/// value: copying it copies the state, which is how an upload keeps its hash between chunks.
public struct SHA256Hasher: Sendable {
    private var function = SHA256()
    /// Bytes hashed so far.
    public private(set) var count: UInt64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        function.update(bufferPointer: bytes)
        count += UInt64(bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update($0) }
    }

    /// The digest of everything hashed; the hasher itself is unchanged.
    public func finalize() -> Digest {
        Digest(bytes: function.finalize())
    }
}
