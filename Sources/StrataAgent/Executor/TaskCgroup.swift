import Glibc
import StrataCompute

/// Where this host's cgroup hierarchies are mounted.
///
/// cgroup v2 is in use when `/sys/fs/cgroup/cgroup.controllers` exists (one unified hierarchy);
/// otherwise v1, with a hierarchy per controller under `/sys/fs/cgroup/<controller>`. A v2
/// hierarchy mounted beside v1 ones (systemd's "hybrid" `/sys/fs/cgroup/unified`) holds no
/// controllers and is not used.
struct CgroupHierarchies: Sendable, Hashable {
    enum Version: Sendable, Hashable { case v1, v2 }

    var version: Version
    /// Mount points of the hierarchies tasks join, deduplicated (`cpu` and `cpuacct` are often
    /// one hierarchy). The memory hierarchy, when there is one, comes first.
    var mountPoints: [String]
    /// v1: the memory and freezer hierarchies; v2: the unified one.
    var memory: String?
    var freezer: String?
    var cpu: String?

    static let root = "/sys/fs/cgroup"

    /// The controllers tasks are placed under on v1: what their limits need (cpu, memory), what
    /// accounts them (cpuacct, pids), and what stops them all at once to kill them (freezer).
    static let v1Controllers = ["memory", "cpu", "cpuacct", "pids", "freezer"]

    static func detect(root: String = root) -> CgroupHierarchies {
        if fileExists("\(root)/cgroup.controllers") {
            return CgroupHierarchies(version: .v2, mountPoints: [root], memory: root, freezer: root, cpu: root)
        }
        var mountPoints: [String] = []
        var seen: Set<String> = []
        var byController: [String: String] = [:]
        for controller in v1Controllers {
            let path = "\(root)/\(controller)"
            guard fileExists("\(path)/cgroup.procs"), let real = realPath(path) else { continue }
            byController[controller] = path
            if seen.insert(real).inserted { mountPoints.append(path) }
        }
        return CgroupHierarchies(
            version: .v1, mountPoints: mountPoints, memory: byController["memory"], freezer: byController["freezer"],
            cpu: byController["cpu"])
    }
}

/// One task's cgroup, `<hierarchy>/<parent>/<taskId>` in every hierarchy: created with its
/// limits before the task starts, read when it ends, emptied and removed after.
///
/// runc creates and removes a container's cgroup itself (at the same path); this type then only
/// reads and empties it.
struct TaskCgroup: Sendable {
    let hierarchies: CgroupHierarchies
    /// `<parent>/<taskId>`, relative to each hierarchy's root.
    let relativePath: String

    init(hierarchies: CgroupHierarchies, parent: String, taskId: String) {
        self.hierarchies = hierarchies
        self.relativePath = "\(parent)/\(taskId)"
    }

    /// The task's directory in each hierarchy.
    var directories: [String] { hierarchies.mountPoints.map { "\($0)/\(relativePath)" } }

    /// The `cgroup.procs` files a process writes its pid to, to join.
    var processFiles: [String] { directories.map { "\($0)/cgroup.procs" } }

    var exists: Bool { directories.contains { fileExists($0) } }

    // MARK: Limits

    /// CPU shares for `cpus`: 1024 a CPU, at least 2 and at most 262144 (the kernel's bounds).
    static func cpuShares(for cpus: Double) -> Int {
        min(262_144, max(2, Int((cpus * 1024).rounded())))
    }

    /// v2's `cpu.weight` for v1 shares, the way runc and systemd convert them.
    static func cpuWeight(forShares shares: Int) -> Int {
        1 + ((shares - 2) * 9999) / 262_142
    }

    /// The memory limit for `memMB`; nil (no limit) for zero.
    static func memoryLimitBytes(for memMB: Double) -> Int64? {
        memMB > 0 ? Int64((memMB * 1_048_576).rounded()) : nil
    }

    /// Creates the task's cgroups (and the parent's) and sets their limits. A directory left
    /// empty by an earlier run is taken over; one with processes in it is refused.
    func create(resources: Resources) throws(LaunchError) {
        if !pids().isEmpty {
            throw .launchFailed("cgroup \(relativePath) already has processes in it (left over from an earlier run?)")
        }
        for mountPoint in hierarchies.mountPoints {
            var path = mountPoint
            for component in relativePath.split(separator: "/") {
                if hierarchies.version == .v2 {
                    // A v2 cgroup's controllers come from its parent's subtree_control.
                    enableControllers(in: path)
                }
                path += "/\(component)"
                if mkdir(path, 0o755) != 0, errno != EEXIST {
                    let problem = describe(errno: errno)
                    _ = removeOnce()
                    throw .launchFailed("cannot create cgroup \(path): \(problem)")
                }
            }
        }
        do {
            try applyLimits(resources)
        } catch {
            _ = removeOnce()
            throw error
        }
    }

