import Foundation
import StrataCompute
import StrataCore

/// One event of Marathon's event bus (`docs/event-bus.md`), as `/v2/events` sends it: its type
/// (the SSE `event:` name and the body's `eventType`) and its JSON body.
public struct LauncherEvent: Sendable, Hashable {
    public var eventType: String
    /// The body, `eventType` and `timestamp` included.
    public var body: [String: JSONValue]

    public init(_ eventType: String, wallTimeMs: Int64, _ fields: [String: JSONValue]) {
        self.eventType = eventType
        var body = fields
        body["eventType"] = .string(eventType)
        body["timestamp"] = .string(AppVersion(millisecondsSinceEpoch: wallTimeMs).description)
        self.body = body
    }

    /// The SSE frame: `event: TYPE\ndata: JSON\n\n`.
    public func frame() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(JSONValue.object(body))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "event: \(eventType)\ndata: \(data)\n\n"
    }
}

/// Derives Marathon's events from the launcher's records. It keeps its own copy of the state,
/// applying each record as the launcher did, so that an event can name what the record alone
/// does not (the app and version of an instance that ended, the plan of a deployment that
/// finished). Start it from the launcher's state at some point and feed it every record logged
/// after that point, in order.
public struct LauncherEventDeriver: Sendable {
    public private(set) var state: LauncherState

    public init(state: LauncherState) {
        self.state = state
    }

    /// The events of `records` (applied in order), stamped with `wallTimeMs`.
    public mutating func events(for records: [LauncherRecord], now: MonotonicInstant, wallTimeMs: Int64) -> [LauncherEvent] {
        var events: [LauncherEvent] = []
        for record in records {
            events += derive(record, wallTimeMs: wallTimeMs)
            state.apply(record, now: now)
        }
        return events
    }

    /// The events one record makes, read against the state before it is applied.
    func derive(_ record: LauncherRecord, wallTimeMs: Int64) -> [LauncherEvent] {
        func event(_ type: String, _ fields: [String: JSONValue]) -> LauncherEvent { LauncherEvent(type, wallTimeMs: wallTimeMs, fields) }
        switch record {
        case .appPut(let app):
            // Marathon posts this for every API request that changes an app.
            return [event("api_post_event", ["uri": .string("/v2/apps\(app.id)"), "appDefinition": Self.json(app)])]
        case .appDeleted(let appId, _):
            return [event("app_terminated_event", ["appId": .string(appId.description)])]
        case .deploymentStarted(let deployment):
            return [event("deployment_info", ["plan": Self.plan(deployment), "currentStep": Self.step(deployment, 0)])]
        case .deploymentStepFinished(let id, let step, _):
            guard let deployment = state.deployments[id] else { return [] }
            var events = [event("deployment_step_success", ["plan": Self.plan(deployment), "currentStep": Self.step(deployment, step)])]
            if step + 1 < deployment.steps.count {
                events.append(event("deployment_info", ["plan": Self.plan(deployment), "currentStep": Self.step(deployment, step + 1)]))
            }
            return events
        case .deploymentFinished(let id, _):
            guard let deployment = state.deployments[id] else { return [] }
            return [event("deployment_success", ["id": .string(id), "plan": Self.plan(deployment)])]
        case .deploymentCancelled(let id, _):
            guard let deployment = state.deployments[id] else { return [] }
            return [event("deployment_failed", ["id": .string(id), "plan": Self.plan(deployment), "reason": .string("The deployment was cancelled")])]
        case .instanceLaunched(let instance):
            return Self.statusEvents(instance, state: instance.state, message: nil, wallTimeMs: wallTimeMs)
        case .instanceChanged(let change):
            guard var instance = state.instances[change.instanceId], instance.state != change.state else { return [] }
            instance.agentId = change.agentId ?? instance.agentId
            instance.host = change.host ?? instance.host
            instance.ports = change.ports ?? instance.ports
            return Self.statusEvents(instance, state: change.state, message: change.message, wallTimeMs: wallTimeMs)
        case .instanceKillRequested(let id, let reason, _):
            guard reason == .failedHealthChecks, let instance = state.instances[id] else { return [] }
            let cause = state.healthTracker.health(of: id, check: 0)?.lastFailureCause ?? "failed health checks"
            return [event("unhealthy_instance_kill_event", [
                "appId": .string(instance.appId.description), "taskId": .string(id), "instanceId": .string(id),
                "version": .string(instance.configVersion.description), "reason": .string(cause), "host": .string(instance.host ?? ""),
                "slaveId": instance.agentId.map(JSONValue.string) ?? .null,
            ])]
        case .instanceHealthChanged(let id, let isHealthy, _):
            guard let instance = state.instances[id], instance.isHealthy != isHealthy else { return [] }
            return [
                event("health_status_changed_event", [
                    "appId": .string(instance.appId.description), "instanceId": .string(id), "taskId": .string(id),
                    "version": .string(instance.configVersion.description), "alive": .boolean(isHealthy),
                ]),
                event("instance_health_changed_event", [
                    "instanceId": .string(id), "runSpecId": .string(instance.appId.description),
                    "runSpecVersion": .string(instance.configVersion.description), "healthy": .boolean(isHealthy),
                ]),
            ]
        case .restored:
            // Only read at start-up, before anyone subscribes.
            return []
        }
    }

    /// `status_update_event` (Mesos' task status, as Marathon forwards it) and
    /// `instance_changed_event` (the instance's condition) for an instance entering `state`.
    static func statusEvents(_ instance: AppInstance, state: TaskState, message: String?, wallTimeMs: Int64) -> [LauncherEvent] {
        let appId = JSONValue.string(instance.appId.description)
        let version = JSONValue.string(instance.configVersion.description)
        let host = JSONValue.string(instance.host ?? "")
        return [
            LauncherEvent("status_update_event", wallTimeMs: wallTimeMs, [
                "slaveId": .string(instance.agentId ?? ""), "taskId": .string(instance.id), "taskStatus": .string(state.rawValue),
                "message": .string(message ?? ""), "appId": appId, "host": host,
                "ipAddresses": .array(instance.host.map { [.object(["ipAddress": .string($0), "protocol": .string("IPv4")])] } ?? []),
                "ports": .array(instance.ports.map { .number(Double($0)) }), "version": version,
            ]),
            LauncherEvent("instance_changed_event", wallTimeMs: wallTimeMs, [
                "instanceId": .string(instance.id), "condition": .string(condition(state)), "runSpecId": appId,
                "agentId": instance.agentId.map(JSONValue.string) ?? .null, "host": host, "runSpecVersion": version,
            ]),
        ]
    }

    /// Marathon's instance condition for a task state.
    static func condition(_ state: TaskState) -> String {
        switch state {
        case .staging: "Staging"
        case .starting: "Starting"
        case .running: "Running"
        case .finished: "Finished"
        case .failed: "Failed"
        case .killed: "Killed"
        case .lost: "Unreachable"
        }
    }

    /// A deployment as Marathon's events show it (`raml.DeploymentPlan`): id, version, steps.
    static func plan(_ deployment: Deployment) -> JSONValue {
        .object([
            "id": .string(deployment.id), "version": .string(deployment.version.description),
            "steps": .array(deployment.steps.indices.map { step(deployment, $0) }),
        ])
    }

    static func step(_ deployment: Deployment, _ index: Int) -> JSONValue {
        let actions = deployment.steps.indices.contains(index) ? deployment.steps[index] : []
        return .object(["actions": .array(actions.map { .object(["action": .string($0.name), "app": .string($0.appId.description)]) })])
    }

    static func json(_ value: some Encodable) -> JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))) ?? .null
    }
}
