import Foundation
import Hummingbird
import StrataApps
import StrataCompute
import StrataCore
import StrataHTTP

extension Launcher {
    /// The launcher's HTTP API, a subset of Marathon's REST API v2 (docs/launcher.md, "The API"):
    ///
    /// - `GET /ping`, `GET /v2/info`, `GET /metrics` (Prometheus)
    /// - `GET /v2/apps[?cmd=&id=&label=&embed=..]`, `POST /v2/apps[?force=true]`
    /// - `GET|PUT|DELETE /v2/apps/{id}` (PUT merges into the app unless `?partialUpdate=false`)
    /// - `GET|DELETE /v2/apps/{id}/tasks[?host=&scale=]`, `DELETE /v2/apps/{id}/tasks/{taskId}[?scale=]`,
    ///   `POST /v2/apps/{id}/restart`, `GET /v2/apps/{id}/versions[/{version}]`
    /// - `GET /v2/tasks`, `POST /v2/tasks/delete[?scale=]`
    /// - `GET|POST|PUT|DELETE /v2/groups[/{id}]` (`Launcher+Groups.swift`)
    /// - `GET /v2/deployments`, `DELETE /v2/deployments/{id}[?force=true]`
    /// - `GET /v2/queue`, `DELETE /v2/queue/{appId}/delay`
    /// - `GET /v2/events` (server-sent events, `Launcher+Events.swift`)
    public func respond(to request: Request) async -> Response {
        let call = APIRequest(request)
        do {
            try call.requireSecret(configuration.token, service: "launcher")
            return try await route(call, request)
        } catch let failure as ValidationFailure {
            return JSONAPI.response(failure, status: .init(code: failure.status))
        } catch let error as LabelSelectorError {
            // Marathon: an `IllegalArgumentException`, which its exception mapper answers with 422.
            return JSONAPI.response(["message": error.message], status: .unprocessableContent)
        } catch let error as LauncherError {
            struct Body: Encodable {
                struct Id: Encodable { var id: String }
                var message: String
                var deployments: [Id]?
            }
            var body = Body(message: error.message)
            if case .locked(let ids) = error { body.deployments = ids.map(Body.Id.init(id:)) }
            return JSONAPI.response(body, status: .init(code: error.status))
        } catch {
            return JSONAPI.error(error)
        }
    }

