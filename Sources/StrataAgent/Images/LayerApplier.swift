import Glibc
import StrataImages

/// Applies the entries of one layer's tar onto a root filesystem, by the OCI image spec's
/// changeset rules:
///
/// - a regular file, link, device or fifo replaces whatever was at its path (a directory with
///   everything in it too); a directory keeps an existing directory and its contents and takes
///   the new mode, owner and time;
/// - `.wh.<name>` removes `<name>` (and all under it) that lower layers made; the whiteout file
///   itself is not made;
/// - `.wh..wh..opq` makes its directory opaque: everything lower layers put in it goes, and what
///   this layer puts in it stays (whether it comes before or after the marker in the archive:
///   the paths this layer wrote are remembered, as Docker and containerd do);
/// - owners are set (`lchown`) only when the agent runs as root, and device nodes are made only
///   then (and skipped where the kernel refuses, as in a user namespace); fifos are always made;
/// - directories get their mode and time once the layer is done, so that a read-only directory
///   can be filled first and its time is not changed by what goes in it.
///
/// Paths are made safe by `RootDirectory`: nothing is written outside the root.
final class LayerApplier {
    let root: RootDirectory
    let layerName: String
    let asRoot: Bool
    /// Bytes of file contents this layer may still write (the cache's bound on a root filesystem).
    private var remainingBytes: Int64
    /// Bytes of file contents written.
    private(set) var writtenBytes: Int64 = 0
    /// Real paths (from the root, `/`-separated) this layer made, for opaque directories.
    private var pathsMade: Set<String> = []
    /// Directories this layer made or changed: their mode and time are set at the end.
    private var directories: [(components: [String], mode: UInt32, time: TarTime)] = []
    private var currentFile: (descriptor: Int32, entry: TarEntry, shown: String)?
    /// Device nodes skipped (not root, or refused).
    private(set) var skippedDevices = 0

    init(root: RootDirectory, layerName: String, maximumBytes: Int64) {
        self.root = root
        self.layerName = layerName
        self.asRoot = geteuid() == 0
        self.remainingBytes = maximumBytes
    }

    deinit {
        if let currentFile { close(currentFile.descriptor) }
    }

    func apply(_ event: TarReader.Event) throws(LayerUnpackError) {
        switch event {
        case .entry(let entry):
            try begin(entry)
        case .contents(let bytes):
            guard let currentFile else { return }
            remainingBytes -= Int64(bytes.count)
            writtenBytes += Int64(bytes.count)
            guard remainingBytes >= 0 else {
                throw LayerUnpackError(.tooLarge, "layer \(layerName) unpacks to more than the image cache may hold")
            }
            try Self.writeAll(currentFile.descriptor, bytes, shown: currentFile.shown)
        case .entryEnd:
            try finishFile()
        }
    }

    /// Sets the mode and time of the directories this layer made or changed.
    func finish() throws(LayerUnpackError) {
        for directory in directories.reversed() {
            guard let name = directory.components.last else {
                try setAttributes(root.descriptor, ".", mode: directory.mode, time: directory.time, shown: "/")
                continue
            }
            guard let parent = try root.directory(directory.components.dropLast(), create: false),
                let information = RootDirectory.status(parent.descriptor, name), RootDirectory.isDirectory(information)
            else { continue }  // removed again later in the layer
            try setAttributes(parent.descriptor, name, mode: directory.mode, time: directory.time, shown: directory.components.joined(separator: "/"))
        }
        directories = []
    }

    // MARK: Entries

