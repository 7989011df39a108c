/// One member of a tar archive, its pax and GNU long-name records applied.
struct TarEntry: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case regular
        case hardLink
        case symbolicLink
        case characterDevice
        case blockDevice
        case directory
        case fifo
    }

    /// As written in the archive (a relative path, usually; `RootPath` makes it safe).
    var path: String
    var kind: Kind
    /// A hard link's target (another member's path) or a symbolic link's contents.
    var linkTarget: String = ""
    /// Bytes of contents that follow the header (regular files only; zero for the rest).
    var size: Int64 = 0
    /// Permission bits with set-user-id, set-group-id and sticky (`& 0o7777`).
    var mode: UInt32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    var modificationTime = TarTime(seconds: 0, nanoseconds: 0)
    var deviceMajor: UInt32 = 0
    var deviceMinor: UInt32 = 0
}

/// A modification time: seconds since the epoch and nanoseconds (pax headers carry fractions).
struct TarTime: Sendable, Equatable {
    var seconds: Int64
    var nanoseconds: Int32
}
