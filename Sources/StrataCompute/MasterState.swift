import StrataCore

/// The master's decisions about agents, jobs and tasks, as a value: events go in with `now:`,
/// records (to log durably first) and actions (for the shell to perform) come out. The same
/// `apply` builds the state live and when the log is replayed after a restart.
public struct MasterState: Sendable {
    public struct Settings: Sendable {
        /// An agent silent this long is lost; its tasks become LOST and run again elsewhere.
        public var agentTimeoutMs: Int64 = 15_000
        public init() {}
    }

    /// What the shell does after logging the outcome's records.
    public enum Action: Sendable, Hashable {
        /// Tell the agent at `agentAddress` to start a task.
        case launch(TaskLaunchOrder, agentId: String, agentAddress: String)
        /// Tell an agent to kill a task (one the master gave up on, or a kill asked for).
        case kill(taskId: String, agentId: String, agentAddress: String)
        /// Every task of a job finished: write `output/_SUCCESS`, then call `jobCommitted`.
        case commitJob(jobId: String, output: String, user: String)
    }

    /// Records to make durable, then actions to perform, in that order.
    public struct Outcome: Sendable {
        public var records: [MasterRecord] = []
        public var actions: [Action] = []
        public init() {}
    }

    public enum Slot: Sendable, Hashable {
        /// Waiting for a placement.
        case pending
        /// An attempt is staging or running.
        case active(taskId: String)
        /// An attempt finished; its part is committed.
        case done(taskId: String)
    }

    public struct Job: Sendable {
        public var spec: JobSpec
        public var splits: [InputSplit]
        public var state: JobState = .running
        public var message: String?
        public var endedAtMs: Int64?
        public var slots: [Slot]
        /// Failed attempts per split (lost and killed ones do not count).
        public var failures: [Int]
        /// Attempts made per split, of any outcome.
        public var attempts: [Int]
        /// When each pending split became pending (delay scheduling), by index.
        public var pendingSince: [Int: MonotonicInstant] = [:]

        public var finishedTasks: Int { slots.count { if case .done = $0 { true } else { false } } }
    }

    public struct Agent: Sendable {
        /// Nil for an agent known only from the log (tasks were on it) that has not registered
        /// since the master started.
        public var info: AgentInfo?
        public var lastSeen: MonotonicInstant
        public var isLost = false
        /// Its attempts that are not yet terminal.
        public var tasks: Set<String> = []
    }

    public var settings: Settings
    public private(set) var jobs: [String: Job] = [:]
    /// Job ids in submission order.
    public private(set) var jobOrder: [String] = []
    public private(set) var attempts: [String: TaskAttempt] = [:]
    /// Attempt ids by job: listings and watches show each job's attempts without scanning every
    /// attempt the master holds.
    public private(set) var attemptIdsByJob: [String: [String]] = [:]
    public private(set) var agents: [String: Agent] = [:]
    public private(set) var nextJobNumber = 1

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    // MARK: - Applying records