    private func begin(_ entry: TarEntry) throws(LayerUnpackError) {
        if case .other(let typeFlag) = entry.kind {
            let shown = typeFlag >= 0x20 && typeFlag < 0x7F ? "'\(Character(Unicode.Scalar(typeFlag)))'" : "\(typeFlag)"
            throw LayerUnpackError(.unsupported, "the tar entry '\(entry.path)' has type \(shown), which Strata does not unpack")
        }
        let components = try RootDirectory.components(of: entry.path)
        guard let name = components.last else {
            // "./": the root directory itself.
            guard entry.kind == .directory else {
                throw LayerUnpackError(.unsafePath, "entry '\(entry.path)' of layer \(layerName) would replace the root directory")
            }
            if asRoot { try changeOwner(root.descriptor, ".", entry, shown: "/") }
            directories.append(([], entry.mode, entry.modificationTime))
            return
        }
        if name.hasPrefix(".wh.") {
            try whiteout(name, in: components.dropLast(), entry: entry)
            return
        }
        guard let parent = try root.directory(components.dropLast(), create: true) else {
            preconditionFailure("a directory made on the way cannot be missing")
        }
        let shown = (parent.components + [name]).joined(separator: "/")
        pathsMade.insert(shown)
        let existing = RootDirectory.status(parent.descriptor, name)

        switch entry.kind {
        case .directory:
            if let existing, RootDirectory.isDirectory(existing) {
                // Kept, with what lower layers put in it.
            } else {
                if existing != nil { try root.remove(parent.descriptor, name, shown: shown) }
                // Writable by the agent until the layer is done, whatever its final mode.
                guard mkdirat(parent.descriptor, name, 0o700) == 0 else { throw RootDirectory.failure("cannot make directory '\(shown)'", errno) }
            }
            if asRoot { try changeOwner(parent.descriptor, name, entry, shown: shown) }
            directories.append((parent.components + [name], entry.mode, entry.modificationTime))
        case .regular:
            if existing != nil { try root.remove(parent.descriptor, name, shown: shown) }
            let descriptor = openat(parent.descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw RootDirectory.failure("cannot create '\(shown)'", errno) }
            currentFile = (descriptor, entry, shown)
        case .symbolicLink:
            if existing != nil { try root.remove(parent.descriptor, name, shown: shown) }
            root.forgetCachedParent()
            guard symlinkat(entry.linkTarget, parent.descriptor, name) == 0 else {
                throw RootDirectory.failure("cannot make link '\(shown)'", errno)
            }
            if asRoot { try changeOwner(parent.descriptor, name, entry, shown: shown) }
            try setTime(parent.descriptor, name, entry.modificationTime, shown: shown)
        case .hardLink:
            try hardLink(entry, at: parent, name: name, existing: existing, shown: shown)
        case .characterDevice, .blockDevice, .fifo:
            try special(entry, in: parent.descriptor, name: name, existing: existing, shown: shown)
        case .other:
            preconditionFailure("refused above")
        }
    }

    private func finishFile() throws(LayerUnpackError) {
        guard let file = currentFile else { return }
        currentFile = nil
        defer { close(file.descriptor) }
        // Owner before mode: a change of owner clears the set-user-id and set-group-id bits.
        if asRoot, fchown(file.descriptor, file.entry.uid, file.entry.gid) != 0 {
            throw RootDirectory.failure("cannot set the owner of '\(file.shown)'", errno)
        }
        guard fchmod(file.descriptor, mode_t(file.entry.mode)) == 0 else {
            throw RootDirectory.failure("cannot set the mode of '\(file.shown)'", errno)
        }
        guard futimens(file.descriptor, Self.timespecs(file.entry.modificationTime)) == 0 else { throw RootDirectory.failure("cannot set the time of '\(file.shown)'", errno) }
    }

    /// `.wh.<name>` removes `<name>`; `.wh..wh..opq` empties its directory of lower layers' files.
    private func whiteout(_ marker: String, in directory: ArraySlice<String>, entry: TarEntry) throws(LayerUnpackError) {
        if marker == ".wh..wh..opq" {
            guard let parent = try root.directory(directory, create: true) else { return }
            let prefix = parent.components.joined(separator: "/")
            let made = pathsMade
            try root.removeChildren(of: parent.descriptor, ".", shown: prefix.isEmpty ? "/" : prefix) { relative in
                made.contains(prefix.isEmpty ? relative : "\(prefix)/\(relative)")
            }
            return
        }
        let name = String(marker.dropFirst(".wh.".count))
        // Other `.wh..wh.` names are AUFS' own bookkeeping, meaningless here.
        guard !marker.hasPrefix(".wh..wh."), !name.isEmpty, name != ".", name != ".." else { return }
        guard let parent = try root.directory(directory, create: false) else { return }
        try root.remove(parent.descriptor, name, shown: (parent.components + [name]).joined(separator: "/"))
    }

