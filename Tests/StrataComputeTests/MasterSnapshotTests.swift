import StrataCompute
import StrataCore
import Testing

/// A snapshot's records rebuild the state they were taken from.
struct MasterSnapshotTests {
    @Test func replayingASnapshotGivesBackJobsAttemptsAndTheNextJobId() {
        let now = MonotonicInstant.milliseconds(5)
        var state = MasterState()
        let agent = AgentInfo(
            id: "a1", hostname: "h1", address: "127.0.0.1:1", dataNodeId: "dn", resources: Resources(cpus: 8, memMB: 8192), ports: [],
            attributes: [:])
        _ = state.register(agent, running: [], now: now, wallTimeMs: 0)
        let split = InputSplit(path: "/in", offset: 0, length: 1, fileLength: 3, dataNodes: ["dn"])
        for (number, outcome) in [TaskState.finished, .failed, .running, .killed].enumerated() {
            let spec = JobSpec(
                id: state.nextJobId, user: "u\(number)", arguments: ["cat"], inputs: ["/in"], output: "/out\(number)",
                resources: JobSpec.defaultResources, maxAttempts: 2, submittedAtMs: Int64(number))
            _ = state.submit(spec, splits: [split, split, split], now: now)
            _ = state.launch([(spec.id, 0, "a1", true), (spec.id, 1, "a1", false)], now: now, wallTimeMs: 10)
            _ = state.statusUpdate(agentId: "a1", TaskStatus(taskId: "\(spec.id)-00000-1", state: .running), now: now, wallTimeMs: 11)
            _ = state.statusUpdate(agentId: "a1", TaskStatus(taskId: "\(spec.id)-00000-1", state: outcome, exitCode: 1), now: now, wallTimeMs: 12)
        }
        _ = state.killJob("job-4", now: now, wallTimeMs: 20)

        var restored = MasterState()
        for record in state.snapshotRecords() { restored.apply(record, now: now) }
        #expect(restored.attempts == state.attempts)
        #expect(restored.jobOrder == state.jobOrder)
        for jobId in state.jobOrder {
            #expect(restored.jobs[jobId]?.slots == state.jobs[jobId]?.slots, "\(jobId)")
            #expect(restored.jobs[jobId]?.state == state.jobs[jobId]?.state, "\(jobId)")
            #expect(restored.jobs[jobId]?.failures == state.jobs[jobId]?.failures, "\(jobId)")
        }
        #expect(restored.nextJobId == state.nextJobId)
        #expect(restored.pendingTasks.map { "\($0.jobId)/\($0.index)" } == state.pendingTasks.map { "\($0.jobId)/\($0.index)" })
    }
}
