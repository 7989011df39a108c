import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Agent {
    /// The first directory on the way to `path` that other users cannot pass through (no
    /// execute bit for others), or nil when every one can be. Tasks run as their submitting
    /// users, whose programs reach their sandboxes (and `$MESOS_SANDBOX`) by absolute path; a
    /// work directory under, say, a 0700 temporary directory leaves them unable to.
    static func firstDirectoryClosedToOthers(on path: String) -> String? {
        var current = ""
        for component in URL(fileURLWithPath: path).standardizedFileURL.path.split(separator: "/") {
            current += "/" + component
            var information = stat()
            guard stat(current, &information) == 0 else { return nil }
            if information.st_mode & S_IXOTH == 0 { return current }
        }
        return nil
    }

    /// Warns when tasks run as other users could not reach their sandboxes.
    func checkWorkDirectoryReachable() {
        guard let closed = Self.firstDirectoryClosedToOthers(on: configuration.workDirectory + "/sandboxes") else { return }
        logger.warning(
            "tasks run as other users cannot reach their sandboxes: a directory on the way is closed to them (chmod o+x it)",
            metadata: ["directory": "\(closed)", "workDirectory": "\(configuration.workDirectory)"])
    }
}
