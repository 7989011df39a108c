import StrataCore

/// The cron service's decisions, as a value: events go in with `now:` (monotonic, for retry
/// delays) and `wallTimeMs:` (for schedules and what users read); records (to log durably on
/// the DFS first) and actions (for the shell to perform once they are durable) come out. The
/// same `apply` builds the state live and when the log is replayed after a restart.
///
/// The shell's loop:
/// - on a request: call `put`, `remove`, `runNow`, `kill`, `suspend` or `resume`; answer 400
///   with the `CronError`'s message on failure, else log the outcome's records, perform its
///   actions, answer 204 (then `tick`, so a job whose first run is now starts at once);
/// - on a timer (every second, or at `nextWakeWallTimeMs` / `nextRetryDeadline`): `tick`;
/// - when the master reports the end of a run's task: `runEnded`;
/// - after a restart: `apply` every logged record, then `recover`, and for each `reconcile`
///   action ask the master about the attempt's task: report its end with `runEnded`, or
///   `runNotLaunched` if the master never had it.
///
/// A run's id derives from its job's name and scheduled time (`RunId`), and each scheduled
/// time is handled once (the job's `handledThroughMs` mark moves past it in the same record
/// that starts, skips or misses it), so no replay or restart starts a scheduled run twice.
public struct CronState: Sendable {
    /// What the shell does after logging the outcome's records.
    public enum Action: Sendable, Hashable {
        /// Start attempt `attempt` of run `runId` as a task through the master, running `job`
        /// (the definition at the time; a manual run's `arguments` are appended to the command).
        /// The task's id is `CronState.taskId(runId, attempt:)`.
        case start(RunId, attempt: Int, job: CronJob, arguments: String?)
        /// Kill the task of attempt `attempt` of run `runId`; its end is then reported with
        /// `runEnded` (`killed`).
        case kill(RunId, attempt: Int)
        /// After a restart: ask the master about the task of attempt `attempt` of run `runId`.
        /// Still running: wait for its end as usual. Ended: report it with `runEnded`. Unknown
        /// to the master: report `runNotLaunched` (the service stopped between logging the start
        /// and asking the master), and the same attempt is started.
        case reconcile(RunId, attempt: Int, job: CronJob)
    }

    /// Records to make durable, then actions to perform, in that order.
    public struct Outcome: Sendable {
        public var records: [CronRecord] = []
        public var actions: [Action] = []
        public init() {}

        /// Adds another change's records and actions after these.
        public mutating func append(_ other: Outcome) {
            records += other.records
            actions += other.actions
        }
    }

    /// How long a failed attempt waits before it is tried again (Chronos' `--failure_retry`).
    public let failureRetryDelayMilliseconds: Int64

    public private(set) var jobs: [String: CronJob] = [:]
    public private(set) var statuses: [String: CronJobStatus] = [:]
    /// Runs in flight, by id.
    public private(set) var runs: [RunId: CronRun] = [:]

    // Not durable: rebuilt by `apply`.
    /// When each run waiting to retry starts its next attempt. After a restart a waiting run
    /// waits a whole delay again, from the time its record was replayed.
    public private(set) var retryDeadlines: [RunId: MonotonicInstant] = [:]
    private(set) var schedules: [String: Schedule] = [:]

    /// How long before its scheduled time a run of a job whose concurrency policy is `Allow`
    /// starts (is submitted to the master, which holds its task until the scheduled time), so
    /// that the master and agents have placed and prepared it when the time comes. Runs of
    /// `Forbid` and `Replace` jobs depend on what is in flight at the scheduled time and start
    /// then. 0: every run starts at its time.
    public let submitAheadMilliseconds: Int64

    /// Chronos' `--disable_after_failures`: a job whose runs have failed (out of retries) this
    /// many times since its last success is suspended; 0 (the default) never does that.
    public let disableAfterFailures: Int64

