/// Why a `DFSStateStore` call failed: what went wrong, in which file and at which offset.
public struct DFSStateStoreError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// A log or snapshot does not check out (a checksum, magic, version, sequence or length
        /// mismatch) somewhere other than a log's torn end. Never skipped.
        case damaged
        /// A record over `DFSStateStoreFormat.maximumRecordBytes`; nothing was appended.
        case recordTooLarge
        /// A snapshot over `DFSStateStoreFormat.maximumSnapshotBytes`; nothing was written.
        case snapshotTooLarge
        /// The store is not open (never opened, or closed).
        case notOpen
        /// `open` on a store that is open.
        case alreadyOpen
        /// `writeSnapshot` while another is being written.
        case snapshotInProgress
        /// A log a crashed writer left open was not closed by lease recovery in time.
        case leaseRecoveryTimedOut
        /// Another process created the file this store meant to create: it is taking over the
        /// directory too.
        case takenOver
        /// Writing the log or a snapshot failed. Records whose `append` threw may or may not be
        /// in the log; the store refuses further calls until it is opened again, which replays
        /// what is there.
        case writeFailed
    }

    public var kind: Kind
    /// The file concerned, if any.
    public var path: String?
    /// The byte offset in `path` concerned, if any.
    public var offset: UInt64?
    public var message: String
    /// The file system's error behind this one, if any.
    public var underlying: (any Error)?

    public init(_ kind: Kind, path: String? = nil, offset: UInt64? = nil, _ message: String, underlying: (any Error)? = nil) {
        self.kind = kind
        self.path = path
        self.offset = offset
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        var text = message
        if let path {
            text = offset.map { "\(path) at offset \($0): " } ?? "\(path): "
            text += message
        }
        if let underlying { text += " (\(underlying))" }
        return text
    }

    static func damaged(path: String, offset: UInt64, _ message: String) -> DFSStateStoreError {
        DFSStateStoreError(.damaged, path: path, offset: offset, "damaged state: \(message)")
    }
}