    private func enableControllers(in path: String) {
        for controller in ["cpu", "memory", "pids"] {
            _ = writeFile("\(path)/cgroup.subtree_control", "+\(controller)")
        }
    }

    private func applyLimits(_ resources: Resources) throws(LaunchError) {
        let shares = Self.cpuShares(for: resources.cpus)
        let limit = Self.memoryLimitBytes(for: resources.memMB)
        switch hierarchies.version {
        case .v1:
            if let cpu = hierarchies.cpu {
                try write("\(cpu)/\(relativePath)/cpu.shares", String(shares))
            }
            if let limit, let memory = hierarchies.memory {
                let directory = "\(memory)/\(relativePath)"
                try write("\(directory)/memory.limit_in_bytes", String(limit))
                // With swap accounting on, the same limit on memory and swap together means the
                // task cannot escape its limit into swap.
                if fileExists("\(directory)/memory.memsw.limit_in_bytes") {
                    try write("\(directory)/memory.memsw.limit_in_bytes", String(limit))
                }
            }
        case .v2:
            let directory = "\(Self.v2Root(hierarchies))/\(relativePath)"
            try write("\(directory)/cpu.weight", String(Self.cpuWeight(forShares: shares)))
            if let limit {
                try write("\(directory)/memory.max", String(limit))
                if fileExists("\(directory)/memory.swap.max") {
                    try write("\(directory)/memory.swap.max", "0")
                }
            }
        }
    }

    private static func v2Root(_ hierarchies: CgroupHierarchies) -> String {
        hierarchies.mountPoints[0]
    }

    private func write(_ path: String, _ value: String) throws(LaunchError) {
        if let problem = writeFile(path, value) {
            throw .launchFailed("cannot write \(value) to \(path): \(problem)")
        }
    }

    // MARK: Reading

    /// Every process in the task's cgroups.
    func pids() -> Set<pid_t> {
        var pids: Set<pid_t> = []
        for file in processFiles {
            guard let text = readFile(file) else { continue }
            for line in text.split(separator: "\n") {
                if let pid = pid_t(line) { pids.insert(pid) }
            }
        }
        return pids
    }

    /// The task's memory limit, peak use and OOM kills, while its cgroup still exists.
    func memoryReport() -> MemoryReport? {
        guard let memory = hierarchies.memory else { return nil }
        let directory = "\(memory)/\(relativePath)"
        switch hierarchies.version {
        case .v1:
            guard let limitText = readFile("\(directory)/memory.limit_in_bytes") else { return nil }
            // An unlimited v1 cgroup reports the largest page-aligned 64-bit number.
            let limit = Int64(trimmed(limitText)).flatMap { $0 >= Int64.max / 2 ? nil : $0 }
            let oomControl = readFile("\(directory)/memory.oom_control").map(Self.keyedValues) ?? [:]
            return MemoryReport(
                limitBytes: limit,
                peakBytes: readFile("\(directory)/memory.max_usage_in_bytes").flatMap { Int64(trimmed($0)) },
                oomKillCount: oomControl["oom_kill"].map(Int.init),
                limitHitCount: readFile("\(directory)/memory.failcnt").flatMap { Int(trimmed($0)) })
        case .v2:
            guard let limitText = readFile("\(directory)/memory.max") else { return nil }
            let events = readFile("\(directory)/memory.events").map(Self.keyedValues) ?? [:]
            let peak = readFile("\(directory)/memory.peak") ?? readFile("\(directory)/memory.current")
            return MemoryReport(
                limitBytes: Int64(trimmed(limitText)),
                peakBytes: peak.flatMap { Int64(trimmed($0)) },
                oomKillCount: events["oom_kill"].map(Int.init),
                limitHitCount: events["max"].map(Int.init))
        }
    }

    /// Reads `key value` lines (`memory.oom_control`, `memory.events`).
    static func keyedValues(_ text: String) -> [String: Int64] {
        var values: [String: Int64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Int64(parts[1]) { values[String(parts[0])] = value }
        }
        return values
    }

