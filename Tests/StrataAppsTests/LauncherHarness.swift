import StrataApps
import StrataCompute
import StrataCore

/// A launcher state with a pretend cluster behind it: launches and kills queue up as events the
/// test lets happen one at a time, on a clock that moves only when told. Every record the state
/// wrote is kept, to replay.
struct LauncherHarness {
    enum Event: Equatable {
        case running(String)
        case passes(String)
        case killed(String)
    }

    var state = LauncherState()
    var now = MonotonicInstant.milliseconds(1_000)
    var wallTimeMs: Int64 = 1_764_063_081_000
    var events: [Event] = []
    var log: [LauncherRecord] = []
    var deploymentNumber = 0
    /// Whether launched instances pass their health checks once running.
    var passHealthChecks = true

    mutating func advance(bySeconds seconds: Double) {
        let milliseconds = Int64(seconds * 1000)
        now = now.advanced(byMilliseconds: milliseconds)
        wallTimeMs += milliseconds
    }

    mutating func nextDeploymentId() -> String {
        deploymentNumber += 1
        return "deployment-\(deploymentNumber)"
    }

    /// Keeps an outcome's records and turns its actions into future events.
    mutating func absorb(_ outcome: LauncherState.Outcome) {
        log += outcome.records
        for action in outcome.actions {
            switch action {
            case .launch(let instanceId, _): events.append(.running(instanceId))
            case .kill(let instanceId, _, _): events.append(.killed(instanceId))
            }
        }
    }

    mutating func absorb(_ result: Result<LauncherState.Outcome, LauncherError>) throws {
        absorb(try result.get())
    }

    /// Lets the next event happen; false when none is left.
    @discardableResult
    mutating func step() -> Bool {
        guard !events.isEmpty else { return false }
        let event = events.removeFirst()
        switch event {
        case .running(let id):
            guard let instance = state.instances[id] else { return true }
            absorb(state.instanceUpdate(
                InstanceChange(instanceId: id, state: .running, agentId: "agent-1", host: "node-1", ports: [31000], atMs: wallTimeMs),
                now: now, wallTimeMs: wallTimeMs))
            if let app = state.apps[instance.appId], !app.healthChecks.isEmpty, passHealthChecks { events.append(.passes(id)) }
        case .passes(let id):
            guard let instance = state.instances[id], let app = state.apps[instance.appId] else { return true }
            for index in app.healthChecks.indices {
                absorb(state.healthResult(instanceId: id, checkIndex: index, passed: true, now: now, wallTimeMs: wallTimeMs))
            }
        case .killed(let id):
            absorb(state.instanceUpdate(InstanceChange(instanceId: id, state: .killed, atMs: wallTimeMs), now: now, wallTimeMs: wallTimeMs))
        }
        return true
    }

    /// Active instances of an app.
    func active(_ appId: PathId) -> [AppInstance] { state.instances(of: appId).filter(\.isActive) }

    /// Instances healthy and wanted (not being killed).
    func healthy(_ appId: PathId) -> Int {
        let hasChecks = !(state.apps[appId]?.healthChecks.isEmpty ?? true)
        return active(appId).count { !$0.isBeingKilled && $0.isConsideredHealthy(hasHealthChecks: hasChecks) }
    }

    /// The state the log gives when replayed into an empty one.
    func replayed() -> LauncherState {
        var replay = LauncherState()
        for record in log { replay.apply(record, now: now) }
        return replay
    }
}

extension AppDefinition {
    static func web(instances: Int = 4, minimumHealthCapacity: Double = 1, maximumOverCapacity: Double = 1, healthChecks: Bool = true)
        -> AppDefinition
    {
        var app = AppDefinition(id: PathId("/shop/web"), cmd: "serve $PORT0")
        app.instances = instances
        app.upgradeStrategy = UpgradeStrategy(minimumHealthCapacity: minimumHealthCapacity, maximumOverCapacity: maximumOverCapacity)
        if healthChecks { app.healthChecks = [HealthCheck(protocol: .http)] }
        return app
    }
}
