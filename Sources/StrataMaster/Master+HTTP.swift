import Foundation
import Hummingbird
import StrataCompute
import StrataCore
import StrataHTTP

extension Master {
    /// The master's HTTP API (JSON):
    ///
    /// - `GET /health`; `GET /metrics` (Prometheus); `GET /master/state` (Mesos-like summary)
    /// - `POST /api/v1/agents` register, `POST /api/v1/agents/{id}/heartbeat`,
    ///   `POST /api/v1/agents/{id}/status`, `POST /api/v1/agents/{id}/statuses` (agents);
    ///   `GET /api/v1/agents`
    /// - `POST /api/v1/jobs` submit, `GET /api/v1/jobs`, `GET /api/v1/jobs/{id}[?changedAfter=V&waitMs=N]`
///   (a watch: answered at the next change of state after version V), `POST /api/v1/jobs/{id}/kill`
    /// - `GET /api/v1/tasks[?job=ID]`, `GET /api/v1/tasks/{id}`, `POST /api/v1/tasks/{id}/kill`
    /// - `GET /api/v1/services[?label=K=V][&active=true][&changedAfter=V&waitMs=N]` (service tasks)
    ///
    /// Calls that act for a user take `?user.name=`. With a cluster secret, every call needs
    /// `Authorization: Bearer <secret>` (401 otherwise, with nothing done).
    public func respond(to request: Request) async -> Response {
        let call = APIRequest(request)
        do {
            try call.requireSecret(configuration.token, service: "master")
            return try await route(call, request)
        } catch {
            return JSONAPI.error(error)
        }
    }

