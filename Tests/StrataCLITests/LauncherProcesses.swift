import Foundation
import Glibc
import Testing

/// A name node, a data node, `strata master`, agents and `strata launcher`, each a process of its
/// own on loopback, for the launcher's fault tests. Each agent listens on an address of its own
/// (127.0.0.2, 127.0.0.3, ...) and takes that address as its hostname too: agents on one host
/// offer the same port range, so instances on different agents are given the same ports, and an
/// instance binds `$HOST:$PORT0` (the agent sets `HOST` to its hostname) where the launcher's
/// health checks reach it (the host of its agent's address). Distinct hostnames are also what
/// hostname constraints tell agents apart by.
///
/// Everything is killed when the value goes away (`ProcessCluster` stops the launcher first, so
/// it starts nothing more, then the agents, their tasks, the master and the file system). The
/// launcher and the agents get a `HOME` inside the cluster's directory and no `STRATA_TOKEN`, so
/// nothing is written to the real `~/.strata`.
final class LauncherProcessCluster {
    let cluster: ProcessCluster
    /// `HOME` for the processes started here.
    let home: String
    /// What instances run as (agents refuse root tasks).
    static let taskUser = "nobody"
    static let launcherLog = "launcher.log"

    init(agents count: Int = 3, agentTimeoutSeconds: Double = 3) throws {
        cluster = try ProcessCluster(dataNodes: 1)
        home = cluster.directory + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try cluster.waitUntilReady(dataNodes: 1)
        try cluster.startComputeOnOwnAddresses(agents: count, agentTimeoutSeconds: agentTimeoutSeconds, home: home)
        try startLauncher()
    }

    var processEnvironment: [String: String] { ["HOME": home, "STRATA_TOKEN": ""] }
    var launcherPort: Int { cluster.launcherPort }

    /// Starts `strata launcher` (it serves once it has replayed its state from the DFS).
    func startLauncher() throws {
        try cluster.startLauncher(taskUser: Self.taskUser, environment: processEnvironment)
    }

    /// SIGKILL: the launcher gets no chance to write or kill anything more.
    func killLauncher() { cluster.killLauncher() }

    // MARK: The launcher's API

    /// Calls the launcher's API; returns the status and the body as JSON (nil when it is not).
    @discardableResult
    func callLauncher(_ method: String, _ path: String, body: Any? = nil) throws -> (status: Int, json: Any?, text: String) {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let (status, reply) = try httpCall(method, port: launcherPort, path, body: data)
        return (status, try? JSONSerialization.jsonObject(with: reply), String(decoding: reply, as: UTF8.self))
    }

    /// Creates an app (`POST /v2/apps`, 201).
    func createApp(_ app: [String: Any]) throws {
        let reply = try callLauncher("POST", "/v2/apps", body: app)
        try #require(reply.status == 201, "POST /v2/apps answered \(reply.status): \(reply.text)")
    }

    /// The app's tasks as `GET /v2/apps/{id}/tasks` shows them.
    func tasks(of appId: String) throws -> [LauncherTask] {
        let reply = try callLauncher("GET", "/v2/apps\(appId)/tasks")
        guard reply.status == 200, let tasks = (reply.json as? [String: Any])?["tasks"] as? [[String: Any]] else {
            throw ProcessClusterError(message: "GET /v2/apps\(appId)/tasks answered \(reply.status): \(reply.text)")
        }
        return tasks.map(LauncherTask.init)
    }

    /// The ids of the deployments running now.
    func deploymentIds() throws -> [String] {
        let reply = try callLauncher("GET", "/v2/deployments")
        guard reply.status == 200, let deployments = reply.json as? [[String: Any]] else {
            throw ProcessClusterError(message: "GET /v2/deployments answered \(reply.status): \(reply.text)")
        }
        return deployments.compactMap { $0["id"] as? String }
    }

    /// Whether the app has `count` instances, all running and healthy, and no deployment runs.
    func isSettled(_ appId: String, instances count: Int, version: String? = nil) throws -> Bool {
        let tasks = try tasks(of: appId)
        guard tasks.count == count, tasks.allSatisfy({ $0.isHealthy && (version == nil || $0.version == version) }) else { return false }
        return try deploymentIds().isEmpty
    }

    /// Waits (bounded) until the app has `count` healthy instances and no deployment runs.
    func waitUntilSettled(_ appId: String, instances count: Int, timeoutSeconds: Double = 30) throws {
        let settled = try secondsUntil(timeoutSeconds: timeoutSeconds, intervalSeconds: 0.1) { try isSettled(appId, instances: count) }
        try #require(settled != nil, "\(appId) did not reach \(count) healthy instances within \(timeoutSeconds) s: \(describe(appId))")
    }

    /// The app's tasks and the master's view of them, for failure messages.
    func describe(_ appId: String) -> String {
        let tasks = ((try? self.tasks(of: appId)) ?? []).map(\.description).joined(separator: "\n  ")
        let services = ((try? self.services(of: appId)) ?? []).map(\.description).joined(separator: "\n  ")
        let deployments = (try? deploymentIds()) ?? []
        return "\nlauncher tasks:\n  \(tasks)\nmaster service tasks:\n  \(services)\ndeployments: \(deployments)"
            + "\nlauncher log:\n\(cluster.logTail(Self.launcherLog, characters: 2000))"
    }

