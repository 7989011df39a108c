import CZlib
import Glibc

/// What a finished root filesystem holds, recorded once it is made, so that a damaged cache
/// entry is found before a task runs from it.
///
/// Every file, directory and link is listed with its type, mode, owner, size, modification
/// time, status-change time (ctime) and, for files and links, a CRC-32 of its contents (zlib's,
/// a few GB/s). Checking an entry before each use (`verify(deep: false)`) reads no contents:
/// one `lstat` per listed path, compared with the record. Nothing can write, truncate,
/// chmod, chown, add or remove anything without changing a ctime (the kernel sets it on every
/// change of an inode, a directory's on every change of its names, and no call sets it back),
/// so a truncated or overwritten file, or a file added or removed, shows up there. Only where a
/// time differs and the rest agrees (a copied or restored cache) are contents read: the file's
/// CRC, the directory's names or the link's target decide. What ctime cannot see, a change of
/// the disk's bytes under the file system, `verify(deep: true)` finds by reading every file.
struct RootfsManifest: Sendable, Equatable {
    static let formatVersion = 1

    struct Entry: Sendable, Equatable {
        enum Kind: String, Sendable {
            case file = "f"
            case directory = "d"
            case link = "l"
            case other = "o"
        }

        /// From the root filesystem's top, `/`-separated; "" is the top itself.
        var path: String
        var kind: Kind
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        /// Bytes (files and links; 0 for the rest, whose sizes the file system decides).
        var size: Int64
        var modified: Time
        var changed: Time
        /// CRC-32 of a file's contents or a link's target; 0 for the rest.
        var checksum: UInt32
    }

    struct Time: Sendable, Equatable {
        var seconds: Int
        var nanoseconds: Int
    }

    var key: String
    var layers: [ImageLayer]
    /// Disk space the root filesystem takes (allocated blocks, each inode once).
    var allocatedBytes: Int64
    /// Parents before their children.
    var entries: [Entry]

    // MARK: Recording

    /// Walks `rootFilesystem` (never following links) and reads every file once.
    static func record(rootFilesystem: String, key: String, layers: [ImageLayer]) throws(LayerUnpackError) -> RootfsManifest {
        let root = open(rootFilesystem, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw RootDirectory.failure("cannot open \(rootFilesystem)", errno) }
        defer { close(root) }
        var manifest = RootfsManifest(key: key, layers: layers, allocatedBytes: 0, entries: [])
        var seenInodes: Set<UInt64> = []
        guard let top = RootDirectory.status(root, ".") else { throw RootDirectory.failure("cannot read \(rootFilesystem)", errno) }
        manifest.entries.append(try entry(path: "", top, in: root, name: "."))
        manifest.allocatedBytes += Int64(top.st_blocks) * 512
        try walk(root, prefix: "", into: &manifest, seenInodes: &seenInodes)
        return manifest
    }