    func route(_ call: APIRequest, _ request: Request) async throws -> Response {
        let path = call.components
        if call.match(.get, "health") != nil {
            return JSONAPI.response(["status": "ok"])
        } else if call.match(.get, "metrics") != nil {
            return JSONAPI.bytes(Array(metricsText().utf8), contentType: "text/plain; version=0.0.4")
        } else if call.match(.get, "master/state") != nil {
            return JSONAPI.response(stateSummary())
        } else if call.match(.post, "api/v1/agents") != nil {
            let registration = try await JSONAPI.decode(ComputeAPI.Registration.self, from: request)
            try await handle { state, now, wall in
                (state.register(registration.agent, running: registration.tasks, now: now, wallTimeMs: wall), ())
            }
            placementWanted.signal()
            agentRegistrations.signal()
            logger.info("agent registered", metadata: ["agent": "\(registration.agent.id)", "address": "\(registration.agent.address)"])
            return JSONAPI.response(["agentId": registration.agent.id])
        } else if let agentId = call.match(.post, "api/v1/agents/*/heartbeat")?.first {
            let heartbeat = try await JSONAPI.decode(ComputeAPI.Heartbeat.self, from: request)
            let known = try await handle { state, now, wall -> (MasterState.Outcome, Bool) in
                guard let outcome = state.heartbeat(agentId: agentId, running: heartbeat.tasks, now: now, wallTimeMs: wall) else {
                    return (MasterState.Outcome(), false)
                }
                return (outcome, true)
            }
            return JSONAPI.response(ComputeAPI.HeartbeatReply(reregister: !known))
        } else if let agentId = call.match(.post, "api/v1/agents/*/statuses")?.first {
            // Every state an agent changed since its last report, in one handling and one log
            // write: a burst of tasks starting at one instant costs one call, not one each.
            let reports = try await JSONAPI.decode(ComputeAPI.StatusReports.self, from: request)
            guard reports.statuses.count <= ComputeAPI.StatusReports.maximumCount else {
                throw APIError.badRequest("a status report carries at most \(ComputeAPI.StatusReports.maximumCount) statuses, not \(reports.statuses.count)")
            }
            try await handle { state, now, wall in (state.statusUpdates(agentId: agentId, reports.statuses, now: now, wallTimeMs: wall), ()) }
            return JSONAPI.response(["acknowledged": "\(reports.statuses.count)"])
        } else if let agentId = call.match(.post, "api/v1/agents/*/status")?.first {
            let status = try await JSONAPI.decode(TaskStatus.self, from: request)
            try await handle { state, now, wall in (state.statusUpdate(agentId: agentId, status, now: now, wallTimeMs: wall), ()) }
            return JSONAPI.response(["acknowledged": status.taskId])
        } else if call.match(.get, "api/v1/agents") != nil {
            let now = clock.now
            return JSONAPI.response(state.withLock { $0.agentViews(now: now) })
        } else if call.match(.post, "api/v1/jobs") != nil {
            guard let user = call.user else { throw APIError(.unauthorized, "a job needs a user: ?user.name=NAME") }
            let submission = try await JSONAPI.decode(ComputeAPI.JobSubmission.self, from: request)
            let (view, created) = try await submit(submission, user: user)
            if created {
                logger.info("job submitted", metadata: ["job": "\(view.id)", "user": "\(user)", "tasks": "\(view.tasks)"])
            }
            return JSONAPI.response(view, status: created ? .created : .ok)
        } else if call.match(.get, "api/v1/jobs") != nil {
            let (label, activeOnly) = try Self.jobFilter(call)
            return JSONAPI.response(state.withLock { $0.jobViews(label: label, activeOnly: activeOnly) })
        } else if call.match(.get, "api/v1/jobs/watch") != nil {
            try await watchIfAsked(call)
            let (label, activeOnly) = try Self.jobFilter(call)
            let version = stateChanges.count
            let jobs = state.withLock { $0.jobViews(label: label, activeOnly: activeOnly) }
            return JSONAPI.response(ComputeAPI.JobList(stateVersion: version, jobs: jobs))
        } else if let jobId = call.match(.get, "api/v1/jobs/*")?.first {
            try await watchIfAsked(call)
            let version = stateChanges.count
            let detail = state.withLock { state -> ComputeAPI.JobDetail? in
                guard let job = state.view(ofJob: jobId) else { return nil }
                return ComputeAPI.JobDetail(job: job, tasks: state.attempts(ofJob: jobId).map { state.view(ofTask: $0) }, stateVersion: version)
            }
            guard let detail else { throw APIError.notFound("no job \(jobId)") }
            return JSONAPI.response(detail)
        } else if call.match(.get, "api/v1/services") != nil {
            try await watchIfAsked(call)
            let (label, activeOnly) = try Self.jobFilter(call)
            let version = stateChanges.count
            let services = state.withLock { $0.serviceViews(label: label, activeOnly: activeOnly) }
            return JSONAPI.response(ComputeAPI.ServiceList(stateVersion: version, services: services))
        } else if let jobId = call.match(.post, "api/v1/jobs/*/kill")?.first ?? call.match(.delete, "api/v1/jobs/*")?.first {
            let owner = state.withLock { $0.jobs[jobId]?.spec.user }
            guard let owner else { throw APIError.notFound("no job \(jobId)") }
            try authorize(call, owner: owner, what: "job \(jobId)")
            try await handle { state, now, wall in (state.killJob(jobId, now: now, wallTimeMs: wall), ()) }
            return JSONAPI.response(state.withLock { $0.view(ofJob: jobId) })
        } else if call.match(.get, "api/v1/tasks") != nil {
            let job = call.query["job"]
            return JSONAPI.response(state.withLock { state in
                let attempts = job.map { state.attempts(ofJob: $0) }
                    ?? state.jobOrder.flatMap { state.attempts(ofJob: $0) }
                return attempts.map { state.view(ofTask: $0) }
            })
        } else if let taskId = call.match(.get, "api/v1/tasks/*")?.first {
            let view = state.withLock { state in state.attempts[taskId].map { state.view(ofTask: $0) } }
            guard let view else { throw APIError.notFound("no task \(taskId)") }
            return JSONAPI.response(view)
        } else if let taskId = call.match(.post, "api/v1/tasks/*/kill")?.first {
            let (owner, action) = state.withLock { state in (state.attempts[taskId]?.user, state.killTask(taskId)) }
            guard let owner else { throw APIError.notFound("no task \(taskId)") }
            try authorize(call, owner: owner, what: "task \(taskId)")
            guard let action else { throw APIError.conflict("task \(taskId) is not running") }
            perform([action])
            return JSONAPI.response(["killing": taskId] as [String: String])
        } else {
            throw APIError.notFound("no such resource: \(call.method) /\(path.joined(separator: "/"))")
        }
    }

