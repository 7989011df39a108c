import Crypto

/// One layer of an image, as its manifest names it: the digest of its (compressed) blob and
/// the media type that says how the tar inside is compressed.
public struct ImageLayer: Sendable, Hashable, Codable {
    /// `sha256:<64 lowercase hex digits>`, the digest of the blob's bytes as stored.
    public var digest: String
    public var mediaType: String

    public init(digest: String, mediaType: String) {
        self.digest = digest
        self.mediaType = mediaType
    }
}

/// How a layer's tar is compressed, from its media type.
public enum LayerCompression: Sendable, Hashable {
    case none
    case gzip
    case zstd

    /// The media types of the OCI image spec (distributable and nondistributable) and Docker's
    /// schema 2; nil for anything else (a foreign or unknown layer type is not guessed at).
    public init?(mediaType: String) {
        switch mediaType {
        case "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar":
            self = .none
        case "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
            self = .gzip
        case "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
            self = .zstd
        default:
            return nil
        }
    }
}

/// A `sha256:<hex>` digest, checked for form.
public struct SHA256Digest: Sendable, Hashable, CustomStringConvertible {
    /// 64 lowercase hex digits.
    public let hex: String

    /// Nil unless `text` is `sha256:` and 64 lowercase hex digits (the OCI spec's canonical form;
    /// other algorithms are not accepted).
    public init?(_ text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = text.dropFirst("sha256:".count)
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            return nil
        }
        self.hex = String(hex)
    }

    /// The digest of `bytes`.
    static func of(_ bytes: some Sequence<UInt8>) -> SHA256Digest {
        SHA256Digest(bytes: SHA256.hash(data: Array(bytes)))
    }

    init(bytes: some Sequence<UInt8>) {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        precondition(text.count == 64, "a SHA-256 digest is 32 bytes")
        self.hex = String(decoding: text, as: UTF8.self)
    }

    public var description: String { "sha256:\(hex)" }
}
