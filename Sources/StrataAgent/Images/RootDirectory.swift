import Glibc

/// A root filesystem being written, opened once as a directory descriptor; every path in it is
/// resolved as a chroot would resolve it, one component at a time with `openat` and
/// `O_NOFOLLOW`: a symbolic link met on the way is read and followed inside the root (an
/// absolute target starts again at the root, `..` stops at the root), so no path can reach
/// outside it whatever links earlier entries made. The last component of a path is never
/// followed: an entry replaces a link, it never writes through it.
final class RootDirectory {
    let path: String
    let descriptor: Int32
    /// The last parent directory resolved, by its components as asked: most entries of an
    /// archive share their parent with the one before.
    private var cachedParent: (components: ArraySlice<String>, resolved: Resolved)?
    /// A directory was removed or a link made since `cachedParent` was resolved: it may no
    /// longer be where its components lead. Its descriptor stays open until the next
    /// `directory` call, for the caller using it.
    private var cachedParentIsStale = false

    /// A directory inside the root: an open descriptor and its real path from the root (no links).
    struct Resolved {
        var descriptor: Int32
        var components: [String]
        var key: String { components.joined(separator: "/") }
    }

    init(path: String) throws(LayerUnpackError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw Self.failure("cannot open the root filesystem \(path)", errno) }
    }

    deinit {
        closeCachedParent()
        close(descriptor)
    }

    /// The components of an archive path: a leading `/` and `.` components dropped (an absolute
    /// name is taken from the root, as GNU tar does); a `..` component, a component longer than
    /// NAME_MAX or a path longer than PATH_MAX is refused.
    static func components(of path: String) throws(LayerUnpackError) -> [String] {
        guard path.utf8.count <= ImageLimits.maximumPathBytes else {
            throw LayerUnpackError(.unsafePath, "entry '\(path.prefix(200))...' is longer than \(ImageLimits.maximumPathBytes) bytes")
        }
        var components: [String] = []
        for component in path.split(separator: "/") where component != "." {
            guard component != ".." else {
                throw LayerUnpackError(.unsafePath, "entry '\(path)' has a '..' component: it could reach outside the root filesystem")
            }
            guard component.utf8.count <= ImageLimits.maximumNameBytes else {
                throw LayerUnpackError(.unsafePath, "entry '\(path)' has a component longer than \(ImageLimits.maximumNameBytes) bytes")
            }
            components.append(String(component))
        }
        return components
    }

    /// Resolves `components` as a directory inside the root, making missing directories (mode
    /// 0755, as tar does for parents an archive leaves out) when `create` is set. Returns nil
    /// when a component is missing and `create` is not set. The descriptor belongs to the root
    /// directory: valid until the next call, never closed by the caller.
    func directory(_ components: ArraySlice<String>, create: Bool) throws(LayerUnpackError) -> Resolved? {
        if !cachedParentIsStale, let cachedParent, cachedParent.components == components { return cachedParent.resolved }
        closeCachedParent()
        guard let resolved = try resolve(components, create: create) else { return nil }
        if resolved.descriptor != descriptor { cachedParent = (components, resolved) }
        return resolved
    }

    /// Like `directory`, but the caller owns the descriptor and gives it back with `release`.
    func openDirectory(_ components: ArraySlice<String>, create: Bool) throws(LayerUnpackError) -> Resolved? {
        try resolve(components, create: create)
    }

    func release(_ resolved: Resolved) {
        if resolved.descriptor != descriptor { close(resolved.descriptor) }
    }

    /// Called whenever a directory or link is removed or a link made: a cached parent may have
    /// been on the path that changed.
    func forgetCachedParent() {
        cachedParentIsStale = true
    }

    private func closeCachedParent() {
        if let cachedParent { release(cachedParent.resolved) }
        cachedParent = nil
        cachedParentIsStale = false
    }

    private func resolve(_ components: ArraySlice<String>, create: Bool) throws(LayerUnpackError) -> Resolved? {
        var current = descriptor
        var real: [String] = []
        var pending = Array(components.reversed())
        var follows = 0
        func moveTo(_ next: Int32) {
            if current != descriptor { close(current) }
            current = next
        }
        while let name = pending.popLast() {
            if name.isEmpty || name == "." { continue }
            if name == ".." {
                // Only a link's target can say "..": it stops at the root, as in a chroot.
                guard !real.isEmpty else { continue }
                real.removeLast()
                guard let parent = openRealPath(real) else {
                    moveTo(descriptor)
                    throw Self.failure("cannot reopen '\(real.joined(separator: "/"))' in \(path)", errno)
                }
                moveTo(parent)
                continue
            }
            let next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next >= 0 {
                real.append(name)
                moveTo(next)
                continue
            }
            let problem = errno
            switch problem {
            case ELOOP, ENOTDIR:
                guard let target = readLink(current, name) else {
                    moveTo(descriptor)
                    throw LayerUnpackError(.io, "'\((real + [name]).joined(separator: "/"))' in \(path) is not a directory")
                }
                follows += 1
                guard follows <= ImageLimits.maximumSymbolicLinkFollows else {
                    moveTo(descriptor)
                    throw LayerUnpackError(.unsafePath, "too many symbolic links under '\(components.joined(separator: "/"))'")
                }
                if target.hasPrefix("/") {
                    real.removeAll()
                    moveTo(descriptor)
                }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
            case ENOENT where create:
                if mkdirat(current, name, 0o755) != 0, errno != EEXIST {
                    let failed = errno
                    moveTo(descriptor)
                    throw Self.failure("cannot make directory '\((real + [name]).joined(separator: "/"))'", failed)
                }
                pending.append(name)
            case ENOENT:
                moveTo(descriptor)
                return nil
            default:
                moveTo(descriptor)
                throw Self.failure("cannot open '\((real + [name]).joined(separator: "/"))' in \(path)", problem)
            }
        }
        return Resolved(descriptor: current, components: real)
    }

    /// Opens a path known to hold no links (one `resolve` made), from the root.
    private func openRealPath(_ components: [String]) -> Int32? {
        var current = descriptor
        for name in components {
            let next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if current != descriptor { close(current) }
            guard next >= 0 else { return nil }
            current = next
        }
        return current == descriptor ? dup(descriptor) : current
    }

    // MARK: Operations on one name in a resolved directory

    /// The entry's status, not following a link; nil when there is none.
    static func status(_ directory: Int32, _ name: String) -> stat? {
        var information = stat()
        return fstatat(directory, name, &information, AT_SYMLINK_NOFOLLOW) == 0 ? information : nil
    }

    static func isDirectory(_ information: stat) -> Bool { information.st_mode & S_IFMT == S_IFDIR }

    /// Removes `name` from `directory`, a directory with everything in it; links are removed,
    /// never followed. Nothing there is not an error.
    func remove(_ directory: Int32, _ name: String, shown: String) throws(LayerUnpackError) {
        forgetCachedParent()
        if unlinkat(directory, name, 0) == 0 || errno == ENOENT { return }
        guard errno == EISDIR else { throw Self.failure("cannot remove '\(shown)'", errno) }
        try removeChildren(of: directory, name, shown: shown) { _ in false }
        if unlinkat(directory, name, AT_REMOVEDIR) != 0, errno != ENOENT { throw Self.failure("cannot remove '\(shown)'", errno) }
    }

    /// Removes from the directory `name` (in `parent`) every child for which `keep` (given the
    /// child's path below `name`, `/`-separated) is false; descends into kept directories.
    func removeChildren(
        of parent: Int32, _ name: String, shown: String, keep: (String) -> Bool
    ) throws(LayerUnpackError) {
        forgetCachedParent()
        try removeChildren(of: parent, name, shown: shown, relative: "", keep: keep)
    }

    private func removeChildren(
        of parent: Int32, _ name: String, shown: String, relative: String, keep: (String) -> Bool
    ) throws(LayerUnpackError) {
        let directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { throw Self.failure("cannot open '\(shown)'", errno) }
        defer { close(directory) }
        for child in try Self.names(in: directory, shown: shown) {
            let childRelative = relative.isEmpty ? child : "\(relative)/\(child)"
            let childShown = "\(shown)/\(child)"
            if keep(childRelative) {
                if let information = Self.status(directory, child), Self.isDirectory(information) {
                    try removeChildren(of: directory, child, shown: childShown, relative: childRelative, keep: keep)
                }
            } else {
                try remove(directory, child, shown: childShown)
            }
        }
    }

    /// The names in a directory, `.` and `..` left out.
    static func names(in directory: Int32, shown: String) throws(LayerUnpackError) -> [String] {
        let duplicate = dup(directory)
        guard duplicate >= 0, let stream = fdopendir(duplicate) else {
            let problem = errno
            if duplicate >= 0 { close(duplicate) }
            throw failure("cannot list '\(shown)'", problem)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    func readLink(_ directory: Int32, _ name: String) -> String? {
        Self.readLink(directory, name)
    }

    static func readLink(_ directory: Int32, _ name: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = buffer.withUnsafeMutableBytes { readlinkat(directory, name, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        guard count >= 0, count < buffer.count else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    static func failure(_ what: String, _ number: Int32) -> LayerUnpackError {
        LayerUnpackError(.io, "\(what): \(describe(errno: number))")
    }
}
