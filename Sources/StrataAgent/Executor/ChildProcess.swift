import Glibc

/// Starting child processes with `posix_spawn`, and waiting for them on threads of their own.
///
/// Waiting for a child is a blocking `waitid`, so it never happens on Swift's cooperative pool
/// or an event loop: every child the executor waits for has a dedicated thread that blocks in
/// `waitid` and then hands the status on. Children are waited for by pid, never with
/// `waitpid(-1)`, so children started by other code in the process are left to it.
enum ChildProcess {
    struct Request {
        var executable: String
        /// argv, `arguments[0]` included.
        var arguments: [String]
        /// `NAME=value` entries: the child's whole environment.
        var environment: [String]
        var workingDirectory: String?
        var standardInput: Int32
        var standardOutput: Int32
        var standardError: Int32
        /// Given to the child as descriptor 3 (how the task's shell says it has joined its
        /// cgroups).
        var descriptor3: Int32? = nil
        /// Given to the child as descriptor 4 (the gate a held task's shell waits on); only
        /// with `descriptor3`.
        var descriptor4: Int32? = nil
    }

    /// `posix_spawn`s the request. The child starts a session of its own (so signals meant for
    /// the agent's terminal or process group do not reach it), with every signal at its default
    /// action and none blocked (the agent ignores SIGPIPE; tasks must not), and with no
    /// descriptor but 0, 1, 2 (and 3 when the request gives one).
    static func spawn(_ request: Request) throws(LaunchError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, request.standardInput, 0)
        posix_spawn_file_actions_adddup2(&actions, request.standardOutput, 1)
        posix_spawn_file_actions_adddup2(&actions, request.standardError, 2)
        if let descriptor3 = request.descriptor3 {
            posix_spawn_file_actions_adddup2(&actions, descriptor3, 3)
        }
        if let descriptor4 = request.descriptor4 {
            precondition(request.descriptor3 != nil, "descriptor 4 is given with descriptor 3")
            posix_spawn_file_actions_adddup2(&actions, descriptor4, 4)
        }
        if let closeFrom = GNUSpawn.addCloseFrom {
            _ = closeFrom(&actions, request.descriptor4 != nil ? 5 : request.descriptor3 != nil ? 4 : 3)
        }
        if let directory = request.workingDirectory {
            guard let addChdir = GNUSpawn.addChdir else {
                throw .launchFailed("this C library has no posix_spawn_file_actions_addchdir_np (glibc 2.29 or later needed)")
            }
            let status = directory.withCString { addChdir(&actions, $0) }
            guard status == 0 else { throw .launchFailed("cannot set working directory \(directory): \(describe(errno: status))") }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        sigdelset(&everySignal, SIGKILL)
        sigdelset(&everySignal, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | GNUSpawn.setSessionFlag))