    /// Applies one record: the only way the durable state changes, live and on replay.
    public mutating func apply(_ record: MasterRecord, now: MonotonicInstant) {
        switch record {
        case .submitted(let spec, let splits):
            var job = Job(
                spec: spec, splits: splits, slots: Array(repeating: .pending, count: splits.count),
                failures: Array(repeating: 0, count: splits.count), attempts: Array(repeating: 0, count: splits.count))
            for index in splits.indices { job.pendingSince[index] = now }
            if splits.isEmpty { job.state = .committing }
            if jobs[spec.id] == nil { jobOrder.append(spec.id) }
            jobs[spec.id] = job
            if let number = Int(spec.id.dropFirst("job-".count)), spec.id.hasPrefix("job-") {
                nextJobNumber = max(nextJobNumber, number + 1)
            }
        case .launched(let attempt):
            if attempts[attempt.taskId] == nil { attemptIdsByJob[attempt.jobId, default: []].append(attempt.taskId) }
            attempts[attempt.taskId] = attempt
            agents[attempt.agentId, default: Agent(info: nil, lastSeen: now)].tasks.insert(attempt.taskId)
            guard var job = jobs[attempt.jobId], job.slots.indices.contains(attempt.index) else { return }
            job.slots[attempt.index] = .active(taskId: attempt.taskId)
            job.pendingSince[attempt.index] = nil
            job.attempts[attempt.index] = max(job.attempts[attempt.index], attempt.attempt)
            jobs[attempt.jobId] = job
        case .updated(let update):
            applyUpdate(update, now: now)
        case .jobEnded(let jobId, let state, let message, let atMs):
            guard var job = jobs[jobId] else { return }
            job.state = state
            job.message = message ?? job.message
            job.endedAtMs = atMs
            job.pendingSince = [:]
            jobs[jobId] = job
        case .killRequested(let jobId, let atMs):
            guard var job = jobs[jobId], !job.state.isTerminal else { return }
            job.state = .killed
            job.message = "killed"
            job.endedAtMs = atMs
            job.pendingSince = [:]
            jobs[jobId] = job
        }
    }

    private mutating func applyUpdate(_ update: TaskUpdate, now: MonotonicInstant) {
        guard var attempt = attempts[update.taskId], !attempt.state.isTerminal else { return }
        attempt.state = update.state
        if update.state == .running, attempt.runningAtMs == nil { attempt.runningAtMs = update.atMs }
        if update.state.isTerminal { attempt.endedAtMs = update.atMs }
        attempt.exitCode = update.exitCode ?? attempt.exitCode
        attempt.reason = update.reason ?? attempt.reason
        attempt.message = update.message ?? attempt.message
        attempt.bytesReadLocal = update.bytesReadLocal ?? attempt.bytesReadLocal
        attempt.bytesReadRemote = update.bytesReadRemote ?? attempt.bytesReadRemote
        attempt.stderrTail = update.stderrTail ?? attempt.stderrTail
        attempt.healthy = update.healthy ?? attempt.healthy
        attempts[update.taskId] = attempt
        guard update.state.isTerminal else { return }
        agents[attempt.agentId]?.tasks.remove(attempt.taskId)
        guard var job = jobs[attempt.jobId], job.slots.indices.contains(attempt.index) else { return }
        let index = attempt.index
        let wasActive = job.slots[index] == .active(taskId: attempt.taskId)
        if job.spec.service != nil {
            // A service task is never run again by the master: its job ends with it, and its
            // owner decides what replaces it.
            if wasActive, job.state == .running {
                job.slots[index] = .done(taskId: attempt.taskId)
                job.pendingSince = [:]
                job.state = update.state == .finished ? .finished : update.state == .killed ? .killed : .failed
                job.endedAtMs = update.atMs
                job.message = update.state == .finished ? nil : "\(update.state.rawValue): \(attempt.message ?? attempt.reason ?? "")"
            }
            jobs[attempt.jobId] = job
            return
        }
        switch update.state {
        case .finished:
            if case .done = job.slots[index] {} else { job.slots[index] = .done(taskId: attempt.taskId) }
            job.pendingSince[index] = nil
            if job.state == .running, job.finishedTasks == job.slots.count { job.state = .committing }
        case .failed:
            job.failures[index] += 1
            if wasActive, job.state == .running {
                if job.failures[index] >= job.spec.maxAttempts {
                    job.state = .failed
                    job.endedAtMs = update.atMs
                    job.pendingSince = [:]
                    var message = "task \(index) (\(attempt.taskId)) failed \(job.failures[index]) times; the last: \(attempt.message ?? "failed")"
                    if let tail = attempt.stderrTail, !tail.isEmpty { message += "\nits stderr ended with:\n" + tail }
                    job.message = message
                } else {
                    job.slots[index] = .pending
                    job.pendingSince[index] = now
                }
            }
        default:
            // Killed or lost: run it again; neither counts against the task's attempts.
            if wasActive, job.state == .running {
                job.slots[index] = .pending
                job.pendingSince[index] = now
            }
        }
        jobs[attempt.jobId] = job
    }

