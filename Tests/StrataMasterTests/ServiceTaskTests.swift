import Foundation
import StrataClient
import StrataCompute
import StrataCore
import StrataTestKit
import Testing

/// Service tasks: one long-running task with ports from its agent's range, no input or output,
/// never run again by the master (its owner, the launcher, decides what replaces it).
@Suite(.serialized) struct ServiceTaskTests {
    static func waitFor(_ cluster: LocalCluster, _ jobId: String, _ condition: @escaping (TaskAttempt) -> Bool) async throws -> TaskAttempt {
        let master = cluster.master!
        let clock = SystemClock()
        let deadline = clock.now + .seconds(60)
        while true {
            let seen = master.stateChanges.count
            if let attempt = master.attempts(ofJob: jobId).last, condition(attempt) { return attempt }
            try #require(clock.now < deadline, "job \(jobId): \(master.attempts(ofJob: jobId))")
            await clock.wait(for: master.stateChanges, after: seen, until: deadline)
        }
    }

    static func service(_ command: String, ports: Int, node: String? = nil) -> ComputeAPI.JobSubmission {
        var submission = ComputeAPI.JobSubmission(arguments: ["sh", "-c", command], inputs: [], output: "")
        submission.service = ServiceTask(portCount: ports, labels: ["app": "/web"])
        submission.memMB = 32
        if let node { submission.constraints = [Constraint(field: "hostname", operator: .like, value: node)] }
        return submission
    }

    @Test func aServiceTaskGetsPortsRunsUntilKilledAndIsNotRunAgain() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            let first = try await submit(cluster, Self.service("echo ports=$PORTS port=$PORT host=$HOST; exec sleep 600", ports: 2, node: "node1"))
            #expect(first.service?.portCount == 2 && first.tasks == 1)
            let running = try await Self.waitFor(cluster, first.id) { $0.state == .running }
            let ports = try #require(running.ports)
            #expect(ports.count == 2 && Set(ports).count == 2 && ports.allSatisfy { (31000...32000).contains($0) }, "\(ports)")

            // A second service on the same agent gets other ports.
            let second = try await submit(cluster, Self.service("exec sleep 600", ports: 2, node: "node1"))
            let secondRunning = try await Self.waitFor(cluster, second.id) { $0.state == .running }
            #expect(Set(secondRunning.ports ?? []).isDisjoint(with: ports))

            // The launcher's view: service tasks by label, the running ones, watched.
            let listed = try JSONDecoder().decode(
                ComputeAPI.ServiceList.self, from: Data(try await callMaster(cluster, .GET, "/api/v1/services?label=app=/web&active=true").body.utf8))
            #expect(Set(listed.services.compactMap { $0.task?.attempt.taskId }) == [running.taskId, secondRunning.taskId])
            #expect(listed.services.allSatisfy { $0.task?.agentAddress != nil && $0.task?.attempt.ports?.count == 2 })
            let other = try await callMaster(cluster, .GET, "/api/v1/services?label=app=/other")
            #expect(other.body.contains(#""services":[]"#))
            #expect(try await callMaster(cluster, .GET, "/api/v1/services?label=nonsense").status == 400)