        var pid: pid_t = 0
        let status = withCStrings(request.arguments) { argv in
            withCStrings(request.environment) { envp in
                posix_spawn(&pid, request.executable, &actions, &attributes, argv, envp)
            }
        }
        guard status == 0 else {
            throw .launchFailed("cannot start \(request.executable): \(describe(errno: status))")
        }
        return pid
    }

    /// Blocks the calling thread until `pid` has exited, without reaping it, so that its pid is
    /// not reused while the caller still signals it.
    static func waitForExitWithoutReaping(_ pid: pid_t) -> Int32? {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            guard errno == EINTR else { return errno }
        }
        return nil
    }

    /// Reaps `pid`, which has exited.
    static func reap(_ pid: pid_t) -> ChildExit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return .unknown(describe(errno: errno)) }
        }
        return ChildExit(waitStatus: status)
    }

    /// Runs a helper (runc's subcommands) to its end on the calling thread and returns how it
    /// ended and what it wrote (stdout and stderr together, at most 64 KiB). Only for dedicated
    /// threads.
    static func runBlocking(_ executable: String, _ arguments: [String]) -> (exit: ChildExit, output: String) {
        var pipeDescriptors: [Int32] = [-1, -1]
        guard makePipe(&pipeDescriptors) else { return (.unknown("pipe: \(describe(errno: errno))"), "") }
        let nullInput = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if nullInput >= 0 { close(nullInput) } }
        let request = Request(
            executable: executable, arguments: [executable] + arguments, environment: ["PATH=\(defaultPath)"],
            workingDirectory: nil, standardInput: nullInput, standardOutput: pipeDescriptors[1],
            standardError: pipeDescriptors[1])
        let pid: pid_t
        do {
            pid = try spawn(request)
        } catch {
            close(pipeDescriptors[0])
            close(pipeDescriptors[1])
            return (.unknown(error.message), "")
        }
        close(pipeDescriptors[1])
        let output = readToEndBlocking(pipeDescriptors[0])
        let exit = reap(pid)
        return (exit, String(decoding: output, as: UTF8.self))
    }

    /// A pipe whose ends close on exec. Swift's Glibc has no pipe2: a child spawned between the
    /// two calls still does not keep the pipe open, since every child closes all descriptors
    /// but the ones it is given.
    static func makePipe(_ descriptors: inout [Int32]) -> Bool {
        guard pipe(&descriptors) == 0 else { return false }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// Reads until end of file (at most 64 KiB are kept) and closes the descriptor, blocking
    /// the calling thread.
    static func readToEndBlocking(_ descriptor: Int32) -> [UInt8] {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            if output.count < 65536 { output.append(contentsOf: buffer[0..<count]) }
        }
        close(descriptor)
        return output
    }

    /// `readToEndBlocking` on a dedicated thread, for async callers.
    static func readToEnd(_ descriptor: Int32) async -> [UInt8] {
        await withCheckedContinuation { continuation in
            let started = DedicatedThread.start { continuation.resume(returning: readToEndBlocking(descriptor)) }
            if !started {
                close(descriptor)
                continuation.resume(returning: [])
            }
        }
    }

    /// `runBlocking` on a dedicated thread, for async callers.
    static func run(_ executable: String, _ arguments: [String]) async -> (exit: ChildExit, output: String) {
        await withCheckedContinuation { continuation in
            let started = DedicatedThread.start {
                continuation.resume(returning: runBlocking(executable, arguments))
            }
            if !started {
                continuation.resume(returning: (.unknown("no thread to run \(executable) on"), ""))
            }
        }
    }

    /// The system directories, for tasks and helpers whose environment has no `PATH`.
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// A detached thread for one blocking job (waiting for a child, running a helper to its end).
/// Small stacks: these threads only wait, read cgroup files and spawn.
enum DedicatedThread {
    private final class Job {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Runs `body` on a new thread and returns what it returns.
    static func run<Value: Sendable>(
        _ body: @escaping @Sendable () throws(LaunchError) -> Value
    ) async throws(LaunchError) -> Value {
        let result: Result<Value, LaunchError> = await withCheckedContinuation { continuation in
            let started = start { continuation.resume(returning: Result(catching: body)) }
            if !started { continuation.resume(returning: .failure(.launchFailed("no thread to launch the task on"))) }
        }
        return try result.get()
    }

    /// Starts `body` on a new thread; false when the system has no thread to give.
    static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 512 * 1024)
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { argument in
            let job = Unmanaged<Job>.fromOpaque(argument!).takeRetainedValue()
            job.body()
            return nil
        }, job)
        if status != 0 {
            Unmanaged<Job>.fromOpaque(job).release()
            return false
        }
        return true
    }
}

/// glibc's spawn extensions, which Swift's Glibc module leaves out (they need _GNU_SOURCE):
/// looked up by name so that no C shim is needed.
private enum GNUSpawn {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// `POSIX_SPAWN_SETSID` (glibc 2.26).
    static let setSessionFlag: Int32 = 0x80

    /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29).
    static let addChdir: AddChdir? = symbol("posix_spawn_file_actions_addchdir_np")
    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34). Without it, descriptors the
    /// process opened without O_CLOEXEC would reach the task.
    static let addCloseFrom: AddCloseFrom? = symbol("posix_spawn_file_actions_addclosefrom_np")

    private static func symbol<Function>(_ name: String) -> Function? {
        guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, name) else { return nil }
        return unsafeBitCast(address, to: Function.self)
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<Result>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> Result) -> Result {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}

func describe(errno number: Int32) -> String {
    String(cString: strerror(number))
}