    public init(
        failureRetryDelayMilliseconds: Int64 = CronJobLimits.defaultFailureRetryDelayMilliseconds, submitAheadMilliseconds: Int64 = 0,
        disableAfterFailures: Int64 = 0
    ) {
        precondition(failureRetryDelayMilliseconds >= 0, "a retry delay is not negative")
        precondition(
            (0...CronLimits.maximumSubmitAheadMilliseconds).contains(submitAheadMilliseconds),
            "a lead time is 0 to \(CronLimits.maximumSubmitAheadMilliseconds) ms")
        self.failureRetryDelayMilliseconds = failureRetryDelayMilliseconds
        self.submitAheadMilliseconds = submitAheadMilliseconds
        self.disableAfterFailures = max(0, disableAfterFailures)
    }

    /// Whether runs of `job` start ahead of their scheduled time.
    public func submitsAhead(_ job: CronJob) -> Bool {
        submitAheadMilliseconds > 0 && job.concurrencyPolicy == .allow
    }

    /// The id the master's task of an attempt gets: the run id, `.`, the attempt
    /// (`nightly@20260309T073000Z.1`).
    public static func taskId(_ runId: RunId, attempt: Int) -> String {
        "\(runId).\(attempt)"
    }

    /// The runs of a job in flight, oldest first.
    public func runs(of jobName: String) -> [CronRun] {
        runs.values.filter { $0.jobName == jobName }.sorted { $0.id < $1.id }
    }

    /// The jobs whose `parents` name `jobName`, by name.
    public func children(of jobName: String) -> [CronJob] {
        jobs.values.filter { $0.parents.contains(jobName) }.sorted { $0.name < $1.name }
    }

    public func schedule(of jobName: String) -> Schedule? { schedules[jobName] }

    /// The state as records that rebuild it (one `restored`): what a snapshot of the log holds.
    public func snapshotRecords() -> [CronRecord] {
        [.restored(CronStateSnapshot(jobs: jobs, statuses: statuses, runs: runs.values.sorted { $0.id < $1.id }))]
    }

    // MARK: - Applying records

