import StrataCore
@testable import StrataCron
import Testing

/// A cron state with a pretend shell and master behind it, on clocks that move only when told.
///
/// The shell logs each outcome's records, then performs its actions on the pretend master:
/// a start creates a task (a second start of the same run and attempt is recorded as a double
/// start), a kill ends the task as killed and reports it. With `crashAfterRecords`, the
/// service dies the moment its log holds that many records: the rest of the outcome is lost and
/// its actions never happen. The next event restarts it: the log is replayed into a fresh
/// state, `recover` runs, and its `reconcile` actions are answered from the master's tasks, as
/// the real shell answers them.
struct CronHarness {
    enum TaskState: Equatable {
        case running
        case ended(CronRunOutcome)
    }

    struct Task {
        var runId: RunId
        var attempt: Int
        var state: TaskState
        var startedAtMs: Int64
        var reported = false
    }

    var state: CronState
    var now = MonotonicInstant.milliseconds(5_000)
    var wallTimeMs: Int64
    var log: [CronRecord] = []
    /// The master's tasks, by task id.
    var tasks: [String: Task] = [:]
    /// Task ids started more than once: must stay empty.
    var doubleStarts: [String] = []
    var crashAfterRecords: Int?
    var isDown = false
    var restarts = 0
    /// Attempts started again after a restart because the master never had them.
    var relaunches = 0
    /// End reports waiting to reach the service.
    var reports: [(runId: RunId, attempt: Int, outcome: CronRunOutcome)] = []

    init(at time: String, retryDelayMilliseconds: Int64 = 60_000, submitAheadMilliseconds: Int64 = 0, disableAfterFailures: Int64 = 0) {
        wallTimeMs = instant(time)
        state = CronState(
            failureRetryDelayMilliseconds: retryDelayMilliseconds, submitAheadMilliseconds: submitAheadMilliseconds,
            disableAfterFailures: disableAfterFailures)
    }

    /// A state with the same settings as this one's, and nothing else.
    func emptyState() -> CronState {
        CronState(
            failureRetryDelayMilliseconds: state.failureRetryDelayMilliseconds, submitAheadMilliseconds: state.submitAheadMilliseconds,
            disableAfterFailures: state.disableAfterFailures)
    }

    mutating func advance(seconds: Int64) {
        now = now.advanced(byMilliseconds: seconds * 1000)
        wallTimeMs += seconds * 1000
    }

    mutating func advance(to time: String) {
        advance(seconds: (instant(time) - wallTimeMs) / 1000)
        #expect(wallTimeMs == instant(time))
    }

    // MARK: - The shell

    /// Logs an outcome's records, then performs its actions (unless the service dies first).
    mutating func absorb(_ outcome: CronState.Outcome) {
        guard !isDown else { return }
        for record in outcome.records {
            log.append(record)
            if let limit = crashAfterRecords, log.count == limit {
                isDown = true
                crashAfterRecords = nil
                return
            }
        }
        for action in outcome.actions {
            switch action {
            case .start(let runId, let attempt, _, _):
                let taskId = CronState.taskId(runId, attempt: attempt)
                if tasks[taskId] != nil { doubleStarts.append(taskId) }
                tasks[taskId] = Task(runId: runId, attempt: attempt, state: .running, startedAtMs: wallTimeMs)
            case .kill(let runId, let attempt):
                let taskId = CronState.taskId(runId, attempt: attempt)
                if tasks[taskId]?.state == .running {
                    tasks[taskId]?.state = .ended(.killed)
                    reports.append((runId, attempt, .killed))
                }
            case .reconcile(let runId, let attempt, _):
                switch tasks[CronState.taskId(runId, attempt: attempt)]?.state {
                case nil: absorbLater(.notLaunched(runId, attempt))
                case .running: break
                case .ended(let outcome): reports.append((runId, attempt, outcome))
                }
            }
        }
    }

    private enum Deferred {
        case notLaunched(RunId, Int)
    }

    private var deferred: [Deferred] = []

    private mutating func absorbLater(_ work: Deferred) {
        deferred.append(work)
    }