    // MARK: The master's view

    /// The master's service tasks of an app (by the launcher's `marathon.app` label): every one
    /// ever submitted, or only the active ones.
    func services(of appId: String, activeOnly: Bool = false) throws -> [MasterServiceTask] {
        let label = "marathon.app=\(appId)".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let reply = try cluster.callMaster("GET", "/api/v1/services?label=\(label)" + (activeOnly ? "&active=true" : ""))
        guard reply.status == 200, let services = (reply.json as? [String: Any])?["services"] as? [[String: Any]] else {
            throw ProcessClusterError(message: "GET /api/v1/services answered \(reply.status): \(reply.text)")
        }
        return services.map(MasterServiceTask.init).sorted { $0.submittedAtMs < $1.submittedAtMs }
    }

    /// The processes of a service task, from its cgroups on its agent.
    func processes(of service: MasterServiceTask) -> Set<pid_t> {
        guard let agentId = service.agentId, let taskId = service.taskId else { return [] }
        return cluster.taskProcessIds(ofAgent: agentId, task: taskId)
    }

    /// The index of the agent with this id among the cluster's agents.
    func agentIndex(ofId agentId: String) throws -> Int {
        try #require(try cluster.agentSlots.indices.first { try cluster.agentId($0) == agentId }, "no agent has id \(agentId)")
    }
}

/// An instance as the launcher's `/v2/apps/{id}/tasks` shows it.
struct LauncherTask: CustomStringConvertible {
    var id: String
    var state: String
    var host: String?
    var ports: [Int]
    var agentId: String?
    var version: String?
    /// Every health check has answered and the last answer of each passed (Marathon's `alive`).
    var isHealthy: Bool

    init(_ json: [String: Any]) {
        id = json["id"] as? String ?? ""
        state = json["state"] as? String ?? ""
        host = json["host"] as? String
        ports = json["ports"] as? [Int] ?? []
        agentId = json["slaveId"] as? String
        version = json["version"] as? String
        let results = json["healthCheckResults"] as? [[String: Any]] ?? []
        isHealthy = state == "TASK_RUNNING" && !results.isEmpty && results.allSatisfy { $0["alive"] as? Bool == true }
    }

    var description: String {
        "\(id) \(state)\(isHealthy ? " healthy" : "") on \(agentId ?? "-") \(host ?? "-"):\(ports) version \(version ?? "-")"
    }
}

/// A service task as the master's `/api/v1/services` shows it: its job and its attempt.
struct MasterServiceTask: CustomStringConvertible {
    var jobId: String
    var jobState: String
    var submittedAtMs: Int64
    var jobEndedAtMs: Int64?
    var instanceId: String
    var taskId: String?
    var agentId: String?
    var taskState: String?
    var taskEndedAtMs: Int64?

    init(_ json: [String: Any]) {
        let job = json["job"] as? [String: Any] ?? [:]
        let attempt = (json["task"] as? [String: Any])?["attempt"] as? [String: Any]
        jobId = job["id"] as? String ?? ""
        jobState = job["state"] as? String ?? ""
        submittedAtMs = (job["submittedAtMs"] as? NSNumber)?.int64Value ?? 0
        jobEndedAtMs = (job["endedAtMs"] as? NSNumber)?.int64Value
        instanceId = ((job["service"] as? [String: Any])?["labels"] as? [String: String])?["marathon.instance"] ?? ""
        taskId = attempt?["taskId"] as? String
        agentId = attempt?["agentId"] as? String
        taskState = attempt?["state"] as? String
        taskEndedAtMs = (attempt?["endedAtMs"] as? NSNumber)?.int64Value
    }

    var description: String {
        "\(jobId) \(jobState) instance \(instanceId) task \(taskId ?? "-") \(taskState ?? "-") on \(agentId ?? "-") submitted \(submittedAtMs)"
    }
}

extension ProcessCluster {
    /// Starts `strata master` (agents lost after `agentTimeoutSeconds`) and `count` agents, agent
    /// `i` (from 0) listening on 127.0.0.(i + 2) with that address as its hostname, all beside
    /// the first data node; waits until every agent has registered.
    func startComputeOnOwnAddresses(agents count: Int, agentTimeoutSeconds: Double, home: String, resources: String = "cpus:2;mem:2048") throws {
        precondition(agentSlots.isEmpty, "the compute side is already started")
        masterPort = freePort()
        masterArguments = ["--agent-timeout", "\(agentTimeoutSeconds)"]
        try startMaster()
        for index in 0..<count {
            agentSlots.append(AgentSlot(
                workDirectory: directory + "/agent\(index + 1)", port: freePort(), log: "agent\(index + 1).log",
                hostname: "127.0.0.\(index + 2)", dataNode: 0, resources: resources))
            agents.append(nil)
        }
        try startAgents(Array(agentSlots.indices), onOwnAddresses: true, environment: ["HOME": home, "STRATA_TOKEN": ""])
    }
}
