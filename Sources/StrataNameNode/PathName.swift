import StrataCore
import StrataWire

/// Absolute DFS paths as the name node accepts them: starting with `/`, no empty, `.` or `..`
/// components, no `:` in a component, each component at most `Limits.maximumNameBytes` bytes,
/// the whole at most `Limits.maximumPathBytes`. (HDFS `DFSUtil.isValidName`, with its limits.)
/// A single trailing `/` is allowed and ignored.
public enum PathName {
    /// The components of `path` (empty for `/`), or an `InvalidPathException`.
    public static func components(_ path: String) throws(RemoteException) -> [String] {
        guard path.utf8.count <= Limits.maximumPathBytes else {
            throw RemoteException.invalidPath(String(path.prefix(100)) + "...", "path is longer than \(Limits.maximumPathBytes) bytes")
        }
        guard path.hasPrefix("/") else {
            throw RemoteException.invalidPath(path, "path must be absolute (start with /)")
        }
        var parts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { String(Substring($0)) }
        parts.removeFirst()  // before the leading "/"
        if parts.last == "" { parts.removeLast() }  // a trailing "/"
        guard parts.count <= Limits.maximumPathDepth else {
            throw RemoteException.invalidPath(path, "more than \(Limits.maximumPathDepth) components")
        }
        for part in parts {
            if part.isEmpty { throw RemoteException.invalidPath(path, "empty path component (//)") }
            if part == "." || part == ".." { throw RemoteException.invalidPath(path, "'\(part)' is not allowed as a path component") }
            if part.contains(":") { throw RemoteException.invalidPath(path, "':' is not allowed in a path component") }
            if part.utf8.count > Limits.maximumNameBytes {
                throw RemoteException(
                    .pathComponentTooLong,
                    "The maximum path component name limit of \(part.prefix(40))... in directory \(path) is exceeded: limit=\(Limits.maximumNameBytes) length=\(part.utf8.count)")
            }
            if part.utf8.contains(0) { throw RemoteException.invalidPath(path, "NUL byte in a path component") }
        }
        return parts
    }

    /// The normalized form of a valid path (no trailing slash).
    public static func normalized(_ components: [String]) -> String {
        components.isEmpty ? "/" : "/" + components.joined(separator: "/")
    }
}
