import StrataCompute
import StrataCore
import Testing

/// The master's job and task decisions, on given instants: no sockets, no sleeping.
struct MasterStateTests {
    let start = MonotonicInstant.milliseconds(1_000)

    func agent(_ id: String, node: String) -> AgentInfo {
        AgentInfo(
            id: id, hostname: "host-\(id)", address: "127.0.0.1:\(5051)", dataNodeId: node,
            resources: Resources(cpus: 2, memMB: 2048), ports: [], attributes: [:])
    }

    func job(_ state: inout MasterState, splits: Int, maxAttempts: Int = 4) -> JobSpec {
        let spec = JobSpec(
            id: state.nextJobId, user: "alice", arguments: ["grep", "-c", "ERROR"], inputs: ["/logs"], output: "/out",
            resources: Resources(cpus: 0.5, memMB: 128), maxAttempts: maxAttempts, submittedAtMs: 0)
        let pieces = (0..<splits).map {
            InputSplit(path: "/logs/a", offset: UInt64($0) * 100, length: 100, fileLength: UInt64(splits) * 100, dataNodes: ["dn-\($0 % 2)"])
        }
        _ = state.submit(spec, splits: pieces, now: start)
        return spec
    }

    /// Places every pending split on `agentId` and returns the launched task ids.
    func launchAll(_ state: inout MasterState, on agentId: String, at now: MonotonicInstant) -> [String] {
        let placements = state.pendingTasks.map { (jobId: $0.jobId, index: $0.index, agentId: agentId, isNodeLocal: true) }
        let outcome = state.launch(placements, now: now, wallTimeMs: 0)
        return outcome.actions.compactMap { if case .launch(let order, _, _) = $0 { order.taskId } else { nil } }
    }

    @Test func aChangeOfHealthIsRecordedAndAHealthCheckGoesWithTheLaunch() {
        var state = MasterState()
        _ = state.register(agent("a1", node: "dn-0"), running: [], now: start, wallTimeMs: 0)
        let check = CommandHealthCheck(command: "test -e ok", intervalMs: 1_000)
        let spec = JobSpec(
            id: state.nextJobId, user: "alice", arguments: ["sleep", "600"], inputs: [], output: "", resources: Resources(cpus: 0.5, memMB: 128),
            maxAttempts: 1, service: ServiceTask(portCount: 0, healthCheck: check), submittedAtMs: 0)
        _ = state.submit(spec, splits: [.none], now: start)
        let placements = state.pendingTasks.map { (jobId: $0.jobId, index: $0.index, agentId: "a1", isNodeLocal: false) }
        let launched = state.launch(placements, now: start, wallTimeMs: 0)
        let orders = launched.actions.compactMap { if case .launch(let order, _, _) = $0 { order } else { nil } }
        #expect(orders.map(\.healthCheck) == [check])
        let task = orders[0].taskId

        #expect(state.statusUpdate(agentId: "a1", TaskStatus(taskId: task, state: .running), now: start, wallTimeMs: 1).records.count == 1)
        #expect(state.attempts[task]?.healthy == nil)
        let healthy = state.statusUpdate(agentId: "a1", TaskStatus(taskId: task, state: .running, healthy: true), now: start, wallTimeMs: 2)
        #expect(healthy.records.count == 1 && state.attempts[task]?.healthy == true)
        // The same again (a heartbeat carries it): nothing to record.
        #expect(state.statusUpdate(agentId: "a1", TaskStatus(taskId: task, state: .running, healthy: true), now: start, wallTimeMs: 3).records.isEmpty)
        #expect(state.statusUpdate(agentId: "a1", TaskStatus(taskId: task, state: .running), now: start, wallTimeMs: 3).records.isEmpty)
        _ = state.statusUpdate(agentId: "a1", TaskStatus(taskId: task, state: .running, healthy: false), now: start, wallTimeMs: 4)
        #expect(state.attempts[task]?.healthy == false)

        // Replayed, the health is there again.
        var replayed = MasterState()
        for record in state.snapshotRecords() { replayed.apply(record, now: start) }
        #expect(replayed.attempts[task]?.healthy == false)
    }

