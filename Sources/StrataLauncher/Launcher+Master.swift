import AsyncHTTPClient
import Foundation
import NIOHTTP1
import StrataApps
import StrataCompute
import StrataCore
import StrataHTTP

extension Launcher {
    var masterURL: String { "http://\(configuration.masterAddress)" }

    func callMaster<Reply: Decodable>(_ method: HTTPMethod, _ path: String, user: String? = nil, body: (some Encodable)? = nil as String?, timeoutSeconds: Int64 = 10) async throws -> Reply {
        var url = masterURL + path
        if let user { url += (path.contains("?") ? "&" : "?") + "user.name=" + (user.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? user) }
        return try await JSONClient.call(http, method, url: url, body: body, token: configuration.token, timeoutSeconds: timeoutSeconds)
    }

    // MARK: - Launching and killing

    /// The service task an instance of `app` runs as: its command (a shell command or an
    /// argument vector), the app's environment and Marathon's variables (the agent adds
    /// `PORT0`.., `PORT`, `PORTS` and `HOST`), its resources and constraints, one port per port
    /// definition, and labels naming the launcher, app, version and instance.
    func submission(for instanceId: String, app: AppDefinition) -> ComputeAPI.JobSubmission {
        var arguments: [String] = []
        if let cmd = app.cmd { arguments = ["/bin/sh", "-c", cmd] } else if let args = app.args { arguments = args }
        var submission = ComputeAPI.JobSubmission(arguments: arguments, inputs: [], output: "")
        var environment = app.taskEnvironment(instanceId: instanceId, host: "", ports: [])
        environment["HOST"] = nil
        submission.environment = environment
        submission.cpus = app.cpus
        submission.memMB = app.mem
        submission.diskMB = app.disk
        submission.maxAttempts = 1
        submission.constraints = app.constraints.isEmpty ? nil : app.constraints
        // An app's instances are one group to its constraints (UNIQUE counts them all).
        submission.placementGroup = "\(configuration.name):\(app.id)"
        submission.image = app.container?.docker?.image
        submission.service = ServiceTask(portCount: app.portDefinitions.count, labels: [
            TaskLabels.launcher: configuration.name, TaskLabels.app: app.id.description,
            TaskLabels.version: app.configVersion?.description ?? "", TaskLabels.instance: instanceId,
        ])
        // A COMMAND check runs beside the task, on its agent (as Mesos runs it).
        submission.service?.healthCheck = app.commandHealthCheck?.check
        return submission
    }

    func launch(_ instanceId: String, app: AppDefinition) async {
        // An instance that ended (or is being killed) before its launch came up is not started.
        guard state.withLock({ $0.instances[instanceId].map { !$0.isBeingKilled } ?? false }) else { return }
        do {
            let job: ComputeAPI.JobView = try await callMaster(
                .POST, "/api/v1/jobs", user: app.user ?? configuration.taskUser, body: submission(for: instanceId, app: app))
            tasks.withLock { $0[instanceId] = MasterTask(jobId: job.id) }
            counters.count { $0.launches += 1 }
            logger.info("instance submitted", metadata: ["instance": "\(instanceId)", "job": "\(job.id)"])
            if pendingKills.withLock({ $0.remove(instanceId) }) != nil { await killJob(job.id, instanceId: instanceId) }
        } catch {
            logger.warning("the master did not take an instance", metadata: ["instance": "\(instanceId)", "error": "\(error)"])
            counters.count { $0.launchesRefused += 1 }
            // The instance failed to start: it counts for the backoff, and is replaced after it.
            let change = InstanceChange(instanceId: instanceId, state: .failed, atMs: clock.wallTimeMs, message: "\(error)")
            _ = try? await handle { state, now, wall in (state.instanceUpdate(change, now: now, wallTimeMs: wall), ()) }
        }
    }

    func kill(_ instanceId: String, reason: KillReason) async {
        guard let jobId = tasks.withLock({ $0[instanceId]?.jobId }) else {
            pendingKills.withLock { _ = $0.insert(instanceId) }
            return
        }
        logger.info("killing an instance", metadata: ["instance": "\(instanceId)", "reason": "\(reason.rawValue)"])
        await killJob(jobId, instanceId: instanceId)
    }

    func killJob(_ jobId: String, instanceId: String) async {
        counters.count { $0.kills += 1 }
        do {
            let _: ComputeAPI.JobView = try await callMaster(.POST, "/api/v1/jobs/\(jobId)/kill", user: configuration.superuser)
        } catch {
            logger.warning("could not kill an instance's task", metadata: ["instance": "\(instanceId)", "job": "\(jobId)", "error": "\(error)"])
        }
    }

    // MARK: - Following the master