    private static func walk(
        _ directory: Int32, prefix: String, into manifest: inout RootfsManifest, seenInodes: inout Set<UInt64>
    ) throws(LayerUnpackError) {
        for name in try RootDirectory.names(in: directory, shown: prefix.isEmpty ? "/" : prefix).sorted() {
            let path = prefix.isEmpty ? name : "\(prefix)/\(name)"
            guard let information = RootDirectory.status(directory, name) else {
                throw RootDirectory.failure("cannot read '\(path)'", errno)
            }
            manifest.entries.append(try entry(path: path, information, in: directory, name: name))
            if information.st_nlink <= 1 || seenInodes.insert(UInt64(information.st_ino)).inserted {
                manifest.allocatedBytes += Int64(information.st_blocks) * 512
            }
            if RootDirectory.isDirectory(information) {
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw RootDirectory.failure("cannot open '\(path)'", errno) }
                defer { close(child) }
                try walk(child, prefix: path, into: &manifest, seenInodes: &seenInodes)
            }
        }
    }

    private static func entry(path: String, _ information: stat, in directory: Int32, name: String) throws(LayerUnpackError) -> Entry {
        let kind = Self.kind(information)
        var checksum: UInt32 = 0
        switch kind {
        case .file:
            guard let crc = fileChecksum(directory, name) else { throw RootDirectory.failure("cannot read '\(path)'", errno) }
            checksum = crc
        case .link:
            checksum = crc32Of(Array((RootDirectory.readLink(directory, name) ?? "").utf8))
        case .directory, .other:
            break
        }
        return Entry(
            path: path, kind: kind, mode: UInt32(information.st_mode) & 0o7777, uid: information.st_uid, gid: information.st_gid,
            size: kind == .file || kind == .link ? Int64(information.st_size) : 0,
            modified: Time(seconds: information.st_mtim.tv_sec, nanoseconds: information.st_mtim.tv_nsec),
            changed: Time(seconds: information.st_ctim.tv_sec, nanoseconds: information.st_ctim.tv_nsec), checksum: checksum)
    }

    static func kind(_ information: stat) -> Entry.Kind {
        switch information.st_mode & S_IFMT {
        case S_IFREG: .file
        case S_IFDIR: .directory
        case S_IFLNK: .link
        default: .other
        }
    }

    /// CRC-32 of a file's contents, read in 1 MiB pieces; nil when it cannot be read.
    static func fileChecksum(_ directory: Int32, _ name: String) -> UInt32? {
        let descriptor = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var crc = crc32(0, nil, 0)
        while true {
            let count = read(descriptor, buffer.baseAddress, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return UInt32(crc) }
            crc = crc32(crc, buffer.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(count))
        }
    }

    static func crc32Of(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(crc32(0, $0.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt($0.count))) }
    }

    // MARK: Checking

    /// Nil when `rootFilesystem` is as recorded; otherwise what differs (the first difference).
    func verify(rootFilesystem: String, deep: Bool) -> String? {
        let root = open(rootFilesystem, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { return "\(rootFilesystem) cannot be opened: \(describe(errno: errno))" }
        defer { close(root) }
        var children: [String: Set<String>]?
        for entry in entries {
            let shown = entry.path.isEmpty ? "/" : entry.path
            let name = entry.path.isEmpty ? "." : entry.path
            guard let information = RootDirectory.status(root, name) else { return "'\(shown)' is missing" }
            let kind = Self.kind(information)
            guard kind == entry.kind else { return "'\(shown)' is no longer a \(entry.kind)" }
            guard UInt32(information.st_mode) & 0o7777 == entry.mode, information.st_uid == entry.uid, information.st_gid == entry.gid else {
                return "the mode or owner of '\(shown)' changed"
            }
            if kind == .file || kind == .link, Int64(information.st_size) != entry.size {
                return "'\(shown)' is \(information.st_size) bytes, not \(entry.size)"
            }
            let timesAgree =
                information.st_mtim.tv_sec == entry.modified.seconds && information.st_mtim.tv_nsec == entry.modified.nanoseconds
                && information.st_ctim.tv_sec == entry.changed.seconds && information.st_ctim.tv_nsec == entry.changed.nanoseconds
            if timesAgree && !(deep && kind == .file) { continue }
            switch kind {
            case .file:
                guard Self.fileChecksum(root, name) == entry.checksum else { return "the contents of '\(shown)' changed" }
            case .link:
                guard Self.crc32Of(Array((RootDirectory.readLink(root, name) ?? "").utf8)) == entry.checksum else {
                    return "the link '\(shown)' changed"
                }
            case .directory:
                if children == nil { children = childrenByDirectory() }
                let directory = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard directory >= 0 else { return "'\(shown)' cannot be opened" }
                defer { close(directory) }
                guard let names = try? RootDirectory.names(in: directory, shown: shown), Set(names) == children?[entry.path] ?? [] else {
                    return "what is in '\(shown)' changed"
                }
            case .other:
                return "'\(shown)' changed"
            }
        }
        return nil
    }

    private func childrenByDirectory() -> [String: Set<String>] {
        var children: [String: Set<String>] = [:]
        for entry in entries where !entry.path.isEmpty {
            let parent = entry.path.lastIndex(of: "/").map { String(entry.path[..<$0]) } ?? ""
            let name = entry.path.lastIndex(of: "/").map { String(entry.path[entry.path.index(after: $0)...]) } ?? entry.path
            children[parent, default: []].insert(name)
        }
        return children
    }
}