    @Test func aJobWhoseTasksAllFinishIsCommittedThenFinished() {
        var state = MasterState()
        _ = state.register(agent("a1", node: "dn-0"), running: [], now: start, wallTimeMs: 0)
        let spec = job(&state, splits: 3)
        #expect(state.pendingTasks.count == 3)
        let tasks = launchAll(&state, on: "a1", at: start)
        #expect(tasks == ["job-1-00000-1", "job-1-00001-1", "job-1-00002-1"])
        #expect(state.pendingTasks.isEmpty)
        #expect(state.activeAgents.first?.available == Resources(cpus: 0.5, memMB: 2048 - 384))
        var commits: [MasterState.Action] = []
        for task in tasks {
            _ = state.statusUpdate(agentId: "a1", TaskStatus(taskId: task, state: .running), now: start, wallTimeMs: 1)
            let outcome = state.statusUpdate(agentId: "a1", TaskStatus(taskId: task, state: .finished, exitCode: 0), now: start, wallTimeMs: 2)
            commits += outcome.actions
        }
        #expect(commits == [.commitJob(jobId: spec.id, output: "/out", user: "alice")])
        #expect(state.jobs[spec.id]?.state == .committing)
        let done = state.jobCommitted(spec.id, now: start, wallTimeMs: 3)
        #expect(done.records.count == 1)
        #expect(state.jobs[spec.id]?.state == .finished)
        #expect(state.activeAgents.first?.available == Resources(cpus: 2, memMB: 2048))
    }

    @Test func aTaskFailingMaxAttemptsTimesFailsItsJobWithItsStderrAndKillsTheRest() {
        var state = MasterState()
        _ = state.register(agent("a1", node: "dn-0"), running: [], now: start, wallTimeMs: 0)
        let spec = job(&state, splits: 2, maxAttempts: 2)
        var tasks = launchAll(&state, on: "a1", at: start)
        let failed = TaskStatus(taskId: tasks[0], state: .failed, exitCode: 2, message: "exited with status 2", stderrTail: "grep: bad")
        _ = state.statusUpdate(agentId: "a1", failed, now: start, wallTimeMs: 1)
        #expect(state.jobs[spec.id]?.state == .running)
        #expect(state.pendingTasks.map(\.index) == [0])
        tasks = launchAll(&state, on: "a1", at: start)
        #expect(tasks == ["job-1-00000-2"])
        var again = failed
        again.taskId = tasks[0]
        let outcome = state.statusUpdate(agentId: "a1", again, now: start, wallTimeMs: 2)
        #expect(state.jobs[spec.id]?.state == .failed)
        #expect(state.jobs[spec.id]?.message?.contains("grep: bad") == true)
        #expect(outcome.actions == [.kill(taskId: "job-1-00001-1", agentId: "a1", agentAddress: "127.0.0.1:5051")])
        #expect(state.pendingTasks.isEmpty)
    }

    @Test func aSilentAgentIsLostAtTheTimeoutItsTasksRunAgainAndItsOrphansAreKilledWhenItReturns() {
        var state = MasterState()
        _ = state.register(agent("a1", node: "dn-0"), running: [], now: start, wallTimeMs: 0)
        _ = state.register(agent("a2", node: "dn-1"), running: [], now: start, wallTimeMs: 0)
        let spec = job(&state, splits: 2)
        let tasks = launchAll(&state, on: "a1", at: start)
        // a2 heartbeats; a1 says nothing.
        let justBefore = start.advanced(byMilliseconds: 15_000)
        _ = state.heartbeat(agentId: "a2", running: [], now: justBefore, wallTimeMs: 0)
        #expect(state.tick(now: justBefore, wallTimeMs: 0).records.isEmpty)
        let after = start.advanced(byMilliseconds: 15_001)
        let lost = state.tick(now: after, wallTimeMs: 0)
        #expect(lost.records.count == 2)
        #expect(tasks.allSatisfy { state.attempts[$0]?.state == .lost })
        #expect(state.agents["a1"]?.isLost == true)
        #expect(state.agents["a2"]?.isLost == false)
        #expect(state.pendingTasks.map(\.index) == [0, 1])
        #expect(state.activeAgents.map(\.info.id) == ["a2"])
        // A lost agent's heartbeat is refused: it must register again.
        #expect(state.heartbeat(agentId: "a1", running: [], now: after, wallTimeMs: 0) == nil)
        let retried = launchAll(&state, on: "a2", at: after)
        #expect(retried == ["job-1-00000-2", "job-1-00001-2"])
        // a1 returns, still running its old attempts: the master gave up on them, so they are killed.
        let back = state.register(
            agent("a1", node: "dn-0"), running: tasks.map { TaskStatus(taskId: $0, state: .running) }, now: after, wallTimeMs: 0)
        #expect(Set(back.actions) == Set(tasks.map { MasterState.Action.kill(taskId: $0, agentId: "a1", agentAddress: "127.0.0.1:5051") }))
        #expect(state.jobs[spec.id]?.failures == [0, 0])
    }