    // MARK: - Events

    /// The id the next submitted job gets.
    public var nextJobId: String { "job-\(nextJobNumber)" }

    /// Accepts a job whose splits were made from its input's blocks.
    public mutating func submit(_ spec: JobSpec, splits: [InputSplit], now: MonotonicInstant) -> Outcome {
        var outcome = Outcome()
        record(.submitted(spec, splits), now: now, into: &outcome)
        if jobs[spec.id]?.state == .committing {
            outcome.actions.append(.commitJob(jobId: spec.id, output: spec.output, user: spec.user))
        }
        return outcome
    }

    /// An agent registered (first start, restart, or after the master restarted). `running` is
    /// every task it has: tasks the master knows are adopted; tasks it has given up on (or never
    /// heard of) are killed; tasks the master had on that agent that it no longer has are lost.
    public mutating func register(_ info: AgentInfo, running: [TaskStatus], now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var agent = agents[info.id] ?? Agent(info: info, lastSeen: now)
        agent.info = info
        agent.lastSeen = now
        agent.isLost = false
        agents[info.id] = agent
        var outcome = reconcile(agentId: info.id, reported: running, now: now, wallTimeMs: wallTimeMs)
        let reported = Set(running.map(\.taskId))
        for taskId in agents[info.id]!.tasks.sorted() where !reported.contains(taskId) {
            let status = TaskStatus(
                taskId: taskId, state: .lost, reason: "REASON_AGENT_RESTARTED", message: "the agent restarted without this task")
            record(.updated(TaskUpdate(status, atMs: wallTimeMs)), now: now, into: &outcome)
        }
        return outcome
    }

    /// An agent's heartbeat with its tasks' states. Nil when the master does not know the agent
    /// (it must register again).
    public mutating func heartbeat(agentId: String, running: [TaskStatus], now: MonotonicInstant, wallTimeMs: Int64) -> Outcome? {
        guard var agent = agents[agentId], agent.info != nil, !agent.isLost else { return nil }
        agent.lastSeen = now
        agents[agentId] = agent
        return reconcile(agentId: agentId, reported: running, now: now, wallTimeMs: wallTimeMs)
    }

    private mutating func reconcile(agentId: String, reported: [TaskStatus], now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        for status in reported {
            let merged = statusUpdate(agentId: agentId, status, now: now, wallTimeMs: wallTimeMs)
            outcome.records += merged.records
            outcome.actions += merged.actions
        }
        return outcome
    }

    /// Several tasks' states as their agent reports them at once (`POST .../statuses`), in the
    /// order it sent them.
    public mutating func statusUpdates(agentId: String, _ statuses: [TaskStatus], now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        reconcile(agentId: agentId, reported: statuses, now: now, wallTimeMs: wallTimeMs)
    }

    /// A task's state as its agent reports it.
    public mutating func statusUpdate(agentId: String, _ status: TaskStatus, now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        guard let attempt = attempts[status.taskId], attempt.agentId == agentId, !attempt.state.isTerminal,
              jobs[attempt.jobId].map({ !$0.state.isTerminal }) ?? false
        else {
            // Unknown, given up on (lost, or its job ended), or on another agent: it must not run.
            let known = attempts[status.taskId]
            if !status.state.isTerminal, let address = agents[agentId]?.info?.address {
                outcome.actions.append(.kill(taskId: status.taskId, agentId: agentId, agentAddress: address))
            }
            if let known, !known.state.isTerminal, status.state.isTerminal {
                // The job ended while the attempt ran; still record how the attempt ended.
                record(.updated(TaskUpdate(status, atMs: wallTimeMs)), now: now, into: &outcome)
            }
            return outcome
        }
        // Nothing new: the same state, and no change of health.
        guard status.state != attempt.state || (status.healthy != nil && status.healthy != attempt.healthy) else { return outcome }
        let jobBefore = jobs[attempt.jobId]!.state
        record(.updated(TaskUpdate(status, atMs: wallTimeMs)), now: now, into: &outcome)
        let job = jobs[attempt.jobId]!
        if jobBefore == .running, job.state == .committing {
            outcome.actions.append(.commitJob(jobId: job.spec.id, output: job.spec.output, user: job.spec.user))
        }
        if jobBefore == .running, job.state == .failed {
            outcome.actions += killActions(forJob: job.spec.id)
        }
        return outcome
    }

