/// Why the image store refused a request. Each case is one of the OCI distribution spec's error
/// codes (`code`), so the registry answers with the spec's status and JSON body; errors of the
/// file system underneath are not wrapped and pass through as they are.
public enum ImageStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No blob with this digest is in the store.
    case blobUnknown(Digest)
    /// An upload was used wrongly: a chunk while another is being written, or after a failure.
    case blobUploadInvalid(String)
    /// No upload with this id (never started, finished, cancelled, or its file is gone).
    case blobUploadUnknown(String)
    /// A digest is malformed, of another algorithm, or not the digest of the bytes received.
    case digestInvalid(String)
    /// A manifest names a blob or child manifest the store does not have.
    case manifestBlobUnknown(Digest)
    /// A manifest is not valid JSON, not a manifest of a known media type, or inconsistent.
    case manifestInvalid(String)
    /// No manifest by this tag or digest in the repository.
    case manifestUnknown(String)
    /// A repository name that the distribution spec's grammar does not allow.
    case nameInvalid(String)
    /// No such repository.
    case nameUnknown(String)
    /// A size is wrong: the bytes received are not the size declared, or over a bound.
    case sizeInvalid(String)
    /// A tag that the distribution spec's grammar does not allow.
    case tagInvalid(String)
    /// The store does not do this (another digest algorithm, a schema 1 manifest, deleting a
    /// manifest an index still names).
    case unsupported(String)
    /// A byte range outside the blob, or a chunk that does not start where the upload ends
    /// (HTTP 416; the reference registry's RANGE_INVALID).
    case rangeInvalid(String)

    /// The distribution spec's error code.
    public var code: String {
        switch self {
        case .blobUnknown: "BLOB_UNKNOWN"
        case .blobUploadInvalid: "BLOB_UPLOAD_INVALID"
        case .blobUploadUnknown: "BLOB_UPLOAD_UNKNOWN"
        case .digestInvalid: "DIGEST_INVALID"
        case .manifestBlobUnknown: "MANIFEST_BLOB_UNKNOWN"
        case .manifestInvalid: "MANIFEST_INVALID"
        case .manifestUnknown: "MANIFEST_UNKNOWN"
        case .nameInvalid: "NAME_INVALID"
        case .nameUnknown: "NAME_UNKNOWN"
        case .sizeInvalid: "SIZE_INVALID"
        case .tagInvalid: "TAG_INVALID"
        case .unsupported: "UNSUPPORTED"
        case .rangeInvalid: "RANGE_INVALID"
        }
    }

    /// What went wrong, for people.
    public var message: String {
        switch self {
        case .blobUnknown(let digest): "blob unknown to the store: \(digest)"
        case .manifestBlobUnknown(let digest): "the manifest names a blob the store does not have: \(digest)"
        case .blobUploadInvalid(let text), .blobUploadUnknown(let text), .digestInvalid(let text), .manifestInvalid(let text),
            .manifestUnknown(let text), .nameInvalid(let text), .nameUnknown(let text), .sizeInvalid(let text), .tagInvalid(let text),
            .unsupported(let text), .rangeInvalid(let text):
            text
        }
    }

    public var description: String { "\(code): \(message)" }
}