    func route(_ call: APIRequest, _ request: Request) async throws -> Response {
        let path = call.components
        // Clients send `True` too (Python's requests); Marathon reads booleans case-insensitively.
        let force = call.query["force"]?.lowercased() == "true"
        if call.match(.get, "ping") != nil {
            return JSONAPI.bytes(Array("pong".utf8), contentType: "text/plain")
        } else if call.match(.get, "v2/info") != nil {
            return JSONAPI.response(info())
        } else if call.match(.get, "metrics") != nil {
            return JSONAPI.bytes(Array(metricsText().utf8), contentType: "text/plain; version=0.0.4")
        } else if call.match(.get, "v2/apps") != nil {
            let query = try AppQuery.parse(cmd: call.query["cmd"], id: call.query["id"], label: call.query["label"]).get()
            let embed = AppEmbed.listDefaults.union(AppEmbed.resolve(Self.queryValues(request, "embed")))
            return JSONAPI.response(["apps": state.withLock { state in
                state.apps.values.filter(query.matches).map(\.id).sorted().map { appView($0, in: state, embed: embed) }
            }])
        } else if call.match(.get, "v2/events") != nil {
            return try eventStream(request)
        } else if call.match(.get, "v2/queue") != nil {
            return JSONAPI.response(queueView())
        } else if path.count > 3, path[0] == "v2", path[1] == "queue", path.last == "delay", call.method == .delete {
            let appId = PathId(segments: Array(path.dropFirst(2).dropLast())).canonical()
            try await handle { state, now, wall in (try state.resetDelay(appId, now: now, wallTimeMs: wall).get(), ()) }
            return JSONAPI.bytes([], status: .noContent, contentType: "application/json")
        } else if call.match(.post, "v2/tasks/delete") != nil {
            return try await deleteTasks(call, request)
        } else if path.count >= 2, path[0] == "v2", path[1] == "groups" {
            return try await routeGroup(call, request, PathId(segments: Array(path.dropFirst(2))).canonical(), force: force)
        } else if call.match(.post, "v2/apps") != nil {
            let app = try AppDefinition.parse(try await body(of: request))
            try await checkImages([app])
            let deploymentId = Self.newDeploymentId()
            let view = try await handle { state, now, wall in
                let outcome = try state.create(app, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
                return (outcome, appView(app.id, in: state, embed: [.counts, .deployments, .tasks]))
            }
            logger.info("app created", metadata: ["app": "\(app.id)"])
            return JSONAPI.response(view, status: .created)
        } else if call.match(.get, "v2/tasks") != nil {
            return JSONAPI.response(["tasks": state.withLock { state in taskViews(state.instances.values.sorted { $0.id < $1.id }, in: state) }])
        } else if call.match(.get, "v2/deployments") != nil {
            return JSONAPI.response(state.withLock { state in state.deploymentOrder.compactMap { state.deployments[$0] }.map(DeploymentView.init) })
        } else if let deploymentId = call.match(.delete, "v2/deployments/*")?.first {
            let rollbackId = force ? nil : Self.newDeploymentId()
            let reply = try await handle { state, now, wall in
                let outcome = try state.cancel(deploymentId, rollback: rollbackId, now: now, wallTimeMs: wall).get()
                return (outcome, DeploymentReply(deploymentId: rollbackId ?? deploymentId, version: AppVersion(millisecondsSinceEpoch: state.lastVersionMs)))
            }
            return force ? JSONAPI.bytes([], status: .accepted, contentType: "application/json") : JSONAPI.response(reply)
        } else if path.count > 2, path[0] == "v2", path[1] == "apps" {
            return try await routeApp(call, request, Array(path.dropFirst(2)), force: force)
        } else {
            throw APIError.notFound("no such resource: \(call.method) /\(path.joined(separator: "/"))")
        }
    }

    /// `/v2/apps/{id}[/tasks|/restart|/versions[/{version}]]`: an id is a path of labels, and
    /// none may be `tasks`, `restart` or `versions` at its end (Marathon's reserved words).
    func routeApp(_ call: APIRequest, _ request: Request, _ rest: [String], force: Bool) async throws -> Response {
        func id(_ segments: ArraySlice<String>) -> PathId { PathId(segments: Array(segments)).canonical() }
        let last = rest.last!
        if last == "tasks", call.method == .get {
            let appId = id(rest.dropLast())
            let views: [TaskView] = try state.withLock { state in
                guard state.apps[appId] != nil else { throw LauncherError.appNotFound(appId, version: nil) }
                return taskViews(state.instances(of: appId), in: state)
            }
            return JSONAPI.response(["tasks": views])
        } else if last == "tasks", call.method == .delete {
            // Marathon's kill of an app's tasks, all of them or those on `host`.
            let appId = id(rest.dropLast())
            let host = call.query["host"]
            return try await killTasks(call, appId: appId, single: false) { instance in
                host.map { $0 == "*" || instance.host == $0 } ?? true
            }
        } else if rest.count >= 2, rest[rest.count - 2] == "tasks", call.method == .delete {
            // Marathon's kill of one task: killed and replaced, or with `scale=true` killed and
            // the app scaled down by one.
            return try await killTasks(call, appId: id(rest.dropLast(2)), single: true) { $0.id == last }
        } else if last == "restart", call.method == .post {
            let appId = id(rest.dropLast())
            return JSONAPI.response(try await deploy { state, deploymentId, now, wall in
                try state.restart(appId, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
            })
        } else if last == "versions", call.method == .get {
            let appId = id(rest.dropLast())
            let versions: [String] = try state.withLock { state in
                guard let versions = state.versions[appId] else { throw LauncherError.appNotFound(appId, version: nil) }
                return versions.compactMap { $0.version?.description }.reversed()
            }
            return JSONAPI.response(["versions": versions])
        } else if rest.count >= 2, rest[rest.count - 2] == "versions", call.method == .get {
            let appId = id(rest.dropLast(2))
            guard let version = AppVersion(parsing: last) else { throw APIError.badRequest("not a version: \(last)") }
            let app = try state.withLock { state in
                guard let app = state.versions[appId]?.first(where: { $0.version == version }) else {
                    throw LauncherError.appNotFound(appId, version: version)
                }
                return app
            }
            return JSONAPI.response(app)
        }
        let appId = id(rest[...])
        switch call.method {
        case .get:
            let embed = AppEmbed.showDefaults.union(AppEmbed.resolve(Self.queryValues(request, "embed")))
            let view: JSONValue = try state.withLock { state in
                guard state.apps[appId] != nil else { throw LauncherError.appNotFound(appId, version: nil) }
                return appView(appId, in: state, embed: embed)
            }
            return JSONAPI.response(["app": view])
        case .delete:
            return JSONAPI.response(try await deploy { state, deploymentId, now, wall in
                try state.delete(appId, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
            })
        case .put:
            let json = try JSONValue.parse(try await body(of: request))
            if case .object(let members) = json, case .string(let text)? = members["version"],
               members.keys.allSatisfy({ $0 == "version" || $0 == "id" }) {
                // Marathon's rollback: `{"version": V}` deploys the app as it was at version V.
                guard let version = AppVersion(parsing: text) else {
                    throw APIError.unprocessable("'\(text)' is not a version of app '\(appId)' (GET /v2/apps\(appId)/versions lists them)")
                }
                return JSONAPI.response(try await deploy { state, deploymentId, now, wall in
                    try state.rollback(appId, to: version, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
                })
            }
            let current = state.withLock { $0.apps[appId] }
            var merged = json
            if let current, call.query["partialUpdate"]?.lowercased() != "false", case .object(let update) = json {
                merged = .object(Self.merge(current, update))
            }
            let app = try AppDefinition.read(merged, id: appId).get()
            guard app.id == appId else { throw APIError.badRequest("the app's id \(app.id) is not the id in the path, \(appId)") }
            try await checkImages([app])
            let reply = try await deploy { state, deploymentId, now, wall in
                try state.deploy([app], deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
            }
            return JSONAPI.response(reply, status: current == nil ? .created : .ok)
        default:
            throw APIError.notFound("no such resource: \(call.method) /v2/apps/\(rest.joined(separator: "/"))")
        }
    }

    struct DeploymentReply: Encodable, Sendable {
        var deploymentId: String
        var version: AppVersion
    }

    /// Runs a change that starts a deployment; answers with its id and version.
    func deploy(
        _ change: @escaping (inout LauncherState, String, MonotonicInstant, Int64) throws -> LauncherState.Outcome
    ) async throws -> DeploymentReply {
        let deploymentId = Self.newDeploymentId()
        return try await handle { state, now, wall in
            let outcome = try change(&state, deploymentId, now, wall)
            return (outcome, DeploymentReply(deploymentId: deploymentId, version: AppVersion(millisecondsSinceEpoch: state.lastVersionMs)))
        }
    }

    static func newDeploymentId() -> String { UUID().uuidString.lowercased() }

    /// Marathon's partial update: the fields given replace the app's; `cmd` and `args` replace
    /// each other.
    static func merge(_ current: AppDefinition, _ update: [String: JSONValue]) -> [String: JSONValue] {
        guard case .object(var members) = jsonValue(current) else { return update }
        members["version"] = nil
        members["versionInfo"] = nil
        if update["cmd"] != nil { members["args"] = nil }
        if update["args"] != nil { members["cmd"] = nil }
        if update["ports"] != nil { members["portDefinitions"] = nil }
        for (key, value) in update { members[key] = value }
        return members
    }

    static func jsonValue(_ value: some Encodable) -> JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))) ?? .null
    }

    func body(of request: Request) async throws -> [UInt8] {
        try await JSONAPI.bodyBytes(of: request)
    }

    // MARK: - Views (Marathon's JSON)

    /// An app as Marathon shows it (`AppInfo`): its definition with what `embed` asks for: the
    /// task counts, its deployments, its tasks, readiness results (none: Strata has no readiness
    /// checks), its last task failure, task statistics.
    func appView(_ appId: PathId, in state: LauncherState, embed: Set<AppEmbed>) -> JSONValue {
        guard let app = state.apps[appId], case .object(var members) = Self.jsonValue(app) else { return .null }
        let instances = state.instances(of: appId)
        let hasChecks = !app.healthChecks.isEmpty
        let count = { (predicate: (AppInstance) -> Bool) in JSONValue.number(Double(instances.count(where: predicate))) }
        if embed.contains(.counts) {
            members["tasksStaged"] = count { $0.state == .staging || $0.state == .starting }
            members["tasksRunning"] = count { $0.state == .running }
            members["tasksHealthy"] = count { hasChecks && $0.state == .running && $0.isHealthy == true }
            members["tasksUnhealthy"] = count { hasChecks && $0.state == .running && $0.isHealthy == false }
        }
        if embed.contains(.deployments) {
            members["deployments"] = .array(state.deployments(locking: appId).map { .object(["id": .string($0.id)]) })
        }
        if embed.contains(.tasks) { members["tasks"] = Self.jsonValue(taskViews(instances, in: state)) }
        if embed.contains(.readiness) { members["readinessCheckResults"] = .array([]) }
        if embed.contains(.lastTaskFailure), let failure = state.lastTaskFailures[appId] {
            members["lastTaskFailure"] = Self.jsonValue(failure)
        }
        if embed.contains(.taskStats) {
            members["taskStats"] = Self.jsonValue(TaskStatistics.of(app, instances: instances, wallTimeMs: clock.wallTimeMs))
        }
        return .object(members)
    }

    /// Every value of a query parameter given more than once (`embed=a&embed=b`); values are
    /// also split at commas.
    static func queryValues(_ request: Request, _ name: String) -> [String] {
        (request.uri.query ?? "").split(separator: "&").flatMap { pair -> [String] in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text) }
            guard parts.count == 2, decode(parts[0]) == name else { return [] }
            return decode(parts[1]).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    struct TaskView: Encodable, Sendable {
        struct HealthResult: Encodable, Sendable {
            var alive: Bool
            var consecutiveFailures: Int
            var firstSuccess: AppVersion?
            var lastFailure: AppVersion?
            var lastSuccess: AppVersion?
            var lastFailureCause: String?
            var taskId: String
            var instanceId: String
        }
        struct Address: Encodable, Sendable {
            var ipAddress: String
            var `protocol` = "IPv4"
        }
        var id: String
        var appId: String
        var host: String?
        var ports: [Int]
        var servicePorts: [Int] = []
        /// The agent (Marathon's name; its clients refuse fields they do not know, `agentId` too).
        var slaveId: String?
        var state: String
        var stagedAt: AppVersion
        var startedAt: AppVersion?
        var version: AppVersion
        var healthCheckResults: [HealthResult]
        var ipAddresses: [Address]
    }

    /// Instances as Marathon's tasks (an instance is one task; its id serves as both).
    func taskViews(_ instances: [AppInstance], in state: LauncherState) -> [TaskView] {
        let now = clock.now
        let wall = clock.wallTimeMs
        func wallTime(_ instant: MonotonicInstant?) -> AppVersion? {
            instant.map { AppVersion(millisecondsSinceEpoch: wall - now.milliseconds(since: $0)) }
        }
        return instances.map { instance in
            let checks = state.apps[instance.appId]?.healthChecks.count ?? 0
            let results = (0..<checks).compactMap { index -> TaskView.HealthResult? in
                guard let health = state.healthTracker.health(of: instance.id, check: index) else { return nil }
                return TaskView.HealthResult(
                    alive: health.isAlive, consecutiveFailures: health.consecutiveFailures, firstSuccess: wallTime(health.firstSuccess),
                    lastFailure: wallTime(health.lastFailure), lastSuccess: wallTime(health.lastSuccess), lastFailureCause: health.lastFailureCause,
                    taskId: instance.id, instanceId: instance.id)
            }
            return TaskView(
                id: instance.id, appId: instance.appId.description, host: instance.host, ports: instance.ports, slaveId: instance.agentId,
                state: instance.state.rawValue, stagedAt: AppVersion(millisecondsSinceEpoch: instance.stagedAtMs),
                startedAt: instance.startedAtMs.map(AppVersion.init(millisecondsSinceEpoch:)), version: instance.configVersion,
                healthCheckResults: results, ipAddresses: instance.host.map { [TaskView.Address(ipAddress: $0)] } ?? [])
        }
    }

    struct DeploymentView: Encodable, Sendable {
        struct Action: Encodable, Sendable {
            var action: String
            var app: String
            var readinessCheckResults: [String]? = nil
        }
        struct Step: Encodable, Sendable { var actions: [Action] }
        var id: String
        var version: AppVersion
        var affectedApps: [String]
        var affectedPods: [String] = []
        var steps: [Step]
        var currentActions: [Action]
        var currentStep: Int
        var totalSteps: Int

        init(_ deployment: Deployment) {
            id = deployment.id
            version = deployment.version
            affectedApps = deployment.affectedApps.map(\.description)
            steps = deployment.steps.map { Step(actions: $0.map { Action(action: $0.name, app: $0.appId.description) }) }
            let current = deployment.steps.indices.contains(deployment.currentStep) ? deployment.steps[deployment.currentStep] : []
            currentActions = current.map { Action(action: $0.name, app: $0.appId.description, readinessCheckResults: []) }
            currentStep = deployment.currentStep + 1
            totalSteps = deployment.steps.count
        }
    }

    struct Info: Encodable, Sendable {
        struct MarathonConfig: Encodable, Sendable {
            var master: String
            var mesos_role: String? = nil
            var mesos_user: String
        }
        struct HTTPConfig: Encodable, Sendable { var http_port: Int }
        /// No ZooKeeper: an empty object, which clients read as Marathon's (they require it).
        struct ZooKeeperConfig: Encodable, Sendable {}
        var name = "marathon"
        var version = "1.11.0"
        var buildref = "strata-\(StrataVersion.current)"
        var elected = true
        var leader: String
        var frameworkId: String
        var marathon_config: MarathonConfig
        var http_config: HTTPConfig
        var zookeeper_config = ZooKeeperConfig()
    }

    func info() -> Info {
        let port = servingPort.withLock { $0 } ?? configuration.port
        return Info(
            leader: "\(configuration.host):\(port)", frameworkId: configuration.name,
            marathon_config: .init(master: configuration.masterAddress, mesos_user: configuration.taskUser), http_config: .init(http_port: port))
    }
}