    /// Applies one record: the only way the durable state changes, live and on replay. `now`
    /// starts the retry delay of a failed attempt.
    public mutating func apply(_ record: CronRecord, now: MonotonicInstant) {
        switch record {
        case .jobAdded(let job, let atMs):
            jobs[job.name] = job
            schedules[job.name] = job.parsedSchedule
            statuses[job.name] = CronJobStatus(handledThroughMs: atMs - 1)
        case .jobUpdated(let job, let atMs):
            let previous = jobs[job.name]
            jobs[job.name] = job
            schedules[job.name] = job.parsedSchedule
            guard var status = statuses[job.name] else {
                statuses[job.name] = CronJobStatus(handledThroughMs: atMs - 1)
                return
            }
            let startsAfresh = previous.map {
                $0.schedule != job.schedule || $0.scheduleTimeZone != job.scheduleTimeZone || ($0.disabled && !job.disabled)
            } ?? true
            if startsAfresh { status.handledThroughMs = max(status.handledThroughMs, atMs - 1) }
            status.succeededParents.formIntersection(job.parents)
            Self.trim(&status, for: job)
            statuses[job.name] = status
        case .jobRemoved(let name, _):
            jobs[name] = nil
            schedules[name] = nil
            statuses[name] = nil
            for run in runs.values where run.jobName == name && run.state == .waitingToRetry {
                runs[run.id] = nil
                retryDeadlines[run.id] = nil
            }
        case .runStarted(let id, let attempt, let kind, let arguments, let atMs):
            // A scheduled run started ahead of its time starts its command at that time: that is
            // when it started, for history and durations.
            let startsAtMs = kind == .scheduled ? max(atMs, id.scheduledMs) : atMs
            let first = runs[id]?.startedAtMs ?? startsAtMs
            runs[id] = CronRun(
                id: id, kind: kind, attempt: attempt, state: .running, isBeingKilled: runs[id]?.isBeingKilled ?? false, arguments: arguments,
                startedAtMs: first, attemptStartedAtMs: startsAtMs)
            retryDeadlines[id] = nil
            guard var status = statuses[id.jobName] else { return }
            status.lastRunIdMs = max(status.lastRunIdMs, id.scheduledMs)
            if kind == .scheduled { status.handledThroughMs = max(status.handledThroughMs, id.scheduledMs) }
            // A dependent job waits for all its parents again from each new run (Chronos resets
            // its dependency counts when a task of the job starts).
            if attempt == 0 { status.succeededParents = [] }
            statuses[id.jobName] = status
        case .runEnded(let id, let attempt, let outcome, let willRetry, let agentId, let message, let atMs):
            guard var run = runs[id], run.attempt == attempt else { return }
            if willRetry {
                run.state = .waitingToRetry
                runs[id] = run
                retryDeadlines[id] = now.advanced(byMilliseconds: failureRetryDelayMilliseconds)
                return
            }
            runs[id] = nil
            retryDeadlines[id] = nil
            guard var status = statuses[id.jobName], let job = jobs[id.jobName] else { return }
            let entry = CronHistoryEntry(
                runId: id, status: CronHistoryEntry.Status(rawValue: outcome.rawValue)!, kind: run.kind, attempts: attempt + 1,
                startedAtMs: run.startedAtMs, endedAtMs: atMs, agentId: agentId, message: message)
            var countsForChildren = false
            switch outcome {
            case .succeeded:
                status.stats.countSuccess(atMs: atMs)
                status.succeeded.append(entry)
                countsForChildren = true
            case .failed, .lost:
                status.stats.errorCount += 1
                status.stats.errorsSinceLastSuccess += 1
                status.stats.lastErrorMs = atMs
                status.failed.append(entry)
                countsForChildren = job.softError
            case .killed where run.wasCancelledBeforeItsTime:
                var cancelled = entry
                cancelled.status = .cancelled
                cancelled.attempts = 0
                status.notRun.append(cancelled)
            case .killed:
                status.failed.append(entry)
            }
            Self.trim(&status, for: job)
            statuses[id.jobName] = status
            if countsForChildren { countForChildren(id.jobName) }
        case .killRequested(let id, let atMs):
            runs[id]?.isBeingKilled = true
            runs[id]?.killRequestedAtMs = atMs
        case .runsMissed(let name, let scheduledMs, let count, let handledThroughMs, let atMs):
            guard var status = statuses[name], let job = jobs[name] else { return }
            status.handledThroughMs = max(status.handledThroughMs, handledThroughMs)
            status.stats.missedCount += count
            for time in scheduledMs.suffix(job.failedHistoryLimit) where time >= 0 {
                status.notRun.append(CronHistoryEntry(
                    runId: RunId(jobName: name, scheduledMs: time), status: .missed, kind: nil, attempts: 0, startedAtMs: nil, endedAtMs: atMs))
            }
            Self.trim(&status, for: job)
            statuses[name] = status
        case .runSkipped(let id, let kind, let atMs):
            guard var status = statuses[id.jobName], let job = jobs[id.jobName] else { return }
            if kind == .scheduled { status.handledThroughMs = max(status.handledThroughMs, id.scheduledMs) }
            if kind == .dependent { status.succeededParents = [] }
            status.lastRunIdMs = max(status.lastRunIdMs, id.scheduledMs)
            status.stats.skippedCount += 1
            status.notRun.append(CronHistoryEntry(runId: id, status: .skipped, kind: kind, attempts: 0, startedAtMs: nil, endedAtMs: atMs))
            Self.trim(&status, for: job)
            statuses[id.jobName] = status
        case .suspended(let name, _):
            jobs[name]?.disabled = true
        case .markedSucceeded(let name, let atMs):
            guard statuses[name] != nil else { return }
            statuses[name]?.stats.countSuccess(atMs: atMs)
            countForChildren(name)
        case .restored(let snapshot):
            jobs = snapshot.jobs
            statuses = snapshot.statuses
            schedules = snapshot.jobs.compactMapValues(\.parsedSchedule)
            runs = Dictionary(snapshot.runs.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            // A run waiting to retry waits a whole delay again, as after a replay of its record.
            retryDeadlines = [:]
            for run in snapshot.runs where run.state == .waitingToRetry {
                retryDeadlines[run.id] = now.advanced(byMilliseconds: failureRetryDelayMilliseconds)
            }
        case .resumed(let name, let atMs):
            guard jobs[name] != nil else { return }
            jobs[name]?.disabled = false
            if let mark = statuses[name]?.handledThroughMs { statuses[name]?.handledThroughMs = max(mark, atMs - 1) }
        }
    }

    private static func trim(_ status: inout CronJobStatus, for job: CronJob) {
        if status.succeeded.count > job.successfulHistoryLimit { status.succeeded.removeFirst(status.succeeded.count - job.successfulHistoryLimit) }
        if status.failed.count > job.failedHistoryLimit { status.failed.removeFirst(status.failed.count - job.failedHistoryLimit) }
        if status.notRun.count > job.failedHistoryLimit { status.notRun.removeFirst(status.notRun.count - job.failedHistoryLimit) }
    }

    private mutating func record(_ record: CronRecord, now: MonotonicInstant, into outcome: inout Outcome) {
        apply(record, now: now)
        outcome.records.append(record)
    }

    // MARK: - Jobs

    /// Adds a job, or replaces the definition of the job of the same name (Chronos' `POST
    /// /v1/scheduler/iso8601` and `/dependency` do both). A dependent job's parents must all be
    /// jobs, and the dependency graph stays acyclic (a job cannot be its own ancestor).
    /// Statistics, history and runs in flight are kept across an update.
    public mutating func put(_ job: CronJob, now: MonotonicInstant, wallTimeMs: Int64) -> Result<Outcome, CronError> {
        for parent in job.parents where jobs[parent] == nil && parent != job.name {
            return .failure(CronError(.unknownParent, "parent \"\(parent)\" of job \"\(job.name)\" is not a job"))
        }
        if let cycle = cycle(through: job) {
            return .failure(CronError(.cycle, "job \"\(job.name)\" would make the dependencies cyclic: \(cycle.joined(separator: " -> "))"))
        }
        var outcome = Outcome()
        let record: CronRecord = jobs[job.name] == nil ? .jobAdded(job, atMs: wallTimeMs) : .jobUpdated(job, atMs: wallTimeMs)
        self.record(record, now: now, into: &outcome)
        return .success(outcome)
    }

    /// A path of parents from `job` back to itself if `job`'s parents would close a cycle, as
    /// `job -> child ... -> job` in the direction runs flow; nil if none.
    func cycle(through job: CronJob) -> [String]? {
        var parentsOf = jobs.mapValues(\.parents)
        parentsOf[job.name] = job.parents
        // Depth-first from the job up through its ancestors, looking for the job itself.
        var visited: Set<String> = []
        func search(_ name: String, path: [String]) -> [String]? {
            for parent in parentsOf[name] ?? [] {
                if parent == job.name { return path + [parent] }
                guard visited.insert(parent).inserted else { continue }
                if let found = search(parent, path: path + [parent]) { return found }
            }
            return nil
        }
        guard let upward = search(job.name, path: [job.name]) else { return nil }
        return upward.reversed()
    }

    /// Removes a job (`DELETE /v1/scheduler/job/{name}`): its runs in flight are killed, and its
    /// children, as in Chronos, take its place: when it is a dependent job they depend on its
    /// parents instead; when it is a scheduled job, a child that depended on it alone takes its
    /// schedule, and a child with other parents keeps those.
    public mutating func remove(_ name: String, now: MonotonicInstant, wallTimeMs: Int64) -> Result<Outcome, CronError> {
        guard let job = jobs[name] else { return .failure(Self.notFound(name)) }
        var outcome = Outcome()
        for child in children(of: name) {
            var updated = child
            updated.parents.removeAll { $0 == name }
            if job.isDependent {
                for parent in job.parents where !updated.parents.contains(parent) { updated.parents.append(parent) }
            } else if updated.parents.isEmpty {
                updated.schedule = job.schedule
                updated.scheduleTimeZone = job.scheduleTimeZone
            }
            record(.jobUpdated(updated, atMs: wallTimeMs), now: now, into: &outcome)
        }
        killRuns(of: name, now: now, wallTimeMs: wallTimeMs, into: &outcome)
        record(.jobRemoved(name: name, atMs: wallTimeMs), now: now, into: &outcome)
        return .success(outcome)
    }

    /// Suspends a job (Kubernetes' `suspend`; Chronos' `disabled`): no scheduled or dependent
    /// runs start until it is resumed. Runs in flight go on, except scheduled runs submitted
    /// ahead whose time has not come: they are killed and recorded as cancelled.
    public mutating func suspend(_ name: String, now: MonotonicInstant, wallTimeMs: Int64) -> Result<Outcome, CronError> {
        guard let job = jobs[name] else { return .failure(Self.notFound(name)) }
        var outcome = Outcome()
        if !job.disabled {
            for run in runs(of: name) where run.kind == .scheduled && run.id.scheduledMs > wallTimeMs && run.state == .running && !run.isBeingKilled {
                record(.killRequested(run.id, atMs: wallTimeMs), now: now, into: &outcome)
                outcome.actions.append(.kill(run.id, attempt: run.attempt))
            }
            record(.suspended(name: name, atMs: wallTimeMs), now: now, into: &outcome)
        }
        return .success(outcome)
    }

    /// Resumes a suspended job. Runs scheduled while it was suspended are neither started nor
    /// counted as missed (Chronos skips a re-enabled job's schedule forward); the next
    /// scheduled time after now runs.
    public mutating func resume(_ name: String, now: MonotonicInstant, wallTimeMs: Int64) -> Result<Outcome, CronError> {
        guard let job = jobs[name] else { return .failure(Self.notFound(name)) }
        var outcome = Outcome()
        if job.disabled { record(.resumed(name: name, atMs: wallTimeMs), now: now, into: &outcome) }
        return .success(outcome)
    }

    /// Marks a job successful without running it (Chronos' `PUT job/success/{name}`, for work
    /// done outside the scheduler): its success count and last success move, and its dependent
    /// jobs whose parents have now all succeeded start, as after a successful run.
    public mutating func markSucceeded(_ name: String, now: MonotonicInstant, wallTimeMs: Int64) -> Result<Outcome, CronError> {
        guard jobs[name] != nil else { return .failure(Self.notFound(name)) }
        var outcome = Outcome()
        record(.markedSucceeded(name: name, atMs: wallTimeMs), now: now, into: &outcome)
        startReadyChildren(of: name, now: now, wallTimeMs: wallTimeMs, into: &outcome)
        return .success(outcome)
    }

    /// `parent` succeeded, for each of its dependent jobs.
    private mutating func countForChildren(_ parent: String) {
        for child in children(of: parent) { statuses[child.name]?.succeededParents.insert(parent) }
    }

    public static func notFound(_ name: String) -> CronError {
        CronError(.jobNotFound, "Job '\(name)' not found")
    }

    // MARK: - Runs

    /// Starts a run now (`PUT /v1/scheduler/job/{name}`, `strata cron run`), even if the job is
    /// disabled. It gets a run id of its own: the wall time, or the first millisecond after the
    /// job's latest run id that is not one of its scheduled times. The job's concurrency policy
    /// holds: with `Forbid` and a run in flight it is refused (`runInFlight`); with `Replace`
    /// the runs in flight are killed.
    public mutating func runNow(_ name: String, arguments: String? = nil, now: MonotonicInstant, wallTimeMs: Int64) -> Result<Outcome, CronError> {
        guard let job = jobs[name] else { return .failure(Self.notFound(name)) }
        if job.concurrencyPolicy == .forbid, let running = runs(of: name).first {
            return .failure(CronError(.runInFlight, "job \"\(name)\" forbids concurrent runs and run \(running.id) is in flight"))
        }
        var outcome = Outcome()
        let trimmed = arguments.flatMap { $0.trimmingWhitespace().isEmpty ? nil : $0 }
        start(job, runId: freshRunId(for: job, wallTimeMs: wallTimeMs), kind: .manual, arguments: trimmed, now: now, wallTimeMs: wallTimeMs, into: &outcome)
        return .success(outcome)
    }

    /// Kills a job's runs in flight (`DELETE /v1/scheduler/task/kill/{name}`): running attempts
    /// are killed and not retried; a run waiting to retry ends at once, as killed.
    public mutating func kill(_ name: String, now: MonotonicInstant, wallTimeMs: Int64) -> Result<Outcome, CronError> {
        guard jobs[name] != nil else { return .failure(Self.notFound(name)) }
        var outcome = Outcome()
        killRuns(of: name, now: now, wallTimeMs: wallTimeMs, into: &outcome)
        return .success(outcome)
    }

    private mutating func killRuns(of name: String, now: MonotonicInstant, wallTimeMs: Int64, into outcome: inout Outcome) {
        for run in runs(of: name) {
            switch run.state {
            case .running where !run.isBeingKilled:
                record(.killRequested(run.id, atMs: wallTimeMs), now: now, into: &outcome)
                outcome.actions.append(.kill(run.id, attempt: run.attempt))
            case .running:
                break
            case .waitingToRetry:
                record(
                    .runEnded(run.id, attempt: run.attempt, outcome: .killed, willRetry: false, agentId: nil, message: "killed while waiting to retry", atMs: wallTimeMs),
                    now: now, into: &outcome)
            }
        }
    }

    /// The end of an attempt, as the master reports it. A failed or lost attempt is tried again
    /// (same run id, next attempt, after the retry delay) while attempts remain (`retries`) and
    /// no kill was asked for; otherwise the run is over: success and failure are counted, and
    /// each dependent job whose parents have now all succeeded since its last run starts. A
    /// report of an attempt that is not the one in flight (a duplicate) changes nothing.
    public mutating func runEnded(
        _ runId: RunId, attempt: Int, outcome reported: CronRunOutcome, agentId: String? = nil, message: String? = nil, now: MonotonicInstant,
        wallTimeMs: Int64
    ) -> Outcome {
        var outcome = Outcome()
        guard let run = runs[runId], run.attempt == attempt, run.state == .running else { return outcome }
        let job = jobs[runId.jobName]
        // A task asked to die may be reported failed (killed by a signal): it was killed.
        let result: CronRunOutcome = run.isBeingKilled && reported != .succeeded ? .killed : reported
        let failed = result == .failed || result == .lost
        let willRetry = failed && !run.isBeingKilled && attempt < (job?.retries ?? 0)
        record(
            .runEnded(runId, attempt: attempt, outcome: result, willRetry: willRetry, agentId: agentId, message: message, atMs: wallTimeMs),
            now: now, into: &outcome)
        if let job, !willRetry, result == .succeeded || (failed && job.softError) {
            startReadyChildren(of: job.name, now: now, wallTimeMs: wallTimeMs, into: &outcome)
        }
        if let job, failed, !willRetry, disableAfterFailures > 0, !job.disabled,
            (statuses[job.name]?.stats.errorsSinceLastSuccess ?? 0) >= disableAfterFailures
        {
            record(.suspended(name: job.name, atMs: wallTimeMs), now: now, into: &outcome)
        }
        return outcome
    }

    /// After `recover`'s `reconcile`: the master has no task for this attempt, so the service
    /// stopped between logging the start and asking the master. The same attempt starts (its
    /// start is already logged).
    public mutating func runNotLaunched(_ runId: RunId, attempt: Int, now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        guard let run = runs[runId], run.attempt == attempt, run.state == .running else { return outcome }
        guard let job = jobs[runId.jobName], !run.isBeingKilled else {
            record(
                .runEnded(runId, attempt: attempt, outcome: .killed, willRetry: false, agentId: nil, message: "never launched", atMs: wallTimeMs),
                now: now, into: &outcome)
            return outcome
        }
        outcome.actions.append(.start(runId, attempt: attempt, job: job, arguments: run.arguments))
        return outcome
    }

    /// The periodic pass: scheduled runs that are due start (or are skipped, or replace the
    /// runs in flight, as the job's concurrency policy says); runs overdue beyond epsilon (or
    /// `startingDeadlineSeconds`) are recorded as missed, as are overdue runs beyond the latest;
    /// failed attempts whose retry delay is over start again.
    public mutating func tick(now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        for name in jobs.keys.sorted() {
            guard let job = jobs[name], !job.disabled, let schedule = schedules[name], let status = statuses[name] else { continue }
            let decision = schedule.runsDue(handledThroughMs: status.handledThroughMs, nowMs: wallTimeMs, policy: job.catchUpPolicy)
            if decision.missedCount > 0 {
                let handled = decision.due.first.map { $0 - 1 } ?? decision.handledThroughMs
                record(
                    .runsMissed(jobName: name, scheduledMs: decision.missed, count: decision.missedCount, handledThroughMs: handled, atMs: wallTimeMs),
                    now: now, into: &outcome)
            }
            for scheduledMs in decision.due where scheduledMs >= 0 {
                start(job, runId: RunId(jobName: name, scheduledMs: scheduledMs), kind: .scheduled, arguments: nil, now: now, wallTimeMs: wallTimeMs, into: &outcome)
            }
            guard submitsAhead(job), let mark = statuses[name]?.handledThroughMs else { continue }
            // Runs due within the lead time start now, each held by the master until its time.
            var cursor = max(mark, wallTimeMs)
            for _ in 0..<CronLimits.maximumRunsSubmittedAheadPerTick {
                guard let next = schedule.nextFire(after: cursor), next <= wallTimeMs + submitAheadMilliseconds else { break }
                start(job, runId: RunId(jobName: name, scheduledMs: next), kind: .scheduled, arguments: nil, now: now, wallTimeMs: wallTimeMs, into: &outcome)
                cursor = next
            }
        }
        for (runId, deadline) in retryDeadlines.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) where deadline <= now {
            guard let run = runs[runId], run.state == .waitingToRetry else { continue }
            guard let job = jobs[runId.jobName] else {
                record(
                    .runEnded(runId, attempt: run.attempt, outcome: .killed, willRetry: false, agentId: nil, message: "job removed", atMs: wallTimeMs),
                    now: now, into: &outcome)
                continue
            }
            record(.runStarted(runId, attempt: run.attempt + 1, kind: run.kind, arguments: run.arguments, atMs: wallTimeMs), now: now, into: &outcome)
            outcome.actions.append(.start(runId, attempt: run.attempt + 1, job: job, arguments: run.arguments))
        }
        return outcome
    }