    /// Absorbs a result that must succeed.
    mutating func absorb(_ result: Result<CronState.Outcome, CronError>, sourceLocation: SourceLocation = #_sourceLocation) {
        switch result {
        case .success(let outcome): absorb(outcome)
        case .failure(let error): Issue.record("refused: \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Restarts a dead service: replay, recover, answer its reconciles.
    mutating func ensureUp() {
        guard isDown else { return }
        isDown = false
        restarts += 1
        state = emptyState()
        for record in log { state.apply(record, now: now) }
        absorb(state.recover(now: now, wallTimeMs: wallTimeMs))
        settle()
    }

    /// Delivers end reports and deferred answers until none is left.
    mutating func settle() {
        while !isDown, !reports.isEmpty || !deferred.isEmpty {
            if !deferred.isEmpty {
                let work = deferred.removeFirst()
                switch work {
                case .notLaunched(let runId, let attempt):
                    relaunches += 1
                    absorb(state.runNotLaunched(runId, attempt: attempt, now: now, wallTimeMs: wallTimeMs))
                }
                continue
            }
            let report = reports.removeFirst()
            let taskId = CronState.taskId(report.runId, attempt: report.attempt)
            absorb(state.runEnded(report.runId, attempt: report.attempt, outcome: report.outcome, agentId: "agent-1", now: now, wallTimeMs: wallTimeMs))
            if !isDown { tasks[taskId]?.reported = true }
        }
        if isDown { deferred.removeAll() }
    }

    // MARK: - Events

    mutating func put(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) {
        ensureUp()
        let job: CronJob
        do {
            job = try CronJob.parse(Array(json.utf8), nowMs: wallTimeMs)
        } catch {
            Issue.record("refused: \(error)", sourceLocation: sourceLocation)
            return
        }
        absorb(state.put(job, now: now, wallTimeMs: wallTimeMs), sourceLocation: sourceLocation)
        settle()
    }

    mutating func tick() {
        ensureUp()
        absorb(state.tick(now: now, wallTimeMs: wallTimeMs))
        settle()
    }

    mutating func run(_ event: (inout CronState, MonotonicInstant, Int64) -> Result<CronState.Outcome, CronError>, sourceLocation: SourceLocation = #_sourceLocation) {
        ensureUp()
        absorb(event(&state, now, wallTimeMs), sourceLocation: sourceLocation)
        settle()
    }

    /// Ends a running task on the master and reports it (reports to a dead service are lost;
    /// its restart asks the master).
    mutating func end(_ runId: RunId, attempt: Int, _ outcome: CronRunOutcome) {
        let taskId = CronState.taskId(runId, attempt: attempt)
        guard tasks[taskId]?.state == .running else { return }
        tasks[taskId]?.state = .ended(outcome)
        ensureUp()
        reports.append((runId, attempt, outcome))
        settle()
    }

    // MARK: - Looking

    /// Tasks of a job, by scheduled time then attempt.
    func tasks(of jobName: String) -> [Task] {
        tasks.values.filter { $0.runId.jobName == jobName }.sorted { ($0.runId, $0.attempt) < ($1.runId, $1.attempt) }
    }

    func running(_ jobName: String) -> [Task] {
        tasks(of: jobName).filter { $0.state == .running }
    }

    /// The run ids of a job's first attempts, as UTC times.
    func firstAttempts(of jobName: String) -> [String] {
        tasks(of: jobName).filter { $0.attempt == 0 }.map { utc($0.runId.scheduledMs) }
    }

    func stats(_ jobName: String) -> CronJobStats {
        state.statuses[jobName]?.stats ?? CronJobStats()
    }

    /// A fresh state built from the log alone.
    func replayed() -> CronState {
        var fresh = emptyState()
        for record in log { fresh.apply(record, now: now) }
        return fresh
    }
}

func job(_ json: String, nowMs: Int64 = instant("2025-01-01T00:00:00Z")) -> CronJob {
    try! CronJob.parse(Array(json.utf8), nowMs: nowMs)
}

func runId(_ name: String, _ time: String) -> RunId {
    RunId(jobName: name, scheduledMs: instant(time))
}