    // MARK: Killing and removing

    /// One attempt at killing everything in the task's cgroups, and how many processes it saw.
    ///
    /// v2 has `cgroup.kill`, which the kernel does atomically. On v1 the freezer hierarchy stops
    /// the cgroup first, so a process forking as fast as it can cannot outrun the pid list;
    /// SIGKILL reaches frozen processes once they are thawed. Without a freezer, repeated
    /// attempts kill what forked since the last one.
    func killEverythingOnce() -> Int {
        let found = pids()
        if found.isEmpty { return 0 }
        if hierarchies.version == .v2, writeFile("\(directories[0])/cgroup.kill", "1") == nil {
            return found.count
        }
        let freezerState = hierarchies.freezer.map { "\($0)/\(relativePath)/freezer.state" }
        if let freezerState { _ = writeFile(freezerState, "FROZEN") }
        for pid in pids().union(found) { kill(pid, SIGKILL) }
        if let freezerState { _ = writeFile(freezerState, "THAWED") }
        return found.count
    }

    /// Sends `signal` to every process in the task's cgroups (a polite SIGTERM before a kill).
    func signalEverything(_ signal: Int32) {
        for pid in pids() { kill(pid, signal) }
    }

    /// Kills everything in the cgroups until they are empty, on a dedicated thread (it waits
    /// between attempts). Gives up after about ten seconds, which only a process stuck in the
    /// kernel can cause; the cgroup then stays, and `leftoverTaskIds` reports it.
    func killEverythingBlocking() -> Bool {
        for _ in 0..<2000 {
            if killEverythingOnce() == 0 { return true }
            usleep(5000)
        }
        return pids().isEmpty
    }

    /// The same for async callers: waits between attempts with `Task.sleep`.
    func killEverything() async -> Bool {
        for _ in 0..<2000 {
            if killEverythingOnce() == 0 { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return pids().isEmpty
    }

    /// Removes the task's directories (not the parent's), which must be empty of processes. A
    /// directory already gone is fine. Returns the ones that could not be removed; EBUSY among
    /// them can mean the kernel has not yet let go of a cgroup whose last process just exited.
    func removeOnce() -> [(directory: String, errno: Int32)] {
        var failed: [(directory: String, errno: Int32)] = []
        for directory in directories where rmdir(directory) != 0 && errno != ENOENT {
            failed.append((directory, errno))
        }
        return failed
    }

    /// `removeOnce`, tried again for a while on EBUSY, on a dedicated thread.
    @discardableResult
    func removeBlocking() -> [String] {
        var failed = removeOnce()
        for _ in 0..<100 where failed.contains(where: { $0.errno == EBUSY }) {
            usleep(2000)
            failed = removeOnce()
        }
        return failed.map { "\($0.directory): \(describe(errno: $0.errno))" }
    }

    /// The same for async callers.
    @discardableResult
    func remove() async -> [String] {
        var failed = removeOnce()
        for _ in 0..<100 where failed.contains(where: { $0.errno == EBUSY }) {
            try? await Task.sleep(for: .milliseconds(2))
            failed = removeOnce()
        }
        return failed.map { "\($0.directory): \(describe(errno: $0.errno))" }
    }
}

// MARK: Small files

func fileExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}

func isDirectory(_ path: String) -> Bool {
    var information = stat()
    return stat(path, &information) == 0 && information.st_mode & S_IFMT == S_IFDIR
}

func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

func trimmed(_ text: String) -> String {
    String(text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
}

/// Reads a small file (cgroup and runc state files), at most 1 MiB.
func readFile(_ path: String) -> String? {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    while bytes.count < 1 << 20 {
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        if count < 0 { return nil }
        if count == 0 { break }
        bytes.append(contentsOf: buffer[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes `value` to an existing file in one `write` (how cgroup files take values); returns
/// the problem, or nil.
func writeFile(_ path: String, _ value: String) -> String? {
    let descriptor = open(path, O_WRONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return describe(errno: errno) }
    defer { close(descriptor) }
    let bytes = Array(value.utf8)
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    return written == bytes.count ? nil : describe(errno: errno)
}

/// Lists a directory's subdirectories.
func subdirectories(of path: String) -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
        if name == "." || name == ".." { continue }
        if isDirectory("\(path)/\(name)") { names.append(name) }
    }
    return names
}
