import Foundation
import Glibc
import Testing

/// Faults of the compute side on real processes: a name node, three data nodes, `strata master`
/// (agents lost after 3 s) and a `strata agent` beside each data node, each as a process of its
/// own. Jobs run `grep -c ERROR` over synthetic logs with 256 KiB blocks as user `nobody` (agents
/// refuse root tasks); their output must be what grep says over the whole file, one part per
/// block, whatever was killed on the way.
@Suite(.serialized) struct ComputeProcessTests {
    static let agentTimeoutSeconds = 3.0
    static let taskUser = "nobody"
    static let input = "/user/nobody/access.log"
    /// 3 MiB in 256 KiB blocks.
    static let blocks = 12

    /// Starts the cluster and a job of slow tasks (`sleep 10; grep -c ERROR`), waits until all of
    /// them run, and picks the agent running the most of them.
    static func startSlowJobAndPickVictim(seed: Int) throws -> (
        cluster: ProcessCluster, expectedErrors: Int, job: String, victim: Int, victimId: String, victimTasks: [TaskRecord]
    ) {
        let (cluster, expectedErrors) = try startCluster(seed: seed)
        let job = try submit(cluster, command: "sleep 10; grep -c ERROR", output: "/user/nobody/errors", cpus: 0.25)
        let placed = try secondsUntil(timeoutSeconds: 30, intervalSeconds: 0.2) {
            try tasks(cluster, job).filter { $0.state == "TASK_RUNNING" }.count == blocks
        }
        try #require(placed != nil, "the job's tasks were not all running within 30 s: \(describeTasks(cluster, job))")
        let agentIds = try cluster.agentSlots.indices.map { try cluster.agentId($0) }
        let running = try tasks(cluster, job)
        let victim = try #require(agentIds.indices.max { a, b in
            running.count { $0.agentId == agentIds[a] } < running.count { $0.agentId == agentIds[b] }
        })
        let victimTasks = running.filter { $0.agentId == agentIds[victim] }
        try #require(!victimTasks.isEmpty)
        return (cluster, expectedErrors, job, victim, agentIds[victim], victimTasks)
    }

    /// An agent killed with SIGKILL while its tasks run: they become LOST once the agent timeout
    /// has run out (not before), run again on the other agents, and the job finishes with every
    /// part exactly once and grep's count. Its tasks' processes outlive it (as in Mesos); when it
    /// starts again on the same work directory it kills them before it registers.
    @Test func anAgentKilledMidJobLosesItsTasksToTheOthersAndKillsTheirLeftoversWhenItRestarts() throws {
        // Slow tasks, all running at once (up to 8 per agent), so that the killed agent's are caught
        // running and still run when it comes back.
        let (cluster, expectedErrors, job, victim, victimId, victimTasks) = try Self.startSlowJobAndPickVictim(seed: 11)

        let killed = Date()
        cluster.killAgent(victim)
        var orphans = Set<pid_t>()
        for task in victimTasks { orphans.formUnion(cluster.taskProcessIds(ofAgent: victimId, task: task.taskId)) }
        #expect(!orphans.isEmpty, "no process found in the cgroups of \(victimTasks.map(\.taskId))")

        // LOST once the agent timeout ran out since its last heartbeat (at most 1 s before the
        // kill), not before.
        let lostAfter = try secondsUntil(since: killed, timeoutSeconds: Self.agentTimeoutSeconds + 15) {
            let byId = try Self.tasks(cluster, job).byTaskId
            return victimTasks.allSatisfy { byId[$0.taskId]?.state == "TASK_LOST" }
        }
        let lostSeconds = try #require(lostAfter, "the killed agent's tasks were not lost: \(Self.describeTasks(cluster, job))")
        #expect(lostSeconds >= Self.agentTimeoutSeconds - 1.5, "lost \(lostSeconds) s after the kill, before the \(Self.agentTimeoutSeconds) s agent timeout")
        #expect(lostSeconds <= Self.agentTimeoutSeconds + 5, "lost only \(lostSeconds) s after the kill")
        let lost = try Self.tasks(cluster, job).filter { task in victimTasks.contains { $0.taskId == task.taskId } }
        #expect(lost.allSatisfy { $0.reason == "REASON_AGENT_REMOVED" }, "\(lost)")

        // Each lost split runs again, on another agent.
        let rerun = try secondsUntil(timeoutSeconds: 20, intervalSeconds: 0.2) {
            let tasks = try Self.tasks(cluster, job)
            return victimTasks.allSatisfy { old in
                tasks.contains { $0.index == old.index && $0.attempt > old.attempt && ["TASK_RUNNING", "TASK_FINISHED"].contains($0.state) }
            }
        }
        #expect(rerun != nil, "the lost tasks did not run again: \(Self.describeTasks(cluster, job))")
        for old in victimTasks {
            let later = try Self.tasks(cluster, job).filter { $0.index == old.index && $0.attempt > old.attempt }
            #expect(!later.isEmpty && later.allSatisfy { $0.agentId != victimId }, "split \(old.index) ran again on \(later.map(\.agentId))")
        }

        // The orphans still run (their sleep is not over); the agent started again kills them.
        let aliveBeforeRestart = orphans.filter(isAlive)
        #expect(!aliveBeforeRestart.isEmpty, "the killed agent's tasks ended on their own before it restarted")
        try cluster.startAgent(victim)
        let survivors = orphans.filter(isAlive)
        #expect(survivors.isEmpty, "processes of tasks the killed agent left still run after it restarted: \(survivors.sorted())")
        let leftCgroups = cluster.taskCgroups(ofAgent: victimId).intersection(victimTasks.map(\.taskId))
        #expect(leftCgroups.isEmpty, "cgroups of the killed agent's tasks remain: \(leftCgroups.sorted())")
        #expect(cluster.logText(cluster.agentSlots[victim].log, from: 0).contains("killed a leftover task"))

        let done = try Self.waitForJob(cluster, job, timeoutSeconds: 60)
        #expect(done["state"] as? String == "FINISHED", "\(done)")
        try Self.expectOutput(cluster, job: job, output: "/user/nobody/errors", errors: expectedErrors)
    }

    /// The master killed with SIGKILL mid-job and started again on the same port: it replays its
    /// state from the DFS (/system/master), the agents register again with what their tasks did
    /// meanwhile (tasks that finished while it was down included), and the job finishes under the
    /// same id with every part exactly once; the next job gets a new id.
    @Test func theMasterKilledMidJobAndRestartedFinishesTheJobWithEachPartOnce() throws {
        let (cluster, expectedErrors) = try Self.startCluster(seed: 12)
        // Two tasks per agent at a time: the job runs in two rounds.
        let job = try Self.submit(cluster, command: "sleep 2; grep -c ERROR", output: "/user/nobody/errors", cpus: 1)
        let started = try secondsUntil(timeoutSeconds: 30, intervalSeconds: 0.1) {
            try Self.tasks(cluster, job).contains { $0.state == "TASK_RUNNING" }
        }
        try #require(started != nil, "no task of the job ran within 30 s")
        cluster.killMaster()
        let partsAtKill = try Self.outputNames(cluster, "/user/nobody/errors").filter { $0.hasPrefix("part-") }
        #expect(partsAtKill.count < Self.blocks)

        // Tasks finish and commit their parts while the master is down.
        let committedMeanwhile = try secondsUntil(timeoutSeconds: 20, intervalSeconds: 0.2) {
            try Self.outputNames(cluster, "/user/nobody/errors").filter { $0.hasPrefix("part-") }.count > partsAtKill.count
        }
        #expect(committedMeanwhile != nil, "no task committed its part while the master was down")
        let restarted = Date()
        try cluster.startMaster()
        let recovered = try cluster.callMaster("GET", "/api/v1/jobs/\(job)")
        #expect(recovered.status == 200, "the job is unknown to the restarted master: \(recovered.text)")

        let done = try Self.waitForJob(cluster, job, timeoutSeconds: 60)
        #expect(done["state"] as? String == "FINISHED", "\(done)")
        #expect(done["id"] as? String == job)
        print("the job finished \(String(format: "%.1f", Date().timeIntervalSince(restarted))) s after the master restarted")
        try Self.expectOutput(cluster, job: job, output: "/user/nobody/errors", errors: expectedErrors)

        // `strata job status` shows every task finished.
        let status = try cluster.run(["job", "status", job, "--master", "127.0.0.1:\(cluster.masterPort)"])
        #expect(status.status == 0, "\(status.error)")
        #expect(status.output.contains("\(job) FINISHED"), "\(status.output)")
        #expect(status.output.contains("\(Self.blocks)/\(Self.blocks) finished"), "\(status.output)")

        // The job counter survived too: the next job does not reuse the id.
        let next = try Self.submit(cluster, command: "grep -c ERROR", output: "/user/nobody/errors-2", cpus: 1)
        #expect(next != job)
        let nextDone = try Self.waitForJob(cluster, next, timeoutSeconds: 60)
        #expect(nextDone["state"] as? String == "FINISHED", "\(nextDone)")
    }

    /// An agent that stops answering (SIGSTOP) past the agent timeout while its tasks run: the
    /// master gives its tasks up and runs them elsewhere. When the agent comes back
    /// (SIGCONT) with those tasks still running, the master tells it to kill them, so no split
    /// goes on running twice, and each part is committed once.
    @Test func anAgentBackFromSilenceIsToldToKillTheTasksTheMasterGaveUpOn() throws {
        let (cluster, expectedErrors, job, victim, victimId, victimTasks) = try Self.startSlowJobAndPickVictim(seed: 13)

        cluster.pauseAgent(victim)
        var processes = Set<pid_t>()
        for task in victimTasks { processes.formUnion(cluster.taskProcessIds(ofAgent: victimId, task: task.taskId)) }
        #expect(!processes.isEmpty)
        let gaveUp = try secondsUntil(timeoutSeconds: Self.agentTimeoutSeconds + 15, intervalSeconds: 0.2) {
            let tasks = try Self.tasks(cluster, job)
            return victimTasks.allSatisfy { old in
                tasks.contains { $0.index == old.index && $0.attempt > old.attempt && ["TASK_RUNNING", "TASK_FINISHED"].contains($0.state) }
            }
        }
        #expect(gaveUp != nil, "the silent agent's tasks did not run again elsewhere: \(Self.describeTasks(cluster, job))")
        #expect(processes.contains(where: isAlive), "the silent agent's tasks ended before it came back")

        let resumed = Date()
        cluster.resumeAgent(victim)
        // Killed on the master's word: SIGTERM, then SIGKILL after the agent's 3 s grace.
        let killedAfter = secondsUntil(since: resumed, timeoutSeconds: 15, intervalSeconds: 0.1) { !processes.contains(where: isAlive) }
        #expect(killedAfter != nil, "tasks the master gave up on still run on the agent: \(processes.filter(isAlive).sorted())")
        // The agent itself says they were killed.
        var statuses: [[String: Any]] = []
        let reportedKilled = try secondsUntil(timeoutSeconds: 10, intervalSeconds: 0.2) {
            let agentState = try httpCall("GET", port: cluster.agentSlots[victim].port, "/state")
            statuses = (try JSONSerialization.jsonObject(with: agentState.body) as? [String: Any])?["tasks"] as? [[String: Any]] ?? []
            return victimTasks.allSatisfy { task in
                statuses.contains { $0["taskId"] as? String == task.taskId && $0["state"] as? String == "TASK_KILLED" }
            }
        }
        #expect(reportedKilled != nil, "the agent's tasks: \(statuses)")

        let done = try Self.waitForJob(cluster, job, timeoutSeconds: 60)
        #expect(done["state"] as? String == "FINISHED", "\(done)")
        try Self.expectOutput(cluster, job: job, output: "/user/nobody/errors", errors: expectedErrors)
        // The given-up attempts stay LOST at the master; none of them finished.
        let final = try Self.tasks(cluster, job).byTaskId
        for task in victimTasks { #expect(final[task.taskId]?.state == "TASK_LOST", "\(final[task.taskId].map { "\($0)" } ?? "")") }
    }

    /// An agent killed with SIGKILL and started again at once, well within the agent timeout
    /// (10 s here), while its tasks run: on start it kills what its earlier run left running, and
    /// it registers without those tasks, so the master marks them LOST at once and runs them
    /// again. No split runs twice and each part is committed once.
    @Test func anAgentRestartedWhileItsTasksRunKillsThemAndTheMasterRunsThemAgain() throws {
        let timeout = 10.0
        let (cluster, expectedErrors) = try Self.startCluster(seed: 14, agentTimeoutSeconds: timeout)
        let job = try Self.submit(cluster, command: "sleep 8; grep -c ERROR", output: "/user/nobody/errors", cpus: 0.25)
        let placed = try secondsUntil(timeoutSeconds: 30, intervalSeconds: 0.2) {
            try Self.tasks(cluster, job).filter { $0.state == "TASK_RUNNING" }.count == Self.blocks
        }
        try #require(placed != nil, "the job's tasks were not all running within 30 s: \(Self.describeTasks(cluster, job))")
        let victim = 0
        let victimId = try cluster.agentId(victim)
        let victimTasks = try Self.tasks(cluster, job).filter { $0.agentId == victimId }
        try #require(!victimTasks.isEmpty, "no task on agent 1: \(Self.describeTasks(cluster, job))")

        let killed = Date()
        cluster.killAgent(victim)
        var orphans = Set<pid_t>()
        for task in victimTasks { orphans.formUnion(cluster.taskProcessIds(ofAgent: victimId, task: task.taskId)) }
        #expect(!orphans.isEmpty, "no process found in the cgroups of \(victimTasks.map(\.taskId))")
        try cluster.startAgent(victim)
        let restartSeconds = Date().timeIntervalSince(killed)
        let survivors = orphans.filter(isAlive)
        #expect(survivors.isEmpty, "processes of the agent's earlier run still run after it restarted: \(survivors.sorted())")

        // Lost on the registration, not by the timeout.
        let lostAfter = try secondsUntil(since: killed, timeoutSeconds: timeout) {
            let byId = try Self.tasks(cluster, job).byTaskId
            return victimTasks.allSatisfy { byId[$0.taskId]?.state == "TASK_LOST" }
        }
        let lostSeconds = try #require(lostAfter, "the restarted agent's old tasks were not lost: \(Self.describeTasks(cluster, job))")
        #expect(lostSeconds < timeout - 2, "lost \(lostSeconds) s after the kill (restarted after \(restartSeconds) s)")
        let lost = try Self.tasks(cluster, job).filter { task in victimTasks.contains { $0.taskId == task.taskId } }
        #expect(lost.allSatisfy { $0.reason == "REASON_AGENT_RESTARTED" }, "\(lost)")

        let done = try Self.waitForJob(cluster, job, timeoutSeconds: 60)
        #expect(done["state"] as? String == "FINISHED", "\(done)")
        try Self.expectOutput(cluster, job: job, output: "/user/nobody/errors", errors: expectedErrors)
        let rerun = try Self.tasks(cluster, job).filter { task in victimTasks.contains { $0.index == task.index && task.attempt > $0.attempt } }
        #expect(rerun.count == victimTasks.count && rerun.allSatisfy { $0.state == "TASK_FINISHED" }, "\(rerun)")
    }

    // MARK: - Helpers

    /// A task attempt as `GET /api/v1/tasks?job=` shows it.
    struct TaskRecord: CustomStringConvertible {
        var taskId: String
        var index: Int
        var attempt: Int
        var agentId: String
        var state: String
        var reason: String?
        var message: String?
        var description: String { "\(taskId) \(state) on \(agentId)\(reason.map { " (\($0))" } ?? "")" }
    }

    /// The cluster with logs for `nobody` in its DFS and the compute side started; returns grep's
    /// count of ERROR lines over the logs.
    static func startCluster(seed: Int, agentTimeoutSeconds: Double = agentTimeoutSeconds) throws -> (ProcessCluster, Int) {
        let cluster = try ProcessCluster(dataNodes: 3)
        try cluster.waitUntilReady(dataNodes: 3)
        for arguments in [["dfs", "mkdir", "-p", "/user/\(taskUser)"], ["dfs", "chown", "\(taskUser):\(taskUser)", "/user/\(taskUser)"]] {
            let result = try cluster.run(arguments)
            try #require(result.status == 0, "\(arguments): \(result.error)")
        }
        let local = cluster.directory + "/access.log"
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        try runTool("/usr/bin/env", ["python3", root.path + "/tools/make-logs.py", local, "3", "\(seed)"])
        let errors = try #require(Int(try runTool("/bin/grep", ["-c", "ERROR", local]).trimmingCharacters(in: .whitespacesAndNewlines)))
        let put = try cluster.run(["dfs", "put", "-D", "dfs.blocksize=256k", local, input], user: taskUser)
        try #require(put.status == 0, "put: \(put.error)")
        try cluster.startCompute(agentTimeoutSeconds: agentTimeoutSeconds)
        return (cluster, errors)
    }

    /// Runs a program to its end and returns its standard output; throws unless it exits 0.
    @discardableResult
    static func runTool(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ProcessClusterError(message: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Submits `sh -c COMMAND` over the logs as `nobody`; returns the job's id.
    static func submit(_ cluster: ProcessCluster, command: String, output: String, cpus: Double) throws -> String {
        let submission: [String: Any] = [
            "arguments": ["sh", "-c", command], "inputs": [input], "output": output, "cpus": cpus, "memMB": 64,
        ]
        let reply = try cluster.callMaster("POST", "/api/v1/jobs", user: taskUser, body: submission)
        try #require(reply.status == 201, "submit answered \(reply.status): \(reply.text)")
        let job = try #require(reply.json as? [String: Any])
        #expect(job["tasks"] as? Int == blocks, "\(job)")
        return try #require(job["id"] as? String)
    }

    static func tasks(_ cluster: ProcessCluster, _ job: String) throws -> [TaskRecord] {
        let reply = try cluster.callMaster("GET", "/api/v1/tasks?job=\(job)")
        guard reply.status == 200, let views = reply.json as? [[String: Any]] else {
            throw ProcessClusterError(message: "task list answered \(reply.status): \(reply.text)")
        }
        return try views.map { view in
            guard let attempt = view["attempt"] as? [String: Any], let taskId = attempt["taskId"] as? String,
                  let index = attempt["index"] as? Int, let number = attempt["attempt"] as? Int,
                  let agentId = attempt["agentId"] as? String, let state = attempt["state"] as? String
            else { throw ProcessClusterError(message: "not a task view: \(view)") }
            return TaskRecord(
                taskId: taskId, index: index, attempt: number, agentId: agentId, state: state, reason: attempt["reason"] as? String,
                message: attempt["message"] as? String)
        }
    }

    /// The job's attempts, for failure messages.
    static func describeTasks(_ cluster: ProcessCluster, _ job: String) -> String {
        ((try? tasks(cluster, job)) ?? []).map(\.description).joined(separator: "\n")
    }

    /// Polls the job until it has ended; returns how the API shows it.
    static func waitForJob(_ cluster: ProcessCluster, _ job: String, timeoutSeconds: Double) throws -> [String: Any] {
        var view: [String: Any] = [:]
        let ended = try secondsUntil(timeoutSeconds: timeoutSeconds, intervalSeconds: 0.2) {
            let reply = try cluster.callMaster("GET", "/api/v1/jobs/\(job)")
            view = (reply.json as? [String: Any])?["job"] as? [String: Any] ?? [:]
            return ["FINISHED", "FAILED", "KILLED"].contains(view["state"] as? String ?? "")
        }
        if ended == nil {
            Issue.record("job \(job) did not end within \(timeoutSeconds) s: \(view)\n\(describeTasks(cluster, job))\nmaster log:\n\(cluster.logTail("master.log"))")
        }
        return view
    }

    /// The names in a DFS directory, from `dfs ls` (its last column is the path).
    static func outputNames(_ cluster: ProcessCluster, _ directory: String) throws -> [String] {
        let listing = try cluster.run(["dfs", "ls", directory])
        guard listing.status == 0 else { return [] }
        return listing.output.split(separator: "\n").compactMap { line in
            guard let path = line.split(separator: " ").last, path.hasPrefix("/") else { return nil }
            return (String(path) as NSString).lastPathComponent
        }
    }

    /// A finished job's output: `_SUCCESS`, one part per block and nothing else (no
    /// `_temporary`), the parts adding up to grep's count; and each split finished by exactly one
    /// attempt, none of whose output was dropped as a duplicate.
    static func expectOutput(_ cluster: ProcessCluster, job: String, output: String, errors: Int) throws {
        let parts = (0..<blocks).map { "part-" + String(repeating: "0", count: 5 - String($0).count) + String($0) }
        let names = try outputNames(cluster, output)
        #expect(names.sorted() == (parts + ["_SUCCESS"]).sorted(), "\(output) holds \(names.sorted())")
        let cat = try cluster.run(["dfs", "cat"] + parts.map { output + "/" + $0 }, user: taskUser)
        #expect(cat.status == 0, "\(cat.error)")
        let counts = cat.output.split(separator: "\n").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        #expect(counts.count == blocks && counts.allSatisfy { $0 != nil }, "the parts hold \(cat.output)")
        #expect(counts.compactMap { $0 }.reduce(0, +) == errors, "the parts add up to \(counts), grep says \(errors)")
        let attempts = try tasks(cluster, job)
        for index in 0..<blocks {
            let finished = attempts.filter { $0.index == index && $0.state == "TASK_FINISHED" }
            #expect(finished.count == 1, "split \(index) finished \(finished.count) times: \(finished)")
        }
        let dropped = attempts.filter { $0.message?.contains("dropped") ?? false }
        #expect(dropped.isEmpty, "attempts whose output was a duplicate: \(dropped)")
    }
}

extension Array where Element == ComputeProcessTests.TaskRecord {
    var byTaskId: [String: ComputeProcessTests.TaskRecord] {
        Dictionary(map { ($0.taskId, $0) }, uniquingKeysWith: { $1 })
    }
}
