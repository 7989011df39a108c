/// One member of a tar archive, its pax and GNU long-name records applied.
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case regular
        case hardLink
        case symbolicLink
        case characterDevice
        case blockDevice
        case directory
        case fifo
        /// A type flag this reader does not interpret (GNU's `S`, `D`, `V`, a vendor's letter):
        /// its contents follow as a regular file's do, for the caller to skip or refuse.
        case other(UInt8)
    }

    /// As written in the archive: a relative path, usually, but nothing is checked (the agent's
    /// `RootDirectory` makes paths safe before it writes).
    public var path: String
    public var kind: Kind
    /// A hard link's target (another member's path) or a symbolic link's contents.
    public var linkTarget: String = ""
    /// Bytes of contents that follow the header (regular files and `other` only; zero for the rest).
    public var size: Int64 = 0
    /// Permission bits with set-user-id, set-group-id and sticky (`& 0o7777`).
    public var mode: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var modificationTime = TarTime(seconds: 0, nanoseconds: 0)
    public var deviceMajor: UInt32 = 0
    public var deviceMinor: UInt32 = 0
    /// Where the contents start, counted in bytes from the start of the archive: with `size`,
    /// the member's byte range in an archive file.
    public var dataOffset: UInt64 = 0

    public init(
        path: String, kind: Kind, linkTarget: String = "", size: Int64 = 0, mode: UInt32 = 0, uid: UInt32 = 0, gid: UInt32 = 0,
        modificationTime: TarTime = TarTime(seconds: 0, nanoseconds: 0), deviceMajor: UInt32 = 0, deviceMinor: UInt32 = 0,
        dataOffset: UInt64 = 0
    ) {
        self.path = path
        self.kind = kind
        self.linkTarget = linkTarget
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.modificationTime = modificationTime
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.dataOffset = dataOffset
    }

    /// The path without a leading `./` or `/` and trailing `/`, as members of an image archive
    /// are looked up by.
    public var normalizedPath: String { TarEntry.normalize(path) }

    /// `path` without a leading `./` or `/` and trailing `/`.
    public static func normalize(_ path: String) -> String {
        var path = Substring(path)
        while path.hasPrefix("./") { path = path.dropFirst(2) }
        while path.hasPrefix("/") { path = path.dropFirst() }
        while path.hasSuffix("/") { path = path.dropLast() }
        return String(path)
    }
}

/// A modification time: seconds since the epoch and nanoseconds (pax headers carry fractions).
public struct TarTime: Sendable, Equatable {
    public var seconds: Int64
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
}
