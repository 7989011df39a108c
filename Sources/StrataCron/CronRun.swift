/// Why a run was started.
public enum CronRunKind: String, Sendable, Hashable, Codable {
    /// Its job's schedule came due (the run id's time is the scheduled time).
    case scheduled
    /// Someone asked for it (`PUT /v1/scheduler/job/{name}`, `strata cron run`).
    case manual
    /// All of its job's parents succeeded since the job's last run.
    case dependent
}

/// How an attempt of a run ended, as the shell learns it from the master.
public enum CronRunOutcome: String, Sendable, Hashable, Codable {
    /// The task finished with exit status 0.
    case succeeded
    /// The task failed (non-zero exit status, or could not start).
    case failed
    /// The task was killed (by `task/kill`, a `Replace`, or the job's removal).
    case killed
    /// The task was lost with its agent.
    case lost
}

/// A run in flight: started and not yet ended for good (an attempt is running, or a failed
/// attempt waits for its retry).
public struct CronRun: Sendable, Hashable, Codable {
    public enum State: String, Sendable, Hashable, Codable {
        /// Attempt `attempt` was started (its task may not be running yet).
        case running
        /// Attempt `attempt` failed; attempt `attempt + 1` starts once the retry delay is over.
        case waitingToRetry
    }

    public let id: RunId
    public var kind: CronRunKind
    /// The current (or last failed) attempt: 0 for the first, up to the job's `retries`.
    public var attempt: Int
    public var state: State
    /// Whether a kill was asked for: a run being killed is not retried.
    public var isBeingKilled = false
    /// A manual run's `arguments` (Chronos' query parameter, appended to the command).
    public var arguments: String?
    /// Wall time the first attempt started.
    public var startedAtMs: Int64
    /// Wall time the current attempt started.
    public var attemptStartedAtMs: Int64
    /// Wall time its kill was asked for, if it was.
    public var killRequestedAtMs: Int64?

    public var jobName: String { id.jobName }

    /// Whether it is a scheduled run submitted ahead of its time and killed (its job suspended,
    /// removed or its runs killed) before that time came: it never started, and its end counts
    /// as not run (`cancelled`), not as a failure.
    public var wasCancelledBeforeItsTime: Bool {
        guard kind == .scheduled, let killRequestedAtMs else { return false }
        return killRequestedAtMs < id.scheduledMs
    }
}

/// One run as `history` lists it: a finished run, or a scheduled time that was missed or
/// skipped.
public struct CronHistoryEntry: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable {
        case succeeded, failed, killed, lost
        /// Too late for epsilon (or beyond the catch-up bound), never started.
        case missed
        /// Due while another run was in flight and the job's policy is `Forbid`.
        case skipped
        /// Submitted ahead of its time and killed before that time (its job suspended, removed
        /// or its runs killed): never started.
        case cancelled
    }

    public var runId: RunId
    public var status: Status
    /// `nil` for a missed run.
    public var kind: CronRunKind?
    /// Attempts made (0 for a missed or skipped run).
    public var attempts: Int
    public var startedAtMs: Int64?
    /// When the run ended, or was recorded missed or skipped.
    public var endedAtMs: Int64
    /// The agent the last attempt ran on, when the shell knew it.
    public var agentId: String?
    /// What the shell reported with the end (an exit status, a reason).
    public var message: String?

    public init(
        runId: RunId, status: Status, kind: CronRunKind?, attempts: Int, startedAtMs: Int64?, endedAtMs: Int64, agentId: String? = nil,
        message: String? = nil
    ) {
        self.runId = runId
        self.status = status
        self.kind = kind
        self.attempts = attempts
        self.startedAtMs = startedAtMs
        self.endedAtMs = endedAtMs
        self.agentId = agentId
        self.message = message
    }
}

/// A job's run statistics, as Chronos reports them in the job JSON, plus Strata's counts of
/// missed and skipped runs.
public struct CronJobStats: Sendable, Hashable, Codable {
    public var successCount: Int64 = 0
    /// Runs that failed for good (out of retries); killed runs do not count, as in Chronos.
    public var errorCount: Int64 = 0
    public var errorsSinceLastSuccess: Int64 = 0
    public var lastSuccessMs: Int64?
    public var lastErrorMs: Int64?
    public var missedCount: Int64 = 0
    public var skippedCount: Int64 = 0

    public init() {}

    /// A success at `atMs` (a run's, or one marked by hand): counted, and the failures since the
    /// last success start again from none.
    mutating func countSuccess(atMs: Int64) {
        successCount += 1
        errorsSinceLastSuccess = 0
        lastSuccessMs = atMs
    }

    /// Chronos' graph/csv "last state": `fresh` before any run ended, else whichever of
    /// success and failure came last (`Exporter.getLastState`).
    public var lastState: String {
        switch (lastSuccessMs, lastErrorMs) {
        case (nil, nil): "fresh"
        case (nil, .some): "failure"
        case (.some, nil): "success"
        case (.some(let success), .some(let error)): success > error ? "success" : "failure"
        }
    }
}

/// What `CronState` keeps per job besides its definition: statistics, history, and the marks
/// that keep runs from starting twice.
public struct CronJobStatus: Sendable, Hashable, Codable {
    public var stats = CronJobStats()
    /// Every scheduled time up to this one has been handled (started, missed or skipped): the
    /// mark `Schedule.runsDue` takes.
    public var handledThroughMs: Int64
    /// The latest time in any run id of this job: manual and dependent runs take later ones.
    public var lastRunIdMs: Int64
    /// For a dependent job: the parents that succeeded since the job's last run started.
    public var succeededParents: Set<String> = []
    /// The latest successful runs, oldest first, at most `successfulHistoryLimit`.
    public var succeeded: [CronHistoryEntry] = []
    /// The latest failed, killed or lost runs, oldest first, at most `failedHistoryLimit`.
    public var failed: [CronHistoryEntry] = []
    /// The latest missed or skipped scheduled times, oldest first, at most `failedHistoryLimit`.
    public var notRun: [CronHistoryEntry] = []

    public init(handledThroughMs: Int64) {
        self.handledThroughMs = handledThroughMs
        self.lastRunIdMs = handledThroughMs
    }

    /// The history `strata cron history` shows: every kept entry, latest first.
    public var history: [CronHistoryEntry] {
        (succeeded + failed + notRun).sorted { ($0.endedAtMs, $0.runId) > ($1.endedAtMs, $1.runId) }
    }
}
