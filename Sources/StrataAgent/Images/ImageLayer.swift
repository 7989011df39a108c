/// One layer of an image, as its manifest names it: the digest of its (compressed) blob and
/// the media type that says how the tar inside is compressed (`OCIMediaType.layerCompression`).
/// Both are kept as text, checked when the layer is unpacked or its cache key made.
public struct ImageLayer: Sendable, Hashable, Codable {
    /// `sha256:<64 lowercase hex digits>`, the digest of the blob's bytes as stored.
    public var digest: String
    public var mediaType: String

    public init(digest: String, mediaType: String) {
        self.digest = digest
        self.mediaType = mediaType
    }
}
