import Glibc

/// A user of this host, as a task runs as it: uid, primary gid and supplementary groups.
struct HostUser: Sendable, Hashable {
    var name: String
    var uid: UInt32
    var gid: UInt32
    var groups: [UInt32]

    /// Looks `name` up in the host's user database (NSS: /etc/passwd, LDAP...); nil when there is
    /// no such user.
    static func lookUp(_ name: String) -> HostUser? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let status = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard status == 0, result != nil else { return nil }
        let uid = entry.pw_uid
        let gid = entry.pw_gid
        return HostUser(name: name, uid: uid, gid: gid, groups: groupList(name, primary: gid))
    }

    /// The user's groups, its primary one first (`getgrouplist`).
    private static func groupList(_ name: String, primary: gid_t) -> [UInt32] {
        var count: Int32 = 64
        for _ in 0..<4 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var found = count
            if getgrouplist(name, primary, &groups, &found) >= 0 {
                return Array(groups.prefix(Int(found)))
            }
            count = max(found, count * 4)
        }
        return [primary]
    }
}
