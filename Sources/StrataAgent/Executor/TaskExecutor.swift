import Glibc
import Logging
import StrataCompute
import Synchronization

/// Runs an agent's tasks: each as a process in cgroups of its own, or as an OCI container
/// with runc, as the user the task names, with its CPU shares and memory limit enforced by the
/// kernel (Mesos' `cgroups/cpu,cgroups/mem` isolation and its command executor, in one).
///
/// Every task has a cgroup `<hierarchy>/<cgroupParent>/<taskId>` in each hierarchy (cpu,
/// cpuacct, memory, pids, freezer on cgroup v1; the unified one on v2). A process task joins
/// it before its command starts: the executor spawns `/bin/sh`, which writes its own pid to the
/// cgroups' `cgroup.procs` and then execs `setpriv` (which switches to the task's user) which
/// execs the command, so nothing of the command ever runs outside the cgroups or as root (a
/// task that runs as the agent's own user and groups execs its command without `setpriv`). A
/// task held until released (`TaskLaunch.heldUntilReleased`) waits, in its cgroups, for the
/// executor's "go" before that exec. runc puts a container's processes in the same place itself.
///
/// How nothing is left behind:
/// - a task's main process is waited for on a dedicated thread; when it exits, that thread
///   kills whatever else is in the task's cgroup, deletes its runc container and removes the
///   cgroup before the task's outcome is published (`RunningTask`);
/// - `RunningTask.kill` and `killAll` end tasks on request (SIGTERM, SIGKILL after a grace);
/// - tasks do not die with the agent (as in Mesos, an agent restart does not stop its tasks),
///   but the cgroup records every one of them: a new executor's `leftoverTaskIds` lists what an
///   earlier agent left running, and `killLeftovers` ends it and removes its cgroup and container.
public final class TaskExecutor: Sendable {
    /// The cgroup (relative to each hierarchy's root) every task's cgroup is made under.
    public let cgroupParent: String
    public let allowRootTasks: Bool
    let logger: Logger
    let hierarchies: CgroupHierarchies
    /// runc's `--root` for this executor's containers.
    let runcStateRoot: String
    /// Where the containers' OCI bundles (`<taskId>/config.json`) are written.
    let bundleRoot: String
    private let registry = Mutex(Registry())

    private struct Registry {
        var running: [String: RunningTask] = [:]
        /// Task ids being launched, so that one id cannot be launched twice at once.
        var starting: Set<String> = []
    }

    /// - Parameters:
    ///   - cgroupParent: tasks' cgroups go under `<hierarchy>/<cgroupParent>/<taskId>`.
    ///   - allowRootTasks: whether a task may run as uid 0.
    ///   - stateDirectory: runc's state and the containers' bundles go under
    ///     `<stateDirectory>/<cgroupParent>/`, so that executors with different parents do not
    ///     see each other's containers.
    public init(cgroupParent: String = "strata", allowRootTasks: Bool, logger: Logger, stateDirectory: String = "/run/strata") {
        let parent = cgroupParent.split(separator: "/").joined(separator: "/")
        precondition(!parent.isEmpty && !parent.split(separator: "/").contains(".."), "cgroup parent '\(cgroupParent)' is not a relative path")
        self.cgroupParent = parent
        self.allowRootTasks = allowRootTasks
        self.logger = logger
        self.hierarchies = CgroupHierarchies.detect()
        let ownState = "\(stateDirectory)/\(parent.replacing("/", with: "_"))"
        self.runcStateRoot = "\(ownState)/runc"
        self.bundleRoot = "\(ownState)/bundles"
    }

    // MARK: Launching

