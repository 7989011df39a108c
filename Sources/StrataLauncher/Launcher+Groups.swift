import Foundation
import Hummingbird
import StrataApps
import StrataCompute
import StrataCore
import StrataHTTP

extension Launcher {
    /// `/v2/groups[/{id}]`: GET the tree, POST a new group, PUT a group's apps and sub-groups (or
    /// `scaleBy`), DELETE a group with its apps; each change is one deployment.
    func routeGroup(_ call: APIRequest, _ request: Request, _ groupId: PathId, force: Bool) async throws -> Response {
        switch call.method {
        case .get:
            let embeds = Self.queryValues(request, "embed")
            let values = embeds.isEmpty ? ["group.groups", "group.apps", "group.pods"] : embeds
            let appEmbed = AppEmbed.resolve(values.filter { $0.hasPrefix("group.apps.") })
            let view: JSONValue = try state.withLock { state in
                guard let tree = GroupTree.of(groupId, apps: state.apps) else { throw LauncherError.groupNotFound(groupId) }
                return groupView(tree, in: state, appEmbed: appEmbed, apps: values.contains("group.apps"), groups: values.contains("group.groups"))
            }
            return JSONAPI.response(view)
        case .post:
            // The body's id is taken from the path's group (the root for `POST /v2/groups`).
            let group = try AppGroup.read(try JSONValue.parse(try await body(of: request)), base: groupId).get()
            try await checkImages(group.allApps)
            let reply = try await deploy { state, deploymentId, now, wall in
                if state.apps[group.id] != nil { throw LauncherError.appPathExists(group.id) }
                if state.groupExists(group.id) { throw LauncherError.groupExists(group.id) }
                let (puts, deletes) = state.groupChange(group)
                return try state.change(puts: puts, deletes: deletes, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
            }
            return JSONAPI.response(reply, status: .created)
        case .put:
            var json = try JSONValue.parse(try await body(of: request))
            // The id may be left out: the group in the path.
            if case .object(var members) = json, members["id"] == nil || members["id"] == .null {
                members["id"] = .string(groupId.description)
                json = .object(members)
            }
            let group = try AppGroup.read(json, base: groupId).get()
            try await checkImages(group.allApps)
            if let version = group.version {
                // Group versions are not kept (a group is the paths of its apps); Marathon answers
                // a version it does not have this way (`IllegalArgumentException`, 422).
                throw APIError.unprocessable("Group \(group.id) not available in version \(version)")
            }
            let reply = try await deploy { state, deploymentId, now, wall in
                if let factor = group.scaleBy {
                    guard state.groupExists(group.id) else { throw LauncherError.groupNotFound(group.id) }
                    return try state.change(puts: state.scaled(group.id, by: factor), deletes: [], deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
                }
                let (puts, deletes) = state.groupChange(group)
                return try state.change(puts: puts, deletes: deletes, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
            }
            return JSONAPI.response(reply)
        case .delete:
            let reply = try await deploy { state, deploymentId, now, wall in
                guard state.groupExists(groupId) else { throw LauncherError.groupNotFound(groupId) }
                let inside = state.apps.keys.filter { $0.isWithin(groupId) && $0 != groupId }
                return try state.change(puts: [], deletes: inside, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
            }
            return JSONAPI.response(reply)
        default:
            throw APIError.notFound("no such resource: \(call.method) /v2/groups\(groupId)")
        }
    }

    /// A group as Marathon's `GroupInfo`: id, apps (with `appEmbed`), sub-groups, and the fields
    /// Strata has no use for (pods, dependencies) empty.
    func groupView(_ tree: GroupTree, in state: LauncherState, appEmbed: Set<AppEmbed>, apps: Bool, groups: Bool) -> JSONValue {
        var members: [String: JSONValue] = [
            "id": .string(tree.id.description), "pods": .array([]), "dependencies": .array([]), "enforceRole": .boolean(false),
        ]
        if let version = tree.version { members["version"] = .string(version.description) }
        if apps { members["apps"] = .array(tree.apps.map { appView($0, in: state, embed: appEmbed) }) }
        if groups {
            members["groups"] = .array(tree.groups.map { groupView($0, in: state, appEmbed: appEmbed, apps: apps, groups: groups) })
        }
        return .object(members)
    }

    // MARK: - Killing tasks

    /// Kills the tasks of `appId` that `select` picks (`DELETE /v2/apps/{id}/tasks[/{taskId}]`).
    /// Without `scale` the answer is the killed tasks (`{"task":..}` for one, 404 when it is not
    /// the app's); with `scale=true` the app is scaled down by their number in a deployment.
    func killTasks(_ call: APIRequest, appId: PathId, single: Bool, _ select: @escaping @Sendable (AppInstance) -> Bool) async throws -> Response {
        let scale = call.query["scale"]?.lowercased() == "true"
        let force = call.query["force"]?.lowercased() == "true"
        if scale, call.query["wipe"]?.lowercased() == "true" { throw APIError.badRequest("You cannot use scale and wipe at the same time.") }
        let (ids, views): ([String], [TaskView]) = try state.withLock { state in
            guard state.apps[appId] != nil else { throw LauncherError.appNotFound(appId, version: nil) }
            let chosen = state.instances(of: appId).filter { $0.isActive && select($0) }
            return (chosen.map(\.id), taskViews(chosen, in: state))
        }
        if scale {
            return JSONAPI.response(try await deploy { state, deploymentId, now, wall in
                try state.kill(ids, scale: true, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
            })
        }
        if single, views.isEmpty { throw APIError.notFound("Task '\(call.components.last ?? "")' does not exist") }
        try await handle { state, now, wall in
            (try state.kill(ids, scale: false, deploymentId: Self.newDeploymentId(), force: false, now: now, wallTimeMs: wall).get(), ())
        }
        logger.info("tasks killed through the API", metadata: ["app": "\(appId)", "tasks": "\(ids.count)"])
        return single ? JSONAPI.response(["task": views[0]]) : JSONAPI.response(["tasks": views])
    }

    /// `POST /v2/tasks/delete[?scale=true]` with `{"ids":[...]}`: tasks of any apps; ids that
    /// are not an instance's are refused (400), unknown ones ignored, as Marathon does.
    func deleteTasks(_ call: APIRequest, _ request: Request) async throws -> Response {
        let scale = call.query["scale"]?.lowercased() == "true"
        let force = call.query["force"]?.lowercased() == "true"
        if scale, call.query["wipe"]?.lowercased() == "true" { throw APIError.badRequest("You cannot use scale and wipe at the same time.") }
        let json = try JSONValue.parse(try await body(of: request))
        guard case .object(let members) = json, let idsJSON = members["ids"] else {
            throw ValidationFailure(kind: .invalidJSON, details: [ValidationDetail(path: "/ids", errors: ["error.path.missing"])])
        }
        guard case .array(let elements) = idsJSON else {
            throw ValidationFailure(kind: .invalidJSON, details: [ValidationDetail(path: "/ids", errors: ["error.expected.jsarray"])])
        }
        var ids: [String] = []
        for (index, element) in elements.enumerated() {
            guard case .string(let id) = element else {
                throw ValidationFailure(kind: .invalidJSON, details: [ValidationDetail(path: "/ids(\(index))", errors: ["error.expected.jsstring"])])
            }
            guard LauncherState.instanceNumber(id) != nil else {
                throw APIError.badRequest("Invalid task id '\(id)'. [not the id of an instance: APP.instance-N]")
            }
            ids.append(id)
        }
        if scale {
            return JSONAPI.response(try await deploy { state, deploymentId, now, wall in
                try state.kill(ids, scale: true, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wall).get()
            })
        }
        let views: [TaskView] = state.withLock { state in
            taskViews(ids.compactMap { state.instances[$0] }.filter(\.isActive), in: state)
        }
        try await handle { state, now, wall in
            (try state.kill(ids, scale: false, deploymentId: Self.newDeploymentId(), force: false, now: now, wallTimeMs: wall).get(), ())
        }
        return JSONAPI.response(["tasks": views])
    }

    // MARK: - Queue

    struct QueueView: Encodable, Sendable {
        struct Delay: Encodable, Sendable {
            var timeLeftSeconds: Int64
            var overdue: Bool
        }
        struct OffersSummary: Encodable, Sendable {
            var processedOffersCount = 0
            var unusedOffersCount = 0
        }
        struct Item: Encodable, Sendable {
            var app: AppDefinition
            var count: Int
            var role = "*"
            var delay: Delay
            var since: AppVersion
            var processedOffersSummary = OffersSummary()
        }
        var queue: [Item]
    }

    /// `GET /v2/queue`: apps with instances waiting to launch, as Marathon's `Queue`. Strata
    /// places through the master, not offers: the offer statistics are zero.
    func queueView() -> QueueView {
        let now = clock.now
        let wall = clock.wallTimeMs
        return state.withLock { state in
            QueueView(queue: state.queue(now: now, wallTimeMs: wall).compactMap { entry in
                guard let app = state.apps[entry.appId] else { return nil }
                return QueueView.Item(
                    app: app, count: entry.count,
                    delay: .init(timeLeftSeconds: entry.timeLeftSeconds(now: now), overdue: entry.isOverdue(now: now)),
                    since: AppVersion(millisecondsSinceEpoch: entry.sinceWallTimeMs))
            })
        }
    }

    // MARK: - Metrics

    /// `GET /metrics`: the launcher's gauges and counters in Prometheus' text format.
    func metricsText() -> String {
        let now = clock.now
        let wall = clock.wallTimeMs
        let (apps, instances, deployments, queue) = state.withLock { state in
            (state.apps.count, Array(state.instances.values), state.deployments.count, state.queue(now: now, wallTimeMs: wall))
        }
        let counts = counters.current
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Int)]) {
            lines.append("# HELP strata_launcher_\(name) \(help)")
            lines.append("# TYPE strata_launcher_\(name) \(type)")
            for sample in samples { lines.append("strata_launcher_\(name)\(sample.labels) \(sample.value)") }
        }
        metric("apps", "gauge", "Apps defined.", [("", apps)])
        metric("instances", "gauge", "Instances whose tasks have not ended, by state.", TaskState.allCases.filter { !$0.isTerminal }.map { taskState in
            ("{state=\"\(taskState.shortName)\"}", instances.count { $0.state == taskState })
        })
        metric("instances_healthy", "gauge", "Running instances by their health checks' verdict (apps with checks).", [
            ("{health=\"healthy\"}", instances.count { $0.state == .running && $0.isHealthy == true }),
            ("{health=\"unhealthy\"}", instances.count { $0.state == .running && $0.isHealthy == false }),
        ])
        metric("instances_being_killed", "gauge", "Instances a kill was asked for whose tasks have not ended.", [("", instances.count(where: \.isBeingKilled))])
        metric("deployments", "gauge", "Deployments running.", [("", deployments)])
        metric("queue_apps", "gauge", "Apps with instances waiting to launch.", [("", queue.count)])
        metric("queue_instances", "gauge", "Instances waiting to launch (held back by backoff, or not yet placed).", [("", queue.reduce(0) { $0 + $1.count })])
        metric("launches_total", "counter", "Instances submitted to the master.", [("", counts.launches)])
        metric("launches_refused_total", "counter", "Instances the master refused to take.", [("", counts.launchesRefused)])
        metric("kills_total", "counter", "Kills of instances' tasks sent to the master.", [("", counts.kills)])
        metric("health_checks_total", "counter", "Health checks run.", [("", counts.healthChecks)])
        metric("health_checks_failed_total", "counter", "Health checks that failed.", [("", counts.healthChecksFailed)])
        metric("event_subscribers", "gauge", "Clients attached to /v2/events.", [("", events.subscriberCount)])
        metric("event_subscribers_dropped_total", "counter", "Event subscribers dropped for reading too slowly.", [("", events.droppedCount)])
        return lines.joined(separator: "\n") + "\n"
    }
}