    /// Agents silent past the timeout are lost, and their tasks with them.
    public mutating func tick(now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        let deadline = now.advanced(byMilliseconds: -settings.agentTimeoutMs)
        for agentId in agents.keys.sorted() where !agents[agentId]!.isLost && agents[agentId]!.lastSeen < deadline {
            agents[agentId]!.isLost = true
            for taskId in agents[agentId]!.tasks.sorted() {
                let status = TaskStatus(
                    taskId: taskId, state: .lost, reason: "REASON_AGENT_REMOVED",
                    message: "agent \(agentId) was silent for more than \(settings.agentTimeoutMs / 1000) s")
                record(.updated(TaskUpdate(status, atMs: wallTimeMs)), now: now, into: &outcome)
            }
        }
        return outcome
    }

    /// A job's `_SUCCESS` is written: it is finished.
    public mutating func jobCommitted(_ jobId: String, now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        guard jobs[jobId]?.state == .committing else { return outcome }
        record(.jobEnded(jobId: jobId, state: .finished, message: nil, atMs: wallTimeMs), now: now, into: &outcome)
        return outcome
    }

    /// Kills a job: nothing more of it starts, its running tasks are killed.
    public mutating func killJob(_ jobId: String, now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        guard let job = jobs[jobId], !job.state.isTerminal else { return outcome }
        record(.killRequested(jobId: jobId, atMs: wallTimeMs), now: now, into: &outcome)
        outcome.actions += killActions(forJob: jobId)
        return outcome
    }

    /// Kills one attempt (its split runs again, as Hadoop's `-kill-task`). Nil if it is not running.
    public func killTask(_ taskId: String) -> Action? {
        guard let attempt = attempts[taskId], !attempt.state.isTerminal, let address = agents[attempt.agentId]?.info?.address else {
            return nil
        }
        return .kill(taskId: taskId, agentId: attempt.agentId, agentAddress: address)
    }

    /// After replaying the log: jobs whose tasks all finished are committed (again: writing
    /// `_SUCCESS` twice is harmless), and agents with tasks get the agent timeout to register.
    public mutating func recover(now: MonotonicInstant) -> Outcome {
        var outcome = Outcome()
        for agentId in agents.keys { agents[agentId]!.lastSeen = now }
        for jobId in jobOrder where jobs[jobId]!.state == .committing {
            let spec = jobs[jobId]!.spec
            outcome.actions.append(.commitJob(jobId: jobId, output: spec.output, user: spec.user))
        }
        return outcome
    }

    private func killActions(forJob jobId: String) -> [Action] {
        guard let job = jobs[jobId] else { return [] }
        return job.slots.compactMap { slot -> Action? in
            guard case .active(let taskId) = slot, let attempt = attempts[taskId], !attempt.state.isTerminal,
                  let address = agents[attempt.agentId]?.info?.address
            else { return nil }
            return .kill(taskId: taskId, agentId: attempt.agentId, agentAddress: address)
        }
    }

    private mutating func record(_ record: MasterRecord, now: MonotonicInstant, into outcome: inout Outcome) {
        apply(record, now: now)
        outcome.records.append(record)
    }

    // MARK: - Placement

    /// A split waiting for an agent.
    public struct PendingTask: Sendable {
        public var jobId: String
        public var index: Int
        public var spec: JobSpec
        public var split: InputSplit
        public var waitingSince: MonotonicInstant
    }