    /// Starts a task. Returns once its process is started (it joins its cgroups before its
    /// command runs), or, for a container, once runc has made it: its first process is in its
    /// cgroup (or runc has given up; the task's outcome then says so).
    ///
    /// Throws, leaving nothing behind, when the task cannot start: an invalid task id or one
    /// already running here, an unknown user, root when root is not allowed, a command not on
    /// the PATH (or not in the container's root filesystem), a bad root filesystem, or a cgroup
    /// or file the host would not make.
    public func launch(_ launch: TaskLaunch) async throws(LaunchError) -> RunningTask {
        try Self.validate(taskId: launch.taskId)
        guard let command = launch.arguments.first, !command.isEmpty else {
            throw .invalid("task \(launch.taskId) has no command")
        }
        guard !launch.heldUntilReleased || launch.container == nil else {
            throw .invalid("task \(launch.taskId): only a process task can be held until released, not a container")
        }
        try reserve(launch.taskId)
        do throws(LaunchError) {
            // User lookups (NSS, maybe over the network), file creation and spawning block:
            // they run on a thread of their own.
            let (task, joined) = try await DedicatedThread.run { () throws(LaunchError) in
                try self.spawnTask(launch, command: command)
            }
            if let joined {
                if await ChildProcess.readToEnd(joined) != Array("joined\n".utf8) {
                    // The shell ended (or was killed) before its command could start in its cgroups.
                    let outcome = await task.wait()
                    throw LaunchError.launchFailed(
                        "task \(launch.taskId) could not join its cgroups (\(outcome.message)); see the sandbox's stderr")
                }
            } else {
                await task.waitUntilContainerStarts()
            }
            logger.info(
                "task started",
                metadata: [
                    "task": "\(launch.taskId)", "pid": "\(task.pid)", "user": "\(launch.user)",
                    "container": "\(launch.container?.rootFilesystem ?? "none")", "resources": "\(launch.resources)",
                ])
            return task
        } catch {
            _ = registry.withLock { $0.starting.remove(launch.taskId) }
            throw error
        }
    }

    private func reserve(_ taskId: String) throws(LaunchError) {
        let reserved = registry.withLock { registry in
            guard registry.running[taskId] == nil, !registry.starting.contains(taskId) else { return false }
            registry.starting.insert(taskId)
            return true
        }
        guard reserved else { throw .invalid("task \(taskId) is already running on this agent") }
    }

    /// Checks the user, makes the task's files, cgroups or bundle, spawns it and starts its
    /// watcher. Returns the task and, for a process, the pipe its shell writes "joined" to once
    /// it is in its cgroups. On a dedicated thread.
    private func spawnTask(_ launch: TaskLaunch, command: String) throws(LaunchError) -> (RunningTask, Int32?) {
        guard let user = HostUser.lookUp(launch.user) else {
            throw .invalid("user '\(launch.user)' does not exist on this agent's host")
        }
        if user.uid == 0, !allowRootTasks {
            throw .invalid(
                "task \(launch.taskId) would run as root (user '\(launch.user)'), which this agent does not allow (--allow-root-tasks)")
        }
        guard isDirectory(launch.sandbox) else {
            throw .launchFailed("sandbox \(launch.sandbox) of task \(launch.taskId) is not a directory")
        }
        var environment = launch.environment
        if environment["PATH"] == nil { environment["PATH"] = ChildProcess.defaultPath }
        let environmentList = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }

        let cgroup = TaskCgroup(hierarchies: hierarchies, parent: cgroupParent, taskId: launch.taskId)
        var request: ChildProcess.Request
        let container: RuncContainer?
        let files = try StandardFiles.open(launch, owner: user)
        defer { files.close() }