    /// A hard link to another file of the root filesystem (the target is an archive path,
    /// resolved inside the root like any other; it must exist and not be a directory).
    private func hardLink(
        _ entry: TarEntry, at parent: RootDirectory.Resolved, name: String, existing: stat?, shown: String
    ) throws(LayerUnpackError) {
        let targetComponents = try RootDirectory.components(of: entry.linkTarget)
        guard let targetName = targetComponents.last,
            let targetParent = try root.openDirectory(targetComponents.dropLast(), create: false)
        else {
            throw LayerUnpackError(.corrupt, "hard link '\(entry.path)' of layer \(layerName) names '\(entry.linkTarget)', which is not there")
        }
        defer { root.release(targetParent) }
        guard let target = RootDirectory.status(targetParent.descriptor, targetName), !RootDirectory.isDirectory(target) else {
            throw LayerUnpackError(
                .corrupt, "hard link '\(entry.path)' of layer \(layerName) names '\(entry.linkTarget)', which is missing or a directory")
        }
        if let existing {
            if existing.st_dev == target.st_dev && existing.st_ino == target.st_ino { return }
            try root.remove(parent.descriptor, name, shown: shown)
        }
        guard linkat(targetParent.descriptor, targetName, parent.descriptor, name, 0) == 0 else {
            throw RootDirectory.failure("cannot link '\(shown)' to '\(entry.linkTarget)'", errno)
        }
    }

    private func special(
        _ entry: TarEntry, in directory: Int32, name: String, existing: stat?, shown: String
    ) throws(LayerUnpackError) {
        let type: mode_t
        switch entry.kind {
        case .characterDevice: type = S_IFCHR
        case .blockDevice: type = S_IFBLK
        default: type = S_IFIFO
        }
        if type != S_IFIFO, !asRoot {
            skippedDevices += 1
            return
        }
        if existing != nil { try root.remove(directory, name, shown: shown) }
        let device = type == S_IFIFO ? 0 : Self.deviceNumber(major: entry.deviceMajor, minor: entry.deviceMinor)
        guard mknodat(directory, name, type | mode_t(entry.mode & 0o777), device) == 0 else {
            if errno == EPERM, type != S_IFIFO {
                skippedDevices += 1
                return
            }
            throw RootDirectory.failure("cannot make '\(shown)'", errno)
        }
        if asRoot { try changeOwner(directory, name, entry, shown: shown) }
        try setAttributes(directory, name, mode: entry.mode, time: entry.modificationTime, shown: shown)
    }

    // MARK: Attributes

    private func changeOwner(_ directory: Int32, _ name: String, _ entry: TarEntry, shown: String) throws(LayerUnpackError) {
        guard fchownat(directory, name, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw RootDirectory.failure("cannot set the owner of '\(shown)'", errno)
        }
    }

    private func setAttributes(_ directory: Int32, _ name: String, mode: UInt32, time: TarTime, shown: String) throws(LayerUnpackError) {
        guard fchmodat(directory, name, mode_t(mode), 0) == 0 else { throw RootDirectory.failure("cannot set the mode of '\(shown)'", errno) }
        try setTime(directory, name, time, shown: shown)
    }

    private func setTime(_ directory: Int32, _ name: String, _ time: TarTime, shown: String) throws(LayerUnpackError) {
        guard utimensat(directory, name, Self.timespecs(time), AT_SYMLINK_NOFOLLOW) == 0 else {
            throw RootDirectory.failure("cannot set the time of '\(shown)'", errno)
        }
    }

    /// Access and modification times, both the entry's.
    private static func timespecs(_ time: TarTime) -> [timespec] {
        let value = timespec(tv_sec: Int(time.seconds), tv_nsec: Int(time.nanoseconds))
        return [value, value]
    }

    /// glibc's `makedev`, a macro Swift does not see.
    static func deviceNumber(major: UInt32, minor: UInt32) -> dev_t {
        let major = UInt64(major)
        let minor = UInt64(minor)
        return dev_t(((major & 0xFFFF_F000) << 32) | ((major & 0xFFF) << 8) | ((minor & 0xFFFF_FF00) << 12) | (minor & 0xFF))
    }

    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, shown: String) throws(LayerUnpackError) {
        var written = 0
        while written < bytes.count {
            let count = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw RootDirectory.failure("cannot write '\(shown)'", count < 0 ? errno : EIO) }
            written += count
        }
    }
}