    /// After a restart, once every logged record is applied: each run in flight is checked with
    /// the master (`reconcile`: it is never started again unless the master never had it),
    /// dependent jobs whose parents all succeeded before the stop start, and a `tick` starts the
    /// runs missed while the service was down that are still within epsilon and records the
    /// older ones as missed.
    public mutating func recover(now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        for run in runs.values.sorted(by: { $0.id < $1.id }) where run.state == .running {
            guard let job = jobs[run.jobName] else {
                // Its job is gone: make sure its task is gone too.
                outcome.actions.append(.kill(run.id, attempt: run.attempt))
                continue
            }
            outcome.actions.append(.reconcile(run.id, attempt: run.attempt, job: job))
        }
        for job in jobs.values.sorted(by: { $0.name < $1.name }) where job.isDependent {
            startIfReady(job, now: now, wallTimeMs: wallTimeMs, into: &outcome)
        }
        outcome.append(tick(now: now, wallTimeMs: wallTimeMs))
        return outcome
    }

    private mutating func startReadyChildren(of parent: String, now: MonotonicInstant, wallTimeMs: Int64, into outcome: inout Outcome) {
        for child in children(of: parent) {
            startIfReady(child, now: now, wallTimeMs: wallTimeMs, into: &outcome)
        }
    }