            // Killed: the job ends KILLED and nothing runs again.
            for attempt in [running, secondRunning] {
                #expect(try await callMaster(cluster, .POST, "/api/v1/tasks/\(attempt.taskId)/kill").status == 200)
            }
            let killed = try await cluster.master!.waitForJob(first.id, timeoutSeconds: 30)
            #expect(killed.state == .killed)
            _ = try await cluster.master!.waitForJob(second.id, timeoutSeconds: 30)
            #expect(cluster.master!.attempts(ofJob: first.id).count == 1)
            let ended = try await Self.waitFor(cluster, first.id) { $0.state.isTerminal }
            #expect(ended.state == .killed)
            let stdout = try String(contentsOfFile: cluster.directory + "/node1/agent/sandboxes/\(running.taskId)/stdout", encoding: .utf8)
            #expect(stdout == "ports=\(ports[0]),\(ports[1]) port=\(ports[0]) host=node1\n")
            #expect(cluster.master!.attempts(ofJob: second.id).count == 1)
            // A watch from the version before the kills sees them; the active list is empty.
            let after = try JSONDecoder().decode(
                ComputeAPI.ServiceList.self,
                from: Data(try await callMaster(cluster, .GET, "/api/v1/services?active=true&changedAfter=\(listed.stateVersion)&waitMs=30000").body.utf8))
            #expect(after.stateVersion > listed.stateVersion && after.services.isEmpty)
        }
    }

    @Test func aServiceTaskThatExitsEndsItsJobWithoutARetry() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            let failing = try await submit(cluster, Self.service("echo broken >&2; exit 3", ports: 0))
            let failed = try await cluster.master!.waitForJob(failing.id, timeoutSeconds: 60)
            #expect(failed.state == .failed)
            let attempts = cluster.master!.attempts(ofJob: failing.id)
            #expect(attempts.count == 1 && attempts.first?.exitCode == 3)
            let done = try await submit(cluster, Self.service("exit 0", ports: 1))
            #expect(try await cluster.master!.waitForJob(done.id, timeoutSeconds: 60).state == .finished)

            let withInput = try await callMaster(
                cluster, .POST, "/api/v1/jobs", body: #"{"arguments":["true"],"inputs":["/x"],"output":"","service":{"portCount":0,"labels":{}}}"#)
            #expect(withInput.status == 400 && withInput.body.contains("no inputs and no output"))
            let tooManyPorts = try await callMaster(
                cluster, .POST, "/api/v1/jobs", body: #"{"arguments":["true"],"inputs":[],"output":"","service":{"portCount":5000,"labels":{}}}"#)
            #expect(tooManyPorts.status == 400)
        }
    }
    @Test func anAgentRunsACommandHealthCheckReportsHealthAndKillsAFailingTask() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            // Healthy while the file `ok` is in the sandbox; the check sees the task's environment.
            var submission = Self.service("touch ok; exec sleep 600", ports: 1, node: "node1")
            submission.service?.healthCheck = CommandHealthCheck(
                command: #"test -e ok && test -n "$PORT0" && echo "fine as $(id -un)""#, gracePeriodMs: 0, intervalMs: 100, timeoutMs: 2_000,
                delayMs: 0, maxConsecutiveFailures: 2)
            let job = try await submit(cluster, submission)
            let healthy = try await Self.waitFor(cluster, job.id) { $0.healthy == true }
            #expect(healthy.state == .running)
            #expect(healthy.message == "fine as \(taskUser)")

            // The file goes: unhealthy, then killed after two failures in a row.
            try FileManager.default.removeItem(atPath: cluster.directory + "/node1/agent/sandboxes/\(healthy.taskId)/ok")
            let ended = try await Self.waitFor(cluster, job.id) { $0.state.isTerminal }
            #expect(ended.state == .killed && ended.healthy == false, "\(ended)")
            #expect(ended.reason == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED")
            #expect(ended.message?.contains("2 failed health checks in a row") == true, "\(ended.message ?? "")")
            #expect(try await cluster.master!.waitForJob(job.id, timeoutSeconds: 30).state == .killed)
        }
    }

    @Test func aHealthCheckThatHangsFailsAtItsTimeout() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            var submission = Self.service("exec sleep 600", ports: 0, node: "node1")
            submission.service?.healthCheck = CommandHealthCheck(
                command: "sleep 60", gracePeriodMs: 0, intervalMs: 100, timeoutMs: 200, delayMs: 0, maxConsecutiveFailures: 1)
            let job = try await submit(cluster, submission)
            let ended = try await Self.waitFor(cluster, job.id) { $0.state.isTerminal }
            #expect(ended.state == .killed && ended.healthy == false)
            #expect(ended.message?.contains("did not end within 200 ms") == true, "\(ended.message ?? "")")
        }
    }

    @Test func jobsOfOnePlacementGroupShareTheirConstraints() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            let agents = cluster.agents.count
            try #require(agents >= 2)
            func instance(group: String?) -> ComputeAPI.JobSubmission {
                var submission = Self.service("exec sleep 600", ports: 0)
                submission.constraints = [Constraint(field: "hostname", operator: .unique, value: nil)]
                submission.placementGroup = group
                return submission
            }
            // One more than there are agents, all UNIQUE by hostname in one group.
            var jobs: [ComputeAPI.JobView] = []
            for _ in 0...agents { jobs.append(try await submit(cluster, instance(group: "web"))) }
            var running: [TaskAttempt] = []
            for job in jobs.prefix(agents) { running.append(try await Self.waitFor(cluster, job.id) { $0.state == .running }) }
            #expect(Set(running.map(\.agentId)).count == agents, "\(running.map(\.agentId))")
            // The last waits: every host has one of the group. A job outside the group is placed.
            let alone = try await submit(cluster, instance(group: nil))
            _ = try await Self.waitFor(cluster, alone.id) { $0.state == .running }
            let waiting = try JSONDecoder().decode(
                ComputeAPI.JobDetail.self, from: Data(try await callMaster(cluster, .GET, "/api/v1/jobs/\(jobs[agents].id)").body.utf8))
            #expect(waiting.job.pendingTasks == 1 && waiting.tasks.isEmpty, "\(waiting.job)")
            // One of the group ends: the waiting one takes its host.
            #expect(try await callMaster(cluster, .POST, "/api/v1/jobs/\(jobs[0].id)/kill").status == 200)
            let placed = try await Self.waitFor(cluster, jobs[agents].id) { $0.state == .running }
            #expect(placed.agentId == running[0].agentId)
            #expect(try await callMaster(cluster, .POST, "/api/v1/jobs", body: #"{"arguments":["true"],"inputs":[],"output":"","service":{"portCount":0,"labels":{}},"placementGroup":""}"#).status == 400)
        }
    }
}
