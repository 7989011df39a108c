#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import StrataCompute

/// The OCI runtime configuration (`config.json`) runc runs a task's container from: the subset
/// of the runtime spec (1.0.2) Strata fills in.
///
/// The container shares the host's network (tasks reach the data node and each other on
/// loopback and the host's addresses, as Marathon's host networking does) and has its own pid,
/// mount, IPC and UTS namespaces; its hostname is the host's, which is where the network it
/// sees is. The sandbox is bind-mounted read-write at `/mnt/sandbox`.
struct OCIConfiguration: Encodable, Sendable {
    var ociVersion = "1.0.2"
    var process: Process
    var root: Root
    var hostname: String
    var mounts: [Mount]
    var linux: Linux

    struct Process: Encodable, Sendable {
        var terminal = false
        var user: User
        var args: [String]
        var env: [String]
        var cwd = "/"
        var capabilities: Capabilities
        var noNewPrivileges = true
    }

    struct User: Encodable, Sendable {
        var uid: UInt32
        var gid: UInt32
        var additionalGids: [UInt32]
    }

    /// runc's default set: enough to signal the container's own processes and bind low ports.
    struct Capabilities: Encodable, Sendable {
        var bounding = Self.defaults
        var effective = Self.defaults
        var permitted = Self.defaults
        static let defaults = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    }

    struct Root: Encodable, Sendable {
        var path: String
        var readonly = false
    }

    struct Mount: Encodable, Sendable {
        var destination: String
        var type: String
        var source: String
        var options: [String]
    }

    struct Linux: Encodable, Sendable {
        var resources: Resources
        var cgroupsPath: String
        var namespaces: [Namespace]
        var maskedPaths: [String]
        var readonlyPaths: [String]
    }

    struct Namespace: Encodable, Sendable {
        var type: String
    }

    struct Resources: Encodable, Sendable {
        /// Deny every device; runc adds the usual ones (null, zero, full, random, urandom, tty).
        var devices = [DeviceRule(allow: false, access: "rwm")]
        var memory: Memory?
        var cpu: CPU
    }

    struct DeviceRule: Encodable, Sendable {
        var allow: Bool
        var access: String
    }

    struct Memory: Encodable, Sendable {
        var limit: Int64
        /// Memory and swap together, as v1's memsw: the same as `limit` means no swap.
        var swap: Int64?
    }

    struct CPU: Encodable, Sendable {
        var shares: UInt64
    }

    /// Where the configuration mounts something, as paths inside the root filesystem, and the
    /// mode to make each with: a root filesystem that has them all is not written to by runc
    /// (the rest of `/dev` is in its tmpfs). runc gives a tmpfs the mode of the directory it is
    /// mounted on, so `/tmp` is made writable by all, sticky.
    static let mountPoints: [(path: String, mode: UInt32)] = [
        ("proc", 0o755), ("dev", 0o755), ("sys", 0o755), ("tmp", 0o1777), ("mnt/sandbox", 0o755),
    ]

    /// The configuration for `launch`, run as `user` from `rootFilesystem`, its cgroup at
    /// `/<cgroupPath>` (relative to each hierarchy's root, like the executor's own cgroups).
    /// `swapAccounting` says whether the host can limit memory and swap together.
    static func make(
        launch: TaskLaunch, user: HostUser, rootFilesystem: String, environment: [String], cgroupPath: String,
        hostname: String, swapAccounting: Bool
    ) -> OCIConfiguration {
        let limit = TaskCgroup.memoryLimitBytes(for: launch.resources.memMB)
        let readOnly = launch.container?.readOnly ?? false
        // A read-only root still needs somewhere to write scratch files.
        let scratch = readOnly ? [Mount(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"])] : []
        return OCIConfiguration(
            process: Process(
                user: User(uid: user.uid, gid: user.gid, additionalGids: user.groups.filter { $0 != user.gid }),
                args: launch.arguments, env: environment, cwd: launch.container.map { $0.workingDirectory.isEmpty ? "/" : $0.workingDirectory } ?? "/",
                capabilities: Capabilities()),
            root: Root(path: rootFilesystem, readonly: readOnly),
            hostname: hostname,
            mounts: [
                Mount(destination: "/proc", type: "proc", source: "proc", options: []),
                Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
                Mount(
                    destination: "/dev/pts", type: "devpts", source: "devpts",
                    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
                Mount(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
                Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
                Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
                Mount(destination: "/mnt/sandbox", type: "bind", source: launch.sandbox, options: ["rbind", "rw"]),
            ] + scratch,
            linux: Linux(
                resources: Resources(
                    memory: limit.map { Memory(limit: $0, swap: swapAccounting ? $0 : nil) },
                    cpu: CPU(shares: UInt64(TaskCgroup.cpuShares(for: launch.resources.cpus)))),
                cgroupsPath: "/\(cgroupPath)",
                namespaces: ["pid", "mount", "ipc", "uts"].map(Namespace.init),
                maskedPaths: [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                ],
                readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]))
    }

    func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Every field is a string, number, bool or array of them: encoding cannot fail.
        return Array(try! encoder.encode(self))
    }
}
