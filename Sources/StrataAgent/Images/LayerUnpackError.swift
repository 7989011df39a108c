import StrataImages

/// Why a layer could not be applied or a root filesystem could not be made. The directory the
/// layer was being applied to is no longer usable (the cache removes it).
public struct LayerUnpackError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The layer's media type is not one Strata unpacks, or its digest is not `sha256:<hex>`.
        case unsupported
        /// The blob's bytes do not hash to the digest the manifest names.
        case digestMismatch
        /// The compressed stream or the tar in it is damaged or cut short.
        case corrupt
        /// An entry would write outside the root filesystem.
        case unsafePath
        /// The layer or the whole root filesystem exceeds a limit (`ImageLimits`).
        case tooLarge
        /// The file system refused (errno), or the layer source failed.
        case io
    }

    public var kind: Kind
    /// For people: what was wrong, naming the layer and the entry.
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

extension LayerUnpackError {
    /// A layer's tar could not be read: the same kind of failure, and the reader's message.
    init(_ error: TarError) {
        switch error.kind {
        case .corrupt: self.init(.corrupt, error.message)
        case .unsupported: self.init(.unsupported, error.message)
        case .tooLarge: self.init(.tooLarge, error.message)
        }
    }
}