    private mutating func startIfReady(_ job: CronJob, now: MonotonicInstant, wallTimeMs: Int64, into outcome: inout Outcome) {
        guard job.isDependent, !job.disabled, let status = statuses[job.name], status.succeededParents.isSuperset(of: job.parents) else { return }
        start(job, runId: freshRunId(for: job, wallTimeMs: wallTimeMs), kind: .dependent, arguments: nil, now: now, wallTimeMs: wallTimeMs, into: &outcome)
    }

    /// Starts a new run under the job's concurrency policy.
    private mutating func start(
        _ job: CronJob, runId: RunId, kind: CronRunKind, arguments: String?, now: MonotonicInstant, wallTimeMs: Int64, into outcome: inout Outcome
    ) {
        let inFlight = runs(of: job.name)
        switch job.concurrencyPolicy {
        case .allow:
            break
        case .forbid:
            if !inFlight.isEmpty {
                record(.runSkipped(runId, kind: kind, atMs: wallTimeMs), now: now, into: &outcome)
                return
            }
        case .replace:
            killRuns(of: job.name, now: now, wallTimeMs: wallTimeMs, into: &outcome)
        }
        record(.runStarted(runId, attempt: 0, kind: kind, arguments: arguments, atMs: wallTimeMs), now: now, into: &outcome)
        outcome.actions.append(.start(runId, attempt: 0, job: job, arguments: arguments))
    }

