/// A change to the master's durable state, as logged on the DFS (`/system/master/`) and replayed
/// on start. Applying the records of a log in order to an empty state gives the state the
/// master had when it wrote the last of them.
public enum MasterRecord: Sendable, Hashable, Codable {
    /// A job was accepted, with its splits (made from the input's blocks at submission).
    case submitted(JobSpec, [InputSplit])
    /// An attempt was placed on an agent (logged before the agent is told to launch it).
    case launched(TaskAttempt)
    /// An attempt changed state, as its agent (or the master, for LOST) said.
    case updated(TaskUpdate)
    /// A job ended: finished (its `_SUCCESS` written), failed or killed.
    case jobEnded(jobId: String, state: JobState, message: String?, atMs: Int64)
    /// A kill of a job was asked for: its pending tasks are dropped and its running ones killed.
    case killRequested(jobId: String, atMs: Int64)
}

/// A change of an attempt's state.
public struct TaskUpdate: Sendable, Hashable, Codable {
    public var taskId: String
    public var state: TaskState
    public var atMs: Int64
    public var exitCode: Int32?
    public var reason: String?
    public var message: String?
    public var bytesReadLocal: UInt64?
    public var bytesReadRemote: UInt64?
    public var stderrTail: String?
    public var healthy: Bool?

    public init(_ status: TaskStatus, atMs: Int64) {
        self.taskId = status.taskId
        self.state = status.state
        self.atMs = atMs
        self.exitCode = status.exitCode
        self.reason = status.reason
        self.message = status.message
        self.bytesReadLocal = status.bytesReadLocal
        self.bytesReadRemote = status.bytesReadRemote
        self.stderrTail = status.stderrTail
        self.healthy = status.healthy
    }
}