    /// Splits waiting for placement, jobs in submission order.
    public var pendingTasks: [PendingTask] {
        var pending: [PendingTask] = []
        for jobId in jobOrder {
            let job = jobs[jobId]!
            guard job.state == .running else { continue }
            for (index, since) in job.pendingSince.sorted(by: { $0.key < $1.key }) {
                pending.append(PendingTask(jobId: jobId, index: index, spec: job.spec, split: job.splits[index], waitingSince: since))
            }
        }
        return pending
    }

    /// Registered agents that are not lost, with what their unfinished tasks leave free.
    public var activeAgents: [(info: AgentInfo, available: Resources)] {
        agents.keys.sorted().compactMap { agentId in
            let agent = agents[agentId]!
            guard let info = agent.info, !agent.isLost else { return nil }
            var available = info.resources
            for taskId in agent.tasks {
                if let attempt = attempts[taskId], let job = jobs[attempt.jobId] { available -= job.spec.resources }
            }
            return (info, available)
        }
    }

    /// The ports an agent's unfinished tasks hold.
    public func portsInUse(agentId: String) -> Set<Int> {
        var ports = Set<Int>()
        for taskId in agents[agentId]?.tasks ?? [] { ports.formUnion(attempts[taskId]?.ports ?? []) }
        return ports
    }

    /// Unfinished attempts, for users' fair shares and constraints.
    public var unfinishedAttempts: [(attempt: TaskAttempt, resources: Resources)] {
        attempts.values.filter { !$0.state.isTerminal }.sorted { $0.taskId < $1.taskId }.compactMap { attempt in
            jobs[attempt.jobId].map { (attempt, $0.spec.resources) }
        }
    }

    /// Places pending splits on agents, as placement decided: each becomes a new attempt, logged
    /// before its agent is told to launch it.
    public mutating func launch(
        _ placements: [(jobId: String, index: Int, agentId: String, isNodeLocal: Bool)], now: MonotonicInstant, wallTimeMs: Int64
    ) -> Outcome {
        launch(placements.map { TaskPlacement(jobId: $0.jobId, index: $0.index, agentId: $0.agentId, isNodeLocal: $0.isNodeLocal) },
            now: now, wallTimeMs: wallTimeMs)
    }

    /// Places pending tasks on agents, with the ports placement gave them.
    public mutating func launch(_ placements: [TaskPlacement], now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        for placement in placements {
            guard let job = jobs[placement.jobId], job.state == .running, job.pendingSince[placement.index] != nil,
                  let agent = agents[placement.agentId], let info = agent.info, !agent.isLost
            else { continue }
            let attemptNumber = job.attempts[placement.index] + 1
            let taskId = TaskAttempt.taskId(job: placement.jobId, index: placement.index, attempt: attemptNumber)
            var attempt = TaskAttempt(
                taskId: taskId, jobId: placement.jobId, index: placement.index, attempt: attemptNumber, user: job.spec.user,
                agentId: placement.agentId, isNodeLocal: placement.isNodeLocal, stagedAtMs: wallTimeMs)
            if !placement.ports.isEmpty { attempt.ports = placement.ports }
            record(.launched(attempt), now: now, into: &outcome)
            var order = TaskLaunchOrder(
                taskId: taskId, jobId: placement.jobId, user: job.spec.user, arguments: job.spec.arguments,
                environment: job.spec.environment, resources: job.spec.resources, rootFilesystem: job.spec.rootFilesystem, image: job.spec.image,
                split: job.splits[placement.index], output: job.spec.output, partName: JobSpec.partName(placement.index),
                ports: placement.ports)
            order.healthCheck = job.spec.service?.healthCheck
            order.notBeforeMs = job.spec.notBeforeMs
            outcome.actions.append(.launch(order, agentId: placement.agentId, agentAddress: info.address))
        }
        return outcome
    }
}