    @Test func anAgentThatRestartsWithoutItsTasksHasThemLost() {
        var state = MasterState()
        _ = state.register(agent("a1", node: "dn-0"), running: [], now: start, wallTimeMs: 0)
        _ = job(&state, splits: 1)
        let tasks = launchAll(&state, on: "a1", at: start)
        _ = state.register(agent("a1", node: "dn-0"), running: [], now: start, wallTimeMs: 0)
        #expect(state.attempts[tasks[0]]?.state == .lost)
        #expect(state.pendingTasks.count == 1)
    }

    @Test func replayingTheRecordsGivesTheSameStateAndRecoveryCommitsAFinishedJob() {
        var state = MasterState()
        var log: [MasterRecord] = []
        _ = state.register(agent("a1", node: "dn-0"), running: [], now: start, wallTimeMs: 0)
        let spec = JobSpec(
            id: state.nextJobId, user: "bob", arguments: ["cat"], inputs: ["/in"], output: "/out", resources: JobSpec.defaultResources,
            submittedAtMs: 0)
        let split = InputSplit(path: "/in", offset: 0, length: 10, fileLength: 10, dataNodes: ["dn-0"])
        log += state.submit(spec, splits: [split, split], now: start).records
        let placements = state.pendingTasks.map { (jobId: $0.jobId, index: $0.index, agentId: "a1", isNodeLocal: true) }
        log += state.launch(placements, now: start, wallTimeMs: 0).records
        log += state.statusUpdate(agentId: "a1", TaskStatus(taskId: "job-1-00000-1", state: .finished), now: start, wallTimeMs: 0).records
        log += state.statusUpdate(agentId: "a1", TaskStatus(taskId: "job-1-00001-1", state: .running), now: start, wallTimeMs: 0).records

        var replayed = MasterState()
        for record in log { replayed.apply(record, now: start) }
        #expect(replayed.attempts == state.attempts)
        #expect(replayed.jobs[spec.id]?.slots == state.jobs[spec.id]?.slots)
        #expect(replayed.nextJobId == "job-2")
        // The running task's agent gets the agent timeout to come back before it is lost.
        _ = replayed.recover(now: start)
        #expect(replayed.tick(now: start.advanced(byMilliseconds: 15_000), wallTimeMs: 0).records.isEmpty)
        // It comes back with the task: adopted, not run twice.
        let adopted = replayed.register(
            agent("a1", node: "dn-0"), running: [TaskStatus(taskId: "job-1-00001-1", state: .running)], now: start, wallTimeMs: 0)
        #expect(adopted.actions.isEmpty)
        #expect(replayed.pendingTasks.isEmpty)
        let finished = replayed.statusUpdate(agentId: "a1", TaskStatus(taskId: "job-1-00001-1", state: .finished), now: start, wallTimeMs: 0)
        #expect(finished.actions == [.commitJob(jobId: "job-1", output: "/out", user: "bob")])
        // A master that restarts after the last task finished but before `_SUCCESS` commits again.
        var restarted = MasterState()
        for record in log + finished.records { restarted.apply(record, now: start) }
        #expect(restarted.recover(now: start).actions == [.commitJob(jobId: "job-1", output: "/out", user: "bob")])
    }

    @Test func killingAJobKillsItsTasksAndStartsNoMore() {
        var state = MasterState()
        _ = state.register(agent("a1", node: "dn-0"), running: [], now: start, wallTimeMs: 0)
        let spec = job(&state, splits: 3)
        let launched = state.launch(
            [(jobId: spec.id, index: 0, agentId: "a1", isNodeLocal: true)], now: start, wallTimeMs: 0)
        #expect(launched.actions.count == 1)
        let outcome = state.killJob(spec.id, now: start, wallTimeMs: 0)
        #expect(outcome.actions == [.kill(taskId: "job-1-00000-1", agentId: "a1", agentAddress: "127.0.0.1:5051")])
        #expect(state.jobs[spec.id]?.state == .killed)
        #expect(state.pendingTasks.isEmpty)
        // The agent's report of the killed task ends it; nothing is scheduled again.
        _ = state.statusUpdate(agentId: "a1", TaskStatus(taskId: "job-1-00000-1", state: .killed), now: start, wallTimeMs: 0)
        #expect(state.attempts["job-1-00000-1"]?.state == .killed)
        #expect(state.pendingTasks.isEmpty)
    }
}