    /// A run id for a manual or dependent run: the wall time, or the first millisecond after the
    /// job's latest run id, that is neither a run in flight nor one of the job's scheduled times
    /// (which belong to scheduled runs).
    func freshRunId(for job: CronJob, wallTimeMs: Int64) -> RunId {
        var time = max(wallTimeMs, (statuses[job.name]?.lastRunIdMs ?? 0) + 1, 0)
        let schedule = schedules[job.name]
        while runs[RunId(jobName: job.name, scheduledMs: time)] != nil || schedule?.nextFire(after: time - 1) == time {
            time += 1
        }
        return RunId(jobName: job.name, scheduledMs: time)
    }

    // MARK: - When to wake

    /// The earliest next scheduled time of an enabled scheduled job, for the shell to tick then;
    /// nil if no schedule fires again.
    /// A job whose runs start ahead wakes it the lead time before its next scheduled time.
    public var nextWakeWallTimeMs: Int64? {
        jobs.values.compactMap { job -> Int64? in
            guard !job.disabled, let schedule = schedules[job.name], let status = statuses[job.name],
                  let next = schedule.nextFire(after: status.handledThroughMs)
            else { return nil }
            return submitsAhead(job) ? next - submitAheadMilliseconds : next
        }.min()
    }

    /// The earliest retry deadline, for the shell to tick then.
    public var nextRetryDeadline: MonotonicInstant? {
        retryDeadlines.values.min()
    }
}
