import StrataCompute

/// How a task ended, in the terms the master and Marathon use.
public struct TaskOutcome: Sendable, Hashable, Codable {
    /// `.finished` for exit status 0, `.killed` when the agent killed it, `.failed` otherwise.
    public var state: TaskState
    /// The exit status, when the task exited. For a container it is runc's, which is 128 + n
    /// when the container's first process died of signal n.
    public var exitCode: Int32?
    /// The signal that ended the task's main process, when one did.
    public var signal: Int32?
    /// Mesos' reason (`REASON_CONTAINER_LIMITATION_MEMORY`, `REASON_COMMAND_EXECUTOR_FAILED`,
    /// `REASON_TASK_KILLED`); nil for a finished task.
    public var reason: String?
    /// For people: "exited with status 2", "killed by signal 9",
    /// "Memory limit exceeded: requested 64 MB, peak 64 MB".
    public var message: String

    public init(state: TaskState, exitCode: Int32? = nil, signal: Int32? = nil, reason: String? = nil, message: String) {
        self.state = state
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.message = message
    }

    /// Mesos' names for why a task ended or did not start.
    public enum Reason {
        public static let containerLimitationMemory = "REASON_CONTAINER_LIMITATION_MEMORY"
        public static let commandExecutorFailed = "REASON_COMMAND_EXECUTOR_FAILED"
        public static let containerLaunchFailed = "REASON_CONTAINER_LAUNCH_FAILED"
        public static let taskKilled = "REASON_TASK_KILLED"
        public static let taskInvalid = "REASON_TASK_INVALID"
    }
}

/// How a child process ended, as `waitpid` tells it.
enum ChildExit: Sendable, Hashable {
    case exited(Int32)
    case signaled(Int32)
    /// The status could not be collected (someone else reaped the child).
    case unknown(String)

    /// Decodes a `waitpid` status word (the `WIFEXITED` / `WTERMSIG` macros, which Swift does not
    /// import).
    init(waitStatus status: Int32) {
        if status & 0x7F == 0 {
            self = .exited((status >> 8) & 0xFF)
        } else {
            self = .signaled(status & 0x7F)
        }
    }
}

/// What a task's memory cgroup recorded, read after its main process ended and before the
/// cgroup is removed.
struct MemoryReport: Sendable, Hashable {
    /// The limit the cgroup had; nil when the task asked for no memory limit.
    var limitBytes: Int64?
    /// The most the cgroup used (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    var peakBytes: Int64?
    /// How many processes the kernel's OOM killer killed in the cgroup (v1 `memory.oom_control`
    /// `oom_kill`, v2 `memory.events` `oom_kill`); nil on kernels that do not count them.
    var oomKillCount: Int?
    /// How often the limit was hit (v1 `memory.failcnt`, v2 `memory.events` `max`).
    var limitHitCount: Int?

    /// Whether the kernel killed part of the task for going over its limit. Where the kernel
    /// does not count OOM kills (v1 before Linux 4.13), a main process killed by SIGKILL in a
    /// cgroup that hit its limit counts as one.
    func exceededLimit(given exit: ChildExit, sigkill: Int32 = 9) -> Bool {
        guard limitBytes != nil else { return false }
        if let oomKillCount { return oomKillCount > 0 }
        return exit == .signaled(sigkill) && (limitHitCount ?? 0) > 0
    }
}

extension TaskOutcome {
    /// The outcome of a task whose main process ended with `exit`. A kill the agent asked for
    /// wins over everything (Marathon asked for it); then a memory limit the kernel enforced,
    /// whatever the exit status (the process that died may not be the main one); then the exit
    /// status. `requestedMemoryMB` is what the task asked for, as the message reports it.
    static func decide(
        exit: ChildExit, killRequested: Bool, memory: MemoryReport?, requestedMemoryMB: Double
    ) -> TaskOutcome {
        let exitCode: Int32?
        let signal: Int32?
        let ending: String
        switch exit {
        case .exited(let code):
            (exitCode, signal, ending) = (code, nil, "exited with status \(code)")
        case .signaled(let number):
            (exitCode, signal, ending) = (nil, number, "killed by signal \(number)")
        case .unknown(let why):
            (exitCode, signal, ending) = (nil, nil, "ended, status unknown: \(why)")
        }
        if killRequested {
            return TaskOutcome(
                state: .killed, exitCode: exitCode, signal: signal, reason: Reason.taskKilled,
                message: "killed on request (\(ending))")
        }
        if let memory, memory.exceededLimit(given: exit) {
            let peak = memory.peakBytes.map { "\(megabytes($0)) MB" } ?? "unknown"
            return TaskOutcome(
                state: .failed, exitCode: exitCode, signal: signal, reason: Reason.containerLimitationMemory,
                message: "Memory limit exceeded: requested \(format(requestedMemoryMB)) MB, peak \(peak)")
        }
        if exit == .exited(0) {
            return TaskOutcome(state: .finished, exitCode: 0, message: ending)
        }
        return TaskOutcome(
            state: .failed, exitCode: exitCode, signal: signal, reason: Reason.commandExecutorFailed, message: ending)
    }

    private static func megabytes(_ bytes: Int64) -> String {
        format(Double(bytes) / 1_048_576)
    }

    /// Whole megabytes without a fraction; otherwise one decimal.
    private static func format(_ value: Double) -> String {
        let tenths = (value * 10).rounded() / 10
        return tenths == tenths.rounded() ? String(Int64(tenths)) : String(tenths)
    }
}
