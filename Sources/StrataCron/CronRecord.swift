/// What the cron service logs on the DFS before it acts: every durable change of `CronState`
/// is one of these, applied by `CronState.apply(_:now:)`, live and when the log is replayed
/// after a restart. Times (`atMs`) are wall times, in milliseconds since the Unix epoch.
public enum CronRecord: Sendable, Hashable, Codable {
    /// A new job. Runs scheduled at or before `atMs - 1` are never started or counted.
    case jobAdded(CronJob, atMs: Int64)
    /// A job's new definition. A changed schedule (or time zone), a scheduled job that was a
    /// dependent one, or a job that was disabled and no longer is, starts counting from
    /// `atMs`, as a new job does.
    case jobUpdated(CronJob, atMs: Int64)
    /// A job removed, with its statistics and history; its runs still in flight end on their own
    /// (their kills are recorded before).
    case jobRemoved(name: String, atMs: Int64)
    /// Attempt `attempt` of a run started (0: a new run; more: a retry of the same run). A
    /// scheduled run's start marks its scheduled time handled.
    case runStarted(RunId, attempt: Int, kind: CronRunKind, arguments: String?, atMs: Int64)
    /// Attempt `attempt` of a run ended; with `willRetry`, attempt `attempt + 1` follows after the
    /// retry delay, else the run is over and counted.
    case runEnded(RunId, attempt: Int, outcome: CronRunOutcome, willRetry: Bool, agentId: String?, message: String?, atMs: Int64)
    /// A kill of the run's task was asked for: it is not retried.
    case killRequested(RunId, atMs: Int64)
    /// `count` scheduled runs of a job were missed (the earliest, at most
    /// `CronLimits.maximumMissedRunsListed`, listed); every scheduled time up to
    /// `handledThroughMs` is handled.
    case runsMissed(jobName: String, scheduledMs: [Int64], count: Int64, handledThroughMs: Int64, atMs: Int64)
    /// A due run was not started because another run of its job was in flight (`Forbid`).
    case runSkipped(RunId, kind: CronRunKind, atMs: Int64)
    /// The job was suspended (`disabled` set): no scheduled or dependent runs start.
    case suspended(name: String, atMs: Int64)
    /// The job was resumed: runs scheduled while it was suspended are not started, nor counted
    /// as missed.
    case resumed(name: String, atMs: Int64)
    /// The job was marked successful by hand (Chronos' `PUT job/success/{name}`): counted as a
    /// success at `atMs`, for its counts and for its dependent jobs, with no run.
    case markedSucceeded(name: String, atMs: Int64)
    /// The whole state at a moment, as a snapshot of the log holds it: the jobs, their
    /// statuses (counts, marks, kept history) and the runs in flight.
    case restored(CronStateSnapshot)
}

/// What a snapshot of the cron service's log holds (`CronState.snapshotRecords`).
public struct CronStateSnapshot: Sendable, Hashable, Codable {
    public var jobs: [String: CronJob]
    public var statuses: [String: CronJobStatus]
    public var runs: [CronRun]
}
