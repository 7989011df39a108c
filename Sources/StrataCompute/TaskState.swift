/// A task's state, as Mesos names them (`TASK_RUNNING` in JSON).
public enum TaskState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Placed on an agent; the launch is on its way.
    case staging = "TASK_STAGING"
    /// The agent is preparing it (sandbox, input, container).
    case starting = "TASK_STARTING"
    case running = "TASK_RUNNING"
    /// Exited with status 0.
    case finished = "TASK_FINISHED"
    /// Exited otherwise, or could not be started.
    case failed = "TASK_FAILED"
    /// Killed on request.
    case killed = "TASK_KILLED"
    /// Its agent was lost; the task's owner runs it again.
    case lost = "TASK_LOST"

    public var isTerminal: Bool {
        switch self {
        case .staging, .starting, .running: false
        case .finished, .failed, .killed, .lost: true
        }
    }

    /// The name without Mesos' prefix, for listings (`RUNNING`).
    public var shortName: String { String(rawValue.dropFirst("TASK_".count)) }
}