    /// Watches the master's service tasks with the launcher's label. The first listing (every
    /// such task, ended or not) adopts what a previous run started: instances of the replayed
    /// state are matched to their tasks by label, and an instance with no task at all (logged
    /// but never submitted) is taken as lost. Then only active tasks are watched; one that
    /// leaves the list is looked up for how it ended.
    func watchLoop() async {
        let label = "\(TaskLabels.launcher)=\(configuration.name)"
        var version: UInt64?
        while !Task.isCancelled {
            do {
                if version == nil {
                    // The instances of the replayed state: those created from now on are not
                    // submitted before adoption ends, so they cannot be missing from the master.
                    let replayed = state.withLock { Set($0.instances.keys) }
                    let list: ComputeAPI.ServiceList = try await callMaster(.GET, "/api/v1/services?label=\(encode(label))")
                    await adopt(list, replayed: replayed)
                    version = list.stateVersion
                    adopted.resolve(())
                    continue
                }
                let path = "/api/v1/services?label=\(encode(label))&active=true&changedAfter=\(version!)&waitMs=\(configuration.watchWaitMs)"
                let list: ComputeAPI.ServiceList = try await callMaster(.GET, path, timeoutSeconds: configuration.watchWaitMs / 1000 + 10)
                version = list.stateVersion
                await observe(list.services, all: false)
            } catch {
                if Task.isCancelled { return }
                logger.warning("watching the master's service tasks failed; trying again", metadata: ["error": "\(error)"])
                try? await clock.sleep(milliseconds: 500)
            }
        }
    }

    func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// Takes in the first listing after a start: the newest task of each instance.
    func adopt(_ list: ComputeAPI.ServiceList, replayed: Set<String>) async {
        var newest: [String: ComputeAPI.ServiceView] = [:]
        for service in list.services {
            guard let instanceId = service.job.service?.labels[TaskLabels.instance] else { continue }
            if let known = newest[instanceId], known.job.submittedAtMs > service.job.submittedAtMs { continue }
            newest[instanceId] = service
        }
        await observe(Array(newest.values), all: true)
        // Instances logged as launched whose task never reached the master.
        let missing = replayed.filter { newest[$0] == nil }
        await apply(missing.sorted().map { instanceId in
            InstanceChange(instanceId: instanceId, state: .lost, atMs: clock.wallTimeMs, message: "no task in the master")
        })
        let count = newest.values.count { !$0.job.state.isTerminal }
        logger.info("launcher adopted the master's running instances", metadata: ["running": "\(count)"])
    }

    /// Turns what the master shows of service tasks into instance updates. With `all` false the
    /// list holds only active tasks, and known tasks missing from it are looked up.
    func observe(_ services: [ComputeAPI.ServiceView], all: Bool) async {
        var seen = Set<String>()
        var changes: [InstanceChange] = []
        // COMMAND check results from the agents, taken in once the changes (an instance now
        // running) are on the state.
        var agentReports: [(instanceId: String, taskId: String, healthy: Bool, message: String?)] = []
        for service in services {
            guard let instanceId = service.job.service?.labels[TaskLabels.instance] else { continue }
            seen.insert(instanceId)
            let known = tasks.withLock { tasks -> Bool in
                let isNewer = tasks[instanceId].map { $0.jobId == service.job.id || Self.jobNumber($0.jobId) < Self.jobNumber(service.job.id) } ?? true
                guard isNewer else { return false }
                tasks[instanceId] = MasterTask(jobId: service.job.id, taskId: service.task?.attempt.taskId, agentAddress: service.task?.agentAddress)
                return true
            }
            guard known else { continue }
            if pendingKills.withLock({ $0.remove(instanceId) }) != nil {
                await killJob(service.job.id, instanceId: instanceId)
            }
            if let change = change(of: instanceId, service.job, service.task) { changes.append(change) }
            if let attempt = service.task?.attempt, attempt.state == .running, let healthy = attempt.healthy {
                agentReports.append((instanceId, attempt.taskId, healthy, attempt.message))
            }
        }
        await apply(changes)
        for report in agentReports {
            await agentHealth(report.instanceId, taskId: report.taskId, healthy: report.healthy, message: report.message)
        }
        if all { return }
        let activeTasks = Set(services.compactMap { $0.task?.attempt.taskId })
        agentReportedHealth.withLock { seen in seen = seen.filter { activeTasks.contains($0.key) } }
        changes = []
        // Tasks that left the active list: how did they end?
        let gone = tasks.withLock { tasks in tasks.filter { !seen.contains($0.key) } }
        for (instanceId, task) in gone {
            do {
                let detail: ComputeAPI.JobDetail = try await callMaster(.GET, "/api/v1/jobs/\(task.jobId)")
                guard detail.job.state.isTerminal else { continue }
                // A killed job leaves the active list at once, its task possibly still shown
                // running until the agent reports it: the job's end is the instance's then.
                var last = detail.tasks.last
                if let attempt = last?.attempt, !attempt.state.isTerminal { last = nil }
                if let change = change(of: instanceId, detail.job, last) { changes.append(change) }
                tasks.withLock { tasks in if tasks[instanceId]?.jobId == task.jobId { tasks[instanceId] = nil } }
            } catch let error as APIError where error.status == .notFound {
                tasks.withLock { tasks in if tasks[instanceId]?.jobId == task.jobId { tasks[instanceId] = nil } }
                changes.append(InstanceChange(instanceId: instanceId, state: .lost, atMs: clock.wallTimeMs, message: "its job is gone from the master"))
            } catch {
                logger.warning("could not look up an ended task", metadata: ["job": "\(task.jobId)", "error": "\(error)"])
            }
        }
        await apply(changes)
        stateChanges.signal()
    }