        if let spec = launch.container {
            let prepared = try prepareContainer(
                launch, spec: spec, command: command, user: user, environment: environmentList, cgroup: cgroup)
            container = prepared
            request = ChildProcess.Request(
                executable: prepared.runcPath,
                arguments: [
                    "runc", "--root", prepared.stateRoot, "run", "--keep", "--bundle", prepared.bundleDirectory,
                    "--pid-file", prepared.pidFile, prepared.id,
                ],
                environment: ["PATH=\(ChildProcess.defaultPath)"], workingDirectory: prepared.bundleDirectory,
                standardInput: files.input, standardOutput: files.output, standardError: files.error)
        } else {
            guard Self.findOnHost(command, path: environment["PATH"]!, relativeTo: launch.sandbox) != nil else {
                throw .commandNotFound("command '\(command)' not found (PATH=\(environment["PATH"]!))")
            }
            guard let setpriv = Self.firstExecutable(["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]) else {
                throw .launchFailed("setpriv (util-linux) is not installed on this agent's host")
            }
            try cgroup.create(resources: launch.resources)
            container = nil
            // sh joins the cgroups, says so on descriptor 3 (and closes it), then becomes setpriv,
            // which becomes the command: the command starts inside its cgroups, as its user.
            // argv[0] stays as given; setpriv looks it up on the task's PATH.
            // A held task's shell then waits on descriptor 4 for the agent's "go": anything else
            // (the agent gone, the gate closed) ends it before the command ever runs.
            let waitForGate = launch.heldUntilReleased
                ? #"read -r gate <&4 || exit 125; exec 4<&-; [ "$gate" = go ] || exit 125; "# : ""
            let joinCgroups = """
                for procs do shift; [ "$procs" = -- ] && break; \
                echo $$ > "$procs" || { echo "strata: cannot join cgroup $procs" >&2; exit 125; }; done; \
                echo joined >&3; exec 3>&-; \(waitForGate)exec "$@"
                """
            // A task that runs as the agent's own user and groups has nothing to switch: its shell
            // execs the command itself, one program fewer to start (what a burst of short tasks
            // run as root spends its time on).
            let switchUser = Self.runsAsThisProcess(user)
                ? [] : [setpriv, "--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups", "--"]
            request = ChildProcess.Request(
                executable: "/bin/sh",
                arguments: ["sh", "-c", joinCgroups, "strata-task"] + cgroup.processFiles + ["--"] + switchUser + launch.arguments,
                environment: environmentList, workingDirectory: launch.sandbox,
                standardInput: files.input, standardOutput: files.output, standardError: files.error)
        }

        var joinedPipe: [Int32] = [-1, -1]
        var gatePipe: [Int32] = [-1, -1]
        if container == nil {
            guard ChildProcess.makePipe(&joinedPipe), !launch.heldUntilReleased || ChildProcess.makePipe(&gatePipe) else {
                let problem = describe(errno: errno)
                for descriptor in joinedPipe + gatePipe where descriptor >= 0 { close(descriptor) }
                _ = cgroup.removeOnce()
                throw .launchFailed("cannot make a pipe: \(problem)")
            }
            request.descriptor3 = joinedPipe[1]
            if launch.heldUntilReleased { request.descriptor4 = gatePipe[0] }
        }
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(request)
        } catch {
            for descriptor in joinedPipe + gatePipe where descriptor >= 0 { close(descriptor) }
            _ = cgroup.removeOnce()
            container?.removeBundle()
            throw error
        }
        if joinedPipe[1] >= 0 { close(joinedPipe[1]) }
        if gatePipe[0] >= 0 { close(gatePipe[0]) }
        let task = RunningTask(
            taskId: launch.taskId, pid: pid, cgroup: cgroup, container: container,
            requestedMemoryMB: launch.resources.memMB, gate: gatePipe[1] >= 0 ? gatePipe[1] : nil, logger: logger,
            onEnd: { [weak self] task in self?.forget(task) })
        // Registered before anything can end it, so that its end always unregisters it.
        registry.withLock { registry in
            registry.starting.remove(launch.taskId)
            registry.running[launch.taskId] = task
        }
        guard task.startWatching() else {
            forget(task)
            if joinedPipe[0] >= 0 { close(joinedPipe[0]) }
            // No thread to wait on: undo the launch here (a SIGKILLed child is gone at once).
            _ = Glibc.kill(pid, SIGKILL)
            _ = ChildProcess.reap(pid)
            if let container { _ = container.runcBlocking(["delete", "--force", container.id]) }
            _ = cgroup.killEverythingOnce()
            _ = cgroup.removeOnce()
            container?.removeBundle()
            throw .launchFailed("no thread to wait for task \(launch.taskId) on")
        }
        return (task, container == nil ? joinedPipe[0] : nil)
    }

    /// Checks the root filesystem and the command in it, and writes the container's bundle.
    private func prepareContainer(
        _ launch: TaskLaunch, spec: ContainerSpec, command: String, user: HostUser, environment: [String],
        cgroup: TaskCgroup
    ) throws(LaunchError) -> RuncContainer {
        guard isDirectory(spec.rootFilesystem), let rootFilesystem = realPath(spec.rootFilesystem) else {
            throw .launchFailed("root filesystem \(spec.rootFilesystem) of task \(launch.taskId) is not a directory")
        }
        let path = launch.environment["PATH"] ?? ChildProcess.defaultPath
        guard Self.findInRootFilesystem(command, rootFilesystem: rootFilesystem, path: path) else {
            throw .commandNotFound("command '\(command)' not found in the root filesystem \(spec.rootFilesystem) (PATH=\(path))")
        }
        guard let runcPath = Self.firstExecutable(["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc", "/sbin/runc"]) else {
            throw .launchFailed("runc is not installed on this agent's host")
        }
        if fileExists("\(runcStateRoot)/\(launch.taskId)") {
            throw .launchFailed("task \(launch.taskId) already has a runc container here, left over from an earlier run")
        }
        if !cgroup.pids().isEmpty {
            throw .launchFailed("cgroup \(cgroup.relativePath) already has processes in it (left over from an earlier run?)")
        }
        let container = RuncContainer(
            runcPath: runcPath, stateRoot: runcStateRoot, id: launch.taskId,
            bundleDirectory: "\(bundleRoot)/\(launch.taskId)")
        let configuration = OCIConfiguration.make(
            launch: launch, user: user, rootFilesystem: rootFilesystem, environment: environment,
            cgroupPath: cgroup.relativePath, hostname: Self.hostname(), swapAccounting: swapAccounting)
        if let problem = makeDirectories(runcStateRoot, mode: 0o700) ?? makeDirectories(container.bundleDirectory, mode: 0o700) {
            throw .launchFailed("cannot make runc's directories: \(problem)")
        }
        if let problem = writeNewFile("\(container.bundleDirectory)/config.json", configuration.json()) {
            container.removeBundle()
            throw .launchFailed("cannot write the bundle of task \(launch.taskId): \(problem)")
        }
        return container
    }

    /// Whether memory and swap can be limited together (runc is then given `memory.swap`).
    private var swapAccounting: Bool {
        switch hierarchies.version {
        case .v1: hierarchies.memory.map { fileExists("\($0)/memory.memsw.limit_in_bytes") } ?? false
        case .v2: fileExists("\(CgroupHierarchies.root)/\(cgroupParent)/memory.swap.max")
        }
    }

    private func forget(_ task: RunningTask) {
        registry.withLock { registry in
            if registry.running[task.taskId] === task { registry.running[task.taskId] = nil }
        }
    }

    // MARK: Running tasks

    /// The task with this id, while it runs.
    public func runningTask(_ taskId: String) -> RunningTask? {
        registry.withLock { $0.running[taskId] }
    }

    /// Kills every task this executor started and is still running, all at once (an agent's
    /// shutdown when its tasks must not outlive it). Returns when all have ended.
    public func killAll(gracePeriodMs: Int64 = 3000) async {
        let tasks = registry.withLock { Array($0.running.values) }
        await withTaskGroup(of: Void.self) { group in
            for task in tasks { group.addTask { await task.kill(gracePeriodMs: gracePeriodMs) } }
        }
    }

    // MARK: Leftovers

    /// Task ids with a cgroup or a runc container under `cgroupParent` that this executor did not
    /// start: what an earlier run of the agent left running.
    public func leftoverTaskIds() -> [String] {
        var ids: Set<String> = []
        for mountPoint in hierarchies.mountPoints {
            ids.formUnion(subdirectories(of: "\(mountPoint)/\(cgroupParent)"))
        }
        ids.formUnion(subdirectories(of: runcStateRoot))
        // A bundle without a container: the agent stopped while runc was creating it.
        ids.formUnion(subdirectories(of: bundleRoot))
        let ours = registry.withLock { Set($0.running.keys).union($0.starting) }
        return ids.subtracting(ours).filter { (try? Self.validate(taskId: $0)) != nil }.sorted()
    }

    /// Kills whatever is left of a task: its runc container (killed and deleted), every process
    /// in its cgroup, and the cgroup itself. For a task this executor runs, the same as
    /// `kill(gracePeriodMs: 0)`.
    public func killLeftovers(taskId: String) async {
        if let task = runningTask(taskId) {
            await task.kill(gracePeriodMs: 0)
            return
        }
        guard (try? Self.validate(taskId: taskId)) != nil else {
            logger.warning("not a task id; nothing killed", metadata: ["task": "\(taskId)"])
            return
        }
        if fileExists("\(runcStateRoot)/\(taskId)"),
           let runcPath = Self.firstExecutable(["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc", "/sbin/runc"])
        {
            let container = RuncContainer(
                runcPath: runcPath, stateRoot: runcStateRoot, id: taskId, bundleDirectory: "\(bundleRoot)/\(taskId)")
            _ = await container.runc(["kill", "--all", taskId, "KILL"])
            let deletion = await container.runc(["delete", "--force", taskId])
            if deletion.exit != .exited(0) {
                logger.warning("runc delete failed", metadata: ["task": "\(taskId)", "output": "\(trimmed(deletion.output))"])
            }
        }
        RuncContainer(runcPath: "", stateRoot: runcStateRoot, id: taskId, bundleDirectory: "\(bundleRoot)/\(taskId)")
            .removeBundle()
        let cgroup = TaskCgroup(hierarchies: hierarchies, parent: cgroupParent, taskId: taskId)
        let emptied = await cgroup.killEverything()
        let stuck = await cgroup.remove()
        if !emptied || !stuck.isEmpty {
            logger.error("a leftover task would not go away", metadata: ["task": "\(taskId)", "cgroups": "\(stuck)"])
        } else {
            logger.info("killed a leftover task", metadata: ["task": "\(taskId)"])
        }
    }

    /// Removes `cgroupParent` from every hierarchy where it is empty, and this executor's runc
    /// state directories (an agent that stops for good, or a test). Directories that still hold
    /// a task stay. Returns whether everything went.
    @discardableResult
    public func removeParentCgroupIfUnused() -> Bool {
        var removedAll = true
        let roots: [String]
        switch hierarchies.version {
        case .v2: roots = [CgroupHierarchies.root]
        // runc makes the parent in every hierarchy, not only those tasks join.
        case .v1: roots = subdirectories(of: CgroupHierarchies.root).map { "\(CgroupHierarchies.root)/\($0)" }
        }
        for root in roots {
            var components = cgroupParent.split(separator: "/")
            while !components.isEmpty {
                if rmdir("\(root)/\(components.joined(separator: "/"))") != 0, errno != ENOENT { break }
                components.removeLast()
            }
            if fileExists("\(root)/\(cgroupParent)") { removedAll = false }
        }
        for directory in [bundleRoot, runcStateRoot, String(runcStateRoot.dropLast("/runc".count))] {
            if rmdir(directory) != 0, errno != ENOENT { removedAll = false }
        }
        return removedAll
    }

    // MARK: Helpers

    /// A task id names a cgroup directory and a runc container: letters, digits, `_`, `.` and
    /// `-`, not starting with `.` or `-`, at most 200 characters.
    static func validate(taskId: String) throws(LaunchError) {
        let allowed = taskId.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x5F || byte == 0x2E || byte == 0x2D
        }
        guard allowed, let first = taskId.first, first != ".", first != "-", taskId.utf8.count <= 200 else {
            throw .invalid("task id '\(taskId)' is not letters, digits, '_', '.' and '-' (at most 200)")
        }
    }

    /// Where `command` is found on the host as `execvp` would find it, with the task's working
    /// directory `relativeTo` for relative paths.
    static func findOnHost(_ command: String, path: String, relativeTo directory: String) -> String? {
        func absolute(_ candidate: String) -> String {
            candidate.hasPrefix("/") ? candidate : "\(directory)/\(candidate)"
        }
        func runnable(_ candidate: String) -> Bool {
            access(candidate, X_OK) == 0 && !isDirectory(candidate)
        }
        if command.contains("/") {
            return runnable(absolute(command)) ? absolute(command) : nil
        }
        for entry in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = absolute(entry.isEmpty ? command : "\(entry)/\(command)")
            if runnable(candidate) { return candidate }
        }
        return nil
    }

    /// Whether `command` is in the root filesystem, as runc would look for it: by name on the
    /// container's PATH, or as a path from its root. Entries are checked without following
    /// symbolic links, which point within the image (`/bin/sh -> busybox`), not the host.
    static func findInRootFilesystem(_ command: String, rootFilesystem: String, path: String) -> Bool {
        func present(_ inside: String) -> Bool {
            var information = stat()
            return lstat("\(rootFilesystem)/\(inside)", &information) == 0 && information.st_mode & S_IFMT != S_IFDIR
        }
        if command.contains("/") { return present(command) }
        return path.split(separator: ":").contains { present("\($0)/\(command)") }
    }

    /// Whether `user` is who this process already is: its real and effective uid and gid, and
    /// (with the primary group) the same groups `setpriv --init-groups` would give.
    static func runsAsThisProcess(_ user: HostUser) -> Bool {
        guard user.uid == getuid(), user.uid == geteuid(), user.gid == getgid(), user.gid == getegid() else { return false }
        let count = getgroups(0, nil)
        guard count >= 0 else { return false }
        var groups = [gid_t](repeating: 0, count: Int(count))
        guard getgroups(count, &groups) == count else { return false }
        return Set(groups).union([getgid()]) == Set(user.groups).union([user.gid])
    }

    static func firstExecutable(_ candidates: [String]) -> String? {
        candidates.first { access($0, X_OK) == 0 }
    }

    static func hostname() -> String {
        var name = [UInt8](repeating: 0, count: 256)
        let status = name.withUnsafeMutableBytes { gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), 255) }
        guard status == 0 else { return "localhost" }
        return String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// The task's standard input, output and error, opened by the agent before the task starts.
