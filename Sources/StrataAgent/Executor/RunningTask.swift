import Glibc
import Logging
import Synchronization

/// A task the executor started: its main process (the task's command, or `runc run` for a
/// container), its cgroup and, for a container, runc's record of it.
///
/// A dedicated thread waits for the main process to exit (never a thread of Swift's pool). When
/// it has, that thread reads the memory cgroup (limit, peak, OOM kills), deletes the runc
/// container and kills whatever else is left in the cgroup; the task has then ended
/// (`waitUntilEnded`): none of its processes is left, so what it held is free. The thread then
/// removes the cgroup, and only then publishes the outcome (`wait`): a task whose outcome is
/// known has left nothing behind on the host except its sandbox.
public final class RunningTask: Sendable {
    public let taskId: String
    /// The task's main process: the command itself for a process (the executor's `sh` and
    /// `setpriv` exec into it), `runc run` for a container.
    public let pid: Int32

    let cgroup: TaskCgroup
    let container: RuncContainer?
    let requestedMemoryMB: Double
    let logger: Logger
    private let state = Mutex(State())
    private let onEnd: @Sendable (RunningTask) -> Void

    private struct State {
        /// Set (under the lock) before the main process is reaped: from then on its pid may be
        /// reused, and nothing may signal it.
        var exitObserved = false
        var killRequested = false
        /// The outcome once the task has ended and its cgroup is gone (`wait`).
        var done = OutcomeLatch()
        /// The outcome once no process of the task is left, before its cgroup is removed
        /// (`waitUntilEnded`).
        var ended = OutcomeLatch()
        /// The write end of a held task's gate (`TaskLaunch.heldUntilReleased`) until it is
        /// released or the task ends.
        var gate: Int32?
    }

    init(
        taskId: String, pid: Int32, cgroup: TaskCgroup, container: RuncContainer?, requestedMemoryMB: Double,
        gate: Int32? = nil, logger: Logger, onEnd: @escaping @Sendable (RunningTask) -> Void
    ) {
        self.taskId = taskId
        self.pid = pid
        self.cgroup = cgroup
        self.container = container
        self.requestedMemoryMB = requestedMemoryMB
        self.logger = logger
        self.onEnd = onEnd
        state.withLock { $0.gate = gate }
    }