    /// `?changedAfter=V[&waitMs=N]`: a watch, answered once the master's state has changed
    /// since version V, or after `waitMs` (default 10 s, at most 60 s) with things as they are.
    /// A listing's filters: `label=KEY=VALUE` and `active=true`.
    static func jobFilter(_ call: APIRequest) throws -> (label: (key: String, value: String)?, activeOnly: Bool) {
        var label: (key: String, value: String)?
        if let text = call.query["label"] {
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw APIError.badRequest("label must be KEY=VALUE, not '\(text)'")
            }
            label = (String(text[..<equals]), String(text[text.index(after: equals)...]))
        }
        return (label, call.query["active"] == "true")
    }

    func watchIfAsked(_ call: APIRequest) async throws {
        guard let changedAfter = try call.integer("changedAfter") else { return }
        let version = UInt64(clamping: changedAfter)
        let waitMs = min(max(try call.integer("waitMs") ?? 10_000, 0), 60_000)
        let deadline = clock.now + .milliseconds(waitMs)
        while stateChanges.count == version, clock.now < deadline, !Task.isCancelled {
            await clock.wait(for: stateChanges, after: version, until: deadline)
        }
    }

    /// Only a job's or task's user, or the superuser, may kill it.
    func authorize(_ call: APIRequest, owner: String, what: String) throws {
        guard let user = call.user else { throw APIError(.unauthorized, "killing \(what) needs a user: ?user.name=NAME") }
        guard user == owner || user == configuration.superuser else {
            throw APIError.forbidden("user \(user) may not kill \(what) of user \(owner)")
        }
    }

    struct StateSummary: Encodable {
        var version: String
        var hostname: String
        var activatedAgents: Int
        var deactivatedAgents: Int
        var agents: [ComputeAPI.AgentView]
        var jobs: [ComputeAPI.JobView]
        var tasks: [ComputeAPI.TaskView]

        enum CodingKeys: String, CodingKey {
            case version, hostname, agents, jobs, tasks
            case activatedAgents = "activated_agents"
            case deactivatedAgents = "deactivated_agents"
        }
    }

    func stateSummary() -> StateSummary {
        let now = clock.now
        return state.withLock { state in
            let agents = state.agentViews(now: now)
            return StateSummary(
                version: StrataVersion.current, hostname: ProcessInfo.processInfo.hostName,
                activatedAgents: agents.count { $0.active }, deactivatedAgents: agents.count { !$0.active }, agents: agents,
                jobs: state.jobOrder.compactMap { state.view(ofJob: $0) },
                tasks: state.attempts.values.filter { !$0.state.isTerminal }.sorted { $0.taskId < $1.taskId }.map { state.view(ofTask: $0) })
        }
    }

    func metricsText() -> String {
        let (agents, tasks, jobs) = state.withLock { state in
            (state.agents.values.map { $0.info == nil ? nil : !$0.isLost }, state.attempts.values.map(\.state), state.jobs.values.map(\.state))
        }
        let (local, remote) = placements.withLock { ($0.nodeLocal, $0.remote) }
        var lines: [String] = []
        lines.append("# HELP strata_master_agents Agents known to the master, by state.")
        lines.append("# TYPE strata_master_agents gauge")
        lines.append("strata_master_agents{state=\"active\"} \(agents.count { $0 == true })")
        lines.append("strata_master_agents{state=\"lost\"} \(agents.count { $0 == false })")
        lines.append("# HELP strata_master_tasks Task attempts, by state.")
        lines.append("# TYPE strata_master_tasks gauge")
        for taskState in TaskState.allCases {
            lines.append("strata_master_tasks{state=\"\(taskState.shortName)\"} \(tasks.count { $0 == taskState })")
        }
        lines.append("# HELP strata_master_jobs Jobs, by state.")
        lines.append("# TYPE strata_master_jobs gauge")
        for jobState in [JobState.running, .committing, .finished, .failed, .killed] {
            lines.append("strata_master_jobs{state=\"\(jobState.rawValue)\"} \(jobs.count { $0 == jobState })")
        }
        lines.append("# HELP strata_master_placements_total Tasks placed, beside their input block or elsewhere.")
        lines.append("# TYPE strata_master_placements_total counter")
        lines.append("strata_master_placements_total{locality=\"node_local\"} \(local)")
        lines.append("strata_master_placements_total{locality=\"remote\"} \(remote)")
        return lines.joined(separator: "\n") + "\n"
    }
}