struct StandardFiles {
    var input: Int32
    var output: Int32
    var error: Int32

    /// Duplicates the stdin descriptor, or opens the stdin file (or /dev/null), and creates the
    /// sandbox's `stdout` and `stderr`, owned by the task's user so that the task can reopen them.
    static func open(_ launch: TaskLaunch, owner: HostUser) throws(LaunchError) -> StandardFiles {
        let input: Int32
        if let descriptor = launch.standardInputDescriptor {
            input = fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
            guard input >= 0 else {
                throw .launchFailed("cannot duplicate standard input descriptor \(descriptor) of task \(launch.taskId): \(describe(errno: errno))")
            }
        } else {
            let inputPath = launch.standardInput ?? "/dev/null"
            input = Glibc.open(inputPath, O_RDONLY | O_CLOEXEC)
            guard input >= 0 else {
                throw .invalid("cannot open standard input \(inputPath) of task \(launch.taskId): \(describe(errno: errno))")
            }
        }
        var opened = [input]
        for name in ["stdout", "stderr"] {
            let path = "\(launch.sandbox)/\(name)"
            let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0, fchown(descriptor, owner.uid, owner.gid) == 0 else {
                let problem = describe(errno: errno)
                if descriptor >= 0 { Glibc.close(descriptor) }
                for other in opened { Glibc.close(other) }
                throw .launchFailed("cannot create \(path): \(problem)")
            }
            opened.append(descriptor)
        }
        return StandardFiles(input: opened[0], output: opened[1], error: opened[2])
    }

    func close() {
        for descriptor in [input, output, error] { Glibc.close(descriptor) }
    }
}

/// `mkdir -p`; returns the problem, or nil.
func makeDirectories(_ path: String, mode: mode_t) -> String? {
    var current = ""
    for component in path.split(separator: "/") {
        current += "/\(component)"
        if mkdir(current, mode) != 0, errno != EEXIST {
            return "\(current): \(describe(errno: errno))"
        }
    }
    return nil
}

/// Writes a new file (replacing any) with mode 0600; returns the problem, or nil.
func writeNewFile(_ path: String, _ bytes: [UInt8]) -> String? {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { return describe(errno: errno) }
    defer { close(descriptor) }
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        if count <= 0 { return describe(errno: errno) }
        written += count
    }
    return nil
}