    /// Lets a held task's command start: its shell, waiting in its cgroups, reads "go" and execs
    /// it. Returns false when there is nothing to release (not held, released already, killed
    /// or ended): the command then never starts from here.
    @discardableResult
    public func release() -> Bool {
        let gate = state.withLock { state -> Int32? in
            guard !state.killRequested, !state.exitObserved else { return nil }
            defer { state.gate = nil }
            return state.gate
        }
        guard let gate else { return false }
        let go = Array("go\n".utf8)
        var written = 0
        while written < go.count {
            let count = go[written...].withUnsafeBytes { Glibc.write(gate, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            written += count
        }
        Glibc.close(gate)
        return written == go.count
    }

    /// Whether the task is still waiting to be released.
    public var isHeld: Bool { state.withLock { $0.gate != nil } }

    /// An outcome published once, and the callers waiting for it.
    struct OutcomeLatch {
        var outcome: TaskOutcome?
        var waiters: [CheckedContinuation<TaskOutcome, Never>] = []

        /// Sets the outcome and returns the waiters to resume with it (outside the lock).
        mutating func publish(_ outcome: TaskOutcome) -> [CheckedContinuation<TaskOutcome, Never>] {
            self.outcome = outcome
            defer { waiters = [] }
            return waiters
        }
    }

    /// The outcome, once the task has ended and been cleaned up; nil while it runs.
    public var outcome: TaskOutcome? { state.withLock { $0.done.outcome } }

    /// Waits for the task to end and be cleaned up. Any number of callers may wait; all get the
    /// same outcome. Cancelling the caller does not end the wait: kill the task for that.
    public func wait() async -> TaskOutcome {
        await wait(for: \.done)
    }

    /// Waits until no process of the task is left, and returns its outcome: what `wait` returns,
    /// but before the cgroup is removed. What the task held is free from here; an agent reports
    /// the end then, and waits for `wait` before it forgets the task.
    public func waitUntilEnded() async -> TaskOutcome {
        await wait(for: \.ended)
    }

    private func wait(for latch: WritableKeyPath<State, OutcomeLatch>) async -> TaskOutcome {
        await withCheckedContinuation { continuation in
            let published = state.withLock { state -> TaskOutcome? in
                if let outcome = state[keyPath: latch].outcome { return outcome }
                state[keyPath: latch].waiters.append(continuation)
                return nil
            }
            if let published { continuation.resume(returning: published) }
        }
    }

    /// Kills the task: SIGTERM to every process in its cgroup (`runc kill TERM` to a container's
    /// first process), then, after `gracePeriodMs`, SIGKILL to everything in the cgroup (again
    /// every half second, should the first not end it). Returns once the task has ended and
    /// been cleaned up; its outcome is `.killed`, unless it had already ended by itself.
    ///
    /// A container's first process is pid 1 of its namespace, which ignores SIGTERM unless it
    /// handles it: such a container ends at the SIGKILL.
    public func kill(gracePeriodMs: Int64 = 3000) async {
        let (stillRunning, gate) = state.withLock { state -> (Bool, Int32?) in
            // A held task's gate closes unopened: its shell exits without starting the command.
            defer { state.gate = nil }
            guard state.done.outcome == nil, !state.exitObserved else { return (false, state.gate) }
            state.killRequested = true
            return (true, state.gate)
        }
        if let gate { Glibc.close(gate) }
        guard stillRunning else {
            _ = await wait()
            return
        }
        logger.info("killing task", metadata: ["task": "\(taskId)", "grace-ms": "\(gracePeriodMs)"])
        await terminate()
        let escalation = Task { [self] in
            if gracePeriodMs > 0 {
                do { try await Task.sleep(for: .milliseconds(gracePeriodMs)) } catch { return }
            }
            while !Task.isCancelled {
                await forceKill()
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        _ = await wait()
        escalation.cancel()
    }

    /// Waits until runc has made the container (its pid file appears) or has exited. runc
    /// offers no event for this, so the file is looked for every few milliseconds, for at most
    /// 30 seconds; a container that takes longer is reported started and killed like any other.
    func waitUntilContainerStarts() async {
        guard let container else { return }
        for _ in 0..<6000 {
            if fileExists(container.pidFile) || state.withLock({ $0.exitObserved }) { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
        logger.warning("runc has not made the container after 30 seconds", metadata: ["task": "\(taskId)"])
    }

    private func terminate() async {
        if let container {
            _ = await container.runc(["kill", container.id, "TERM"])
        } else {
            signalMainProcess(SIGTERM)
            cgroup.signalEverything(SIGTERM)
        }
    }

    private func forceKill() async {
        if let container {
            _ = await container.runc(["kill", "--all", container.id, "KILL"])
            if !cgroup.exists {
                // runc has not made the container's cgroup yet: stop runc itself; the watcher
                // then deletes whatever of the container it had made.
                signalMainProcess(SIGKILL)
            }
        } else {
            signalMainProcess(SIGKILL)
        }
        _ = cgroup.killEverythingOnce()
    }

    /// Signals the main process unless it has exited (its pid could then be someone else's).
    private func signalMainProcess(_ signal: Int32) {
        state.withLock { state in
            if !state.exitObserved { _ = Glibc.kill(pid, signal) }
        }
    }

    // MARK: The watcher thread

    /// Starts the thread that waits for the main process and cleans up after it.
    func startWatching() -> Bool {
        DedicatedThread.start { [self] in watch() }
    }

    private func watch() {
        if let problem = ChildProcess.waitForExitWithoutReaping(pid) {
            logger.error("cannot wait for task", metadata: ["task": "\(taskId)", "error": "\(describe(errno: problem))"])
        }
        state.withLock { $0.exitObserved = true }
        let exit = ChildProcess.reap(pid)
        let memory = cgroup.memoryReport()
        let containerStarted = container.map { fileExists($0.pidFile) } ?? true

        if let container {
            let deletion = container.runcBlocking(["delete", "--force", container.id])
            if deletion.exit != .exited(0) {
                logger.warning(
                    "runc delete failed", metadata: ["task": "\(taskId)", "output": "\(trimmed(deletion.output))"])
            }
            container.removeBundle()
        }
        if !cgroup.killEverythingBlocking() {
            logger.error("processes of an ended task would not die", metadata: ["task": "\(taskId)"])
        }

        let killRequested = state.withLock { $0.killRequested }
        var outcome = TaskOutcome.decide(
            exit: exit, killRequested: killRequested, memory: memory, requestedMemoryMB: requestedMemoryMB)
        if !containerStarted, outcome.state == .failed {
            // runc gave up before the container's first process existed; it said why on stderr.
            outcome.reason = TaskOutcome.Reason.containerLaunchFailed
            outcome.message = "runc could not start the container (\(outcome.message)); see the sandbox's stderr"
        }
        for waiter in state.withLock({ $0.ended.publish(outcome) }) { waiter.resume(returning: outcome) }

        let stuck = cgroup.removeBlocking()
        if !stuck.isEmpty {
            logger.error("cannot remove an ended task's cgroup", metadata: ["task": "\(taskId)", "cgroups": "\(stuck)"])
        }
        logger.info(
            "task ended",
            metadata: ["task": "\(taskId)", "state": "\(outcome.state.rawValue)", "message": "\(outcome.message)"])
        finish(outcome)
    }

    private func finish(_ outcome: TaskOutcome) {
        let (waiters, gate) = state.withLock { state in
            defer { state.gate = nil }
            return (state.done.publish(outcome), state.gate)
        }
        if let gate { Glibc.close(gate) }
        onEnd(self)
        for waiter in waiters { waiter.resume(returning: outcome) }
    }
}

/// A task's runc container: how to reach runc about it, and its bundle.
struct RuncContainer: Sendable {
    var runcPath: String
    /// runc's `--root`: where it keeps its state, one directory per container.
    var stateRoot: String
    var id: String
    var bundleDirectory: String

    func runc(_ arguments: [String]) async -> (exit: ChildExit, output: String) {
        await ChildProcess.run(runcPath, ["--root", stateRoot] + arguments)
    }

    func runcBlocking(_ arguments: [String]) -> (exit: ChildExit, output: String) {
        ChildProcess.runBlocking(runcPath, ["--root", stateRoot] + arguments)
    }

    /// runc writes the container's first pid here once the container is made (`--pid-file`).
    var pidFile: String { "\(bundleDirectory)/pid" }

    func removeBundle() {
        unlink(pidFile)
        // runc writes the pid file as `.pid` first and renames it; a runc killed between the two
        // leaves that.
        unlink("\(bundleDirectory)/.pid")
        unlink("\(bundleDirectory)/config.json")
        rmdir(bundleDirectory)
    }
}