    /// Takes in what an instance's agent says of its COMMAND check, when it changed.
    func agentHealth(_ instanceId: String, taskId: String, healthy: Bool, message: String?) async {
        let changed = agentReportedHealth.withLock { seen -> Bool in
            guard seen[taskId] != healthy else { return false }
            seen[taskId] = healthy
            return true
        }
        guard changed else { return }
        _ = try? await handle { state, now, wall -> (LauncherState.Outcome, Void) in
            guard let appId = state.instances[instanceId]?.appId, let index = state.apps[appId]?.commandHealthCheck?.index else {
                return (LauncherState.Outcome(), ())
            }
            return (state.healthResult(
                instanceId: instanceId, checkIndex: index, passed: healthy, cause: healthy ? nil : message, byAgent: true, now: now, wallTimeMs: wall), ())
        }
    }

    /// Runs a batch of instance changes (one watch answer's) on the state as one event, so their
    /// records are made durable together: one `hsync` for a hundred instances starting, rather
    /// than a hundred one after another.
    func apply(_ changes: [InstanceChange]) async {
        guard !changes.isEmpty else { return }
        _ = try? await handle { state, now, wall in
            var outcome = LauncherState.Outcome()
            for change in changes {
                let more = state.instanceUpdate(change, now: now, wallTimeMs: wall)
                outcome.records += more.records
                outcome.actions += more.actions
            }
            return (outcome, ())
        }
    }

    static func jobNumber(_ jobId: String) -> Int {
        Int(jobId.split(separator: "-").last ?? "") ?? 0
    }

    /// An instance's change as its task shows it: the attempt's state, agent and ports; with no
    /// attempt yet, staging (or the job's end, for a job that ended before it was placed).
    func change(of instanceId: String, _ job: ComputeAPI.JobView, _ task: ComputeAPI.TaskView?) -> InstanceChange? {
        let wall = clock.wallTimeMs
        guard let task else {
            switch job.state {
            case .failed: return InstanceChange(instanceId: instanceId, state: .failed, atMs: wall, message: job.message)
            case .killed: return InstanceChange(instanceId: instanceId, state: .killed, atMs: wall, message: job.message)
            case .finished: return InstanceChange(instanceId: instanceId, state: .finished, atMs: wall, message: job.message)
            default: return nil
            }
        }
        let attempt = task.attempt
        let host = task.agentAddress.map { address in
            address.lastIndex(of: ":").map { String(address[..<$0]) } ?? address
        }
        // Killed by its agent for failing its COMMAND check: a failure, which counts towards
        // the app's backoff as health kills do.
        let killedUnhealthy = attempt.state == .killed && attempt.reason == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
        return InstanceChange(
            instanceId: instanceId, state: killedUnhealthy ? .failed : attempt.state, agentId: attempt.agentId, host: host, ports: attempt.ports ?? [],
            atMs: attempt.endedAtMs ?? attempt.runningAtMs ?? attempt.stagedAtMs, message: attempt.message)
    }
}

extension AppDefinition {
    /// The app's COMMAND health check (at most one: validation allows one Mesos-level check) as
    /// its agent runs it, with its index among the app's checks.
    var commandHealthCheck: (index: Int, check: CommandHealthCheck)? {
        guard let index = healthChecks.firstIndex(where: { $0.protocol == .command }) else { return nil }
        let check = healthChecks[index]
        return (index, CommandHealthCheck(
            command: check.command ?? "", gracePeriodMs: Int64(check.gracePeriodSeconds) * 1000, intervalMs: Int64(check.intervalSeconds) * 1000,
            timeoutMs: Int64(check.timeoutSeconds) * 1000, delayMs: Int64(check.delaySeconds) * 1000,
            maxConsecutiveFailures: check.maxConsecutiveFailures))
    }
}
