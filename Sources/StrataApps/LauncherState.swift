import StrataCore

/// The launcher's decisions about apps, deployments and instances, as a value: events go in with
/// `now:` (and the wall time for what users read and versions), records (to log durably first)
/// and actions (for the shell to perform) come out. The same `apply` builds the state live and
/// when the log is replayed after a restart.
public struct LauncherState: Sendable {
    /// What the shell does after logging the outcome's records.
    public enum Action: Sendable, Hashable {
        /// Ask the master to place and start an instance of `app` (the definition it runs).
        case launch(instanceId: String, app: AppDefinition)
        /// Ask the master to kill an instance's task.
        case kill(instanceId: String, agentId: String?, reason: KillReason)
    }

    /// Records to make durable, then actions to perform, in that order.
    public struct Outcome: Sendable {
        public var records: [LauncherRecord] = []
        public var actions: [Action] = []
        public init() {}
    }

    public private(set) var apps: [PathId: AppDefinition] = [:]
    /// Every stored version of each app, oldest first.
    public private(set) var versions: [PathId: [AppDefinition]] = [:]
    public private(set) var deployments: [String: Deployment] = [:]
    /// Running deployments' ids, oldest first.
    public private(set) var deploymentOrder: [String] = []
    /// Instances whose tasks have not ended (an ended one leaves, as Marathon expunges it).
    public private(set) var instances: [String: AppInstance] = [:]
    public private(set) var nextInstanceNumber = 1
    public private(set) var lastVersionMs: Int64 = 0

    // Not durable: rebuilt as events come (as Marathon keeps them in memory).
    public internal(set) var launchDelays: [PathId: LaunchDelay] = [:]
    public private(set) var runningSince: [String: MonotonicInstant] = [:]
    public private(set) var healthTracker = HealthTracker()
    /// Each app's last failed task (Marathon's `lastTaskFailure`), from the records.
    public private(set) var lastTaskFailures: [PathId: TaskFailure] = [:]

    public init() {}

    public func instances(of appId: PathId) -> [AppInstance] {
        instances.values.filter { $0.appId == appId }.sorted { $0.id < $1.id }
    }

    /// The deployments that hold a lock on `appId`.
    public func deployments(locking appId: PathId) -> [Deployment] {
        deploymentOrder.compactMap { deployments[$0] }.filter { $0.affectedApps.contains(appId) }
    }

    // MARK: - Applying records

    /// Applies one record: the only way the durable state changes, live and on replay.
    public mutating func apply(_ record: LauncherRecord, now: MonotonicInstant) {
        switch record {
        case .appPut(let app):
            let previous = apps[app.id]
            apps[app.id] = app
            var stored = versions[app.id, default: []].filter { $0.version != app.version }
            stored.append(app)
            versions[app.id] = stored.sorted { ($0.version ?? AppVersion(millisecondsSinceEpoch: 0)) < ($1.version ?? AppVersion(millisecondsSinceEpoch: 0)) }
            lastVersionMs = max(lastVersionMs, app.version?.millisecondsSinceEpoch ?? 0)
            // A new configuration starts without the old one's backoff (docs/backoff.md).
            if previous?.configVersion != app.configVersion { launchDelays[app.id] = nil }
        case .appDeleted(let id, _):
            apps[id] = nil
            versions[id] = nil
            launchDelays[id] = nil
            lastTaskFailures[id] = nil
        case .deploymentStarted(let deployment):
            if deployments[deployment.id] == nil { deploymentOrder.append(deployment.id) }
            deployments[deployment.id] = deployment
            lastVersionMs = max(lastVersionMs, deployment.version.millisecondsSinceEpoch)
        case .deploymentStepFinished(let id, let step, _):
            if let current = deployments[id]?.currentStep, current <= step { deployments[id]?.currentStep = step + 1 }
        case .deploymentFinished(let id, _), .deploymentCancelled(let id, _):
            deployments[id] = nil
            deploymentOrder.removeAll { $0 == id }
        case .instanceLaunched(let instance):
            instances[instance.id] = instance
            if instance.state == .running { runningSince[instance.id] = now }
            if let number = Self.instanceNumber(instance.id) { nextInstanceNumber = max(nextInstanceNumber, number + 1) }
        case .instanceChanged(let change):
            applyChange(change, now: now)
        case .instanceKillRequested(let id, let reason, _):
            guard var instance = instances[id] else { return }
            instance.isBeingKilled = true
            instances[id] = instance
            // Marathon's app schema: the backoff "applies also to tasks that are killed due to
            // failing too many health checks".
            if reason == .failedHealthChecks { increaseDelay(for: instance, now: now) }
        case .instanceHealthChanged(let id, let isHealthy, _):
            instances[id]?.isHealthy = isHealthy
        case .restored(let snapshot):
            apps = Dictionary(snapshot.apps.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
            versions = [:]
            for stored in snapshot.versions { if let id = stored.first?.id { versions[id] = stored } }
            deployments = Dictionary(snapshot.deployments.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
            deploymentOrder = snapshot.deployments.map(\.id)
            instances = Dictionary(snapshot.instances.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
            nextInstanceNumber = snapshot.nextInstanceNumber
            lastVersionMs = snapshot.lastVersionMs
            lastTaskFailures = Dictionary(snapshot.lastTaskFailures.map { ($0.appId, $0) }, uniquingKeysWith: { _, last in last })
            // What is kept in memory starts again, as after a replay of the records.
            launchDelays = [:]
            healthTracker = HealthTracker()
            runningSince = [:]
            for instance in snapshot.instances where instance.state == .running { runningSince[instance.id] = now }
        }
    }

    /// The durable state as records that rebuild it (one `restored`): what a snapshot of the
    /// log holds.
    public func snapshotRecords() -> [LauncherRecord] {
        let ids = apps.keys.sorted()
        return [.restored(LauncherStateSnapshot(
            apps: ids.compactMap { apps[$0] }, versions: versions.keys.sorted().compactMap { versions[$0] },
            deployments: deploymentOrder.compactMap { deployments[$0] }, instances: instances.values.sorted { $0.id < $1.id },
            nextInstanceNumber: nextInstanceNumber, lastVersionMs: lastVersionMs,
            lastTaskFailures: lastTaskFailures.keys.sorted().compactMap { lastTaskFailures[$0] }))]
    }

    private mutating func applyChange(_ change: InstanceChange, now: MonotonicInstant) {
        guard var instance = instances[change.instanceId] else { return }
        instance.state = change.state
        instance.agentId = change.agentId ?? instance.agentId
        instance.host = change.host ?? instance.host
        instance.ports = change.ports ?? instance.ports
        if change.state == .running, instance.startedAtMs == nil {
            instance.startedAtMs = change.atMs
            runningSince[instance.id] = now
        }
        guard change.state.isTerminal else {
            instances[instance.id] = instance
            // A launch that got going moves the backoff's reference time (`advanceDelay`).
            if let delay = launchDelays[instance.appId], delay.configVersion == instance.configVersion {
                launchDelays[instance.appId]?.referenceTime = max(delay.referenceTime, now)
            }
            return
        }
        // Failed and finished tasks slow the app's launches; killed and lost ones do not
        // (docs/backoff.md, `NotifyRateLimiterStep.limitWorthy`).
        if [.failed, .finished].contains(change.state), !instance.isBeingKilled { increaseDelay(for: instance, now: now) }
        if [.failed, .lost].contains(change.state), apps[instance.appId] != nil {
            lastTaskFailures[instance.appId] = TaskFailure(
                appId: instance.appId, taskId: instance.id, state: change.state.rawValue, message: change.message ?? "",
                host: instance.host ?? "", slaveId: instance.agentId, version: instance.configVersion,
                timestamp: AppVersion(millisecondsSinceEpoch: change.atMs))
        }
        instances[instance.id] = nil
        runningSince[instance.id] = nil
        healthTracker.forget(instance.id)
    }

    private mutating func increaseDelay(for instance: AppInstance, now: MonotonicInstant) {
        guard let app = apps[instance.appId], let version = app.configVersion, version == instance.configVersion else { return }
        if let delay = launchDelays[app.id], delay.configVersion == version {
            launchDelays[app.id] = delay.increased(for: app, now: now)
        } else {
            launchDelays[app.id] = LaunchDelay.first(for: app, configVersion: version, now: now)
        }
    }

    mutating func record(_ record: LauncherRecord, now: MonotonicInstant, into outcome: inout Outcome) {
        apply(record, now: now)
        outcome.records.append(record)
    }

    /// The number of an instance id (`<app>.instance-<n>`), nil for another string.
    public static func instanceNumber(_ id: String) -> Int? {
        guard let range = id.range(of: ".instance-", options: .backwards) else { return nil }
        return Int(id[range.upperBound...])
    }

    // MARK: - Changing apps

    /// The version a change made at `wallTimeMs` gets: later than every earlier one.
    public func nextVersion(wallTimeMs: Int64) -> AppVersion {
        AppVersion(millisecondsSinceEpoch: max(wallTimeMs, lastVersionMs + 1))
    }

    /// Deploys new definitions of apps (new, changed, or restarted when named in `restart`) as
    /// one deployment: versions are stored, the deployment locks its apps and runs in steps in
    /// the order of their dependencies. Refused when another deployment holds one of the apps,
    /// unless `force`, which cancels that deployment (its apps stay as they are).
    public mutating func deploy(
        _ targets: [AppDefinition], restart: Set<PathId> = [], deploymentId: String, force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        let version = nextVersion(wallTimeMs: wallTimeMs)
        let changed = changes(targets, restart: restart, version: version)
        var originals: [PathId: AppVersion?] = [:]
        for (app, _) in changed { originals[app.id] = .some(apps[app.id]?.version) }
        let steps = Self.steps(changed.map(\.action), apps: changed.map(\.app), reverse: false)
        return start(
            Deployment(id: deploymentId, version: version, steps: steps, originalVersions: originals, startedAtMs: wallTimeMs),
            puts: changed.map(\.app), deletes: [], force: force, now: now, wallTimeMs: wallTimeMs)
    }

    /// The new versions of `targets` and what each needs (Marathon's `GroupVersioningUtil`): a
    /// new app starts; a changed configuration (or a restart) replaces every instance and is a
    /// new configuration version; a new instance count alone scales; an unchanged one is left out.
    func changes(_ targets: [AppDefinition], restart: Set<PathId>, version: AppVersion) -> [(app: AppDefinition, action: DeploymentAction)] {
        targets.compactMap { target in
            var app = target
            app.version = version
            guard let current = apps[target.id] else {
                app.versionInfo = .init(lastScalingAt: version, lastConfigChangeAt: version)
                return (app, .start(app.id))
            }
            if restart.contains(target.id) || current.isUpgrade(to: target) {
                app.versionInfo = .init(lastScalingAt: version, lastConfigChangeAt: version)
                return (app, .restart(app.id))
            }
            guard current.instances != target.instances else { return nil }
            app.versionInfo = .init(lastScalingAt: version, lastConfigChangeAt: current.configVersion ?? version)
            return (app, .scale(app.id))
        }
    }

    /// Creates an app that must not exist yet (`POST /v2/apps`).
    public mutating func create(
        _ app: AppDefinition, deploymentId: String, force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        if apps[app.id] != nil { return .failure(.alreadyExists(app.id)) }
        return deploy([app], deploymentId: deploymentId, force: force, now: now, wallTimeMs: wallTimeMs)
    }

    /// Changes an app's instance count (a new version that replaces nothing).
    public mutating func scale(
        _ appId: PathId, to count: Int, deploymentId: String, force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        guard var app = apps[appId] else { return .failure(.appNotFound(appId, version: nil)) }
        app.instances = count
        return deploy([app], deploymentId: deploymentId, force: force, now: now, wallTimeMs: wallTimeMs)
    }

    /// Replaces every instance of an app with one of a new version of the same definition.
    public mutating func restart(
        _ appId: PathId, deploymentId: String, force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        guard let app = apps[appId] else { return .failure(.appNotFound(appId, version: nil)) }
        return deploy([app], restart: [appId], deploymentId: deploymentId, force: force, now: now, wallTimeMs: wallTimeMs)
    }

    /// Deploys a stored version again (as a new version, Marathon's rollback).
    public mutating func rollback(
        _ appId: PathId, to version: AppVersion, deploymentId: String, force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        guard let old = versions[appId]?.first(where: { $0.version == version }) else {
            return .failure(.appNotFound(appId, version: version))
        }
        return deploy([old], deploymentId: deploymentId, force: force, now: now, wallTimeMs: wallTimeMs)
    }

    /// Removes an app: it leaves at once; a deployment kills its instances.
    public mutating func delete(
        _ appId: PathId, deploymentId: String, force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        guard let app = apps[appId] else { return .failure(.appNotFound(appId, version: nil)) }
        let original: [PathId: AppVersion?] = [appId: app.version]
        let deployment = Deployment(
            id: deploymentId, version: nextVersion(wallTimeMs: wallTimeMs), steps: [[.stop(appId)]], originalVersions: original,
            startedAtMs: wallTimeMs)
        return start(deployment, puts: [], deletes: [appId], force: force, now: now, wallTimeMs: wallTimeMs)
    }

    /// Cancels a running deployment. With `rollback` (Marathon's `DELETE /v2/deployments/{id}`
    /// without `force`), a new deployment (`rollbackDeploymentId`) puts its apps back as they
    /// were: earlier versions deployed again, apps it created removed.
    public mutating func cancel(
        _ deploymentId: String, rollback rollbackDeploymentId: String?, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        guard let deployment = deployments[deploymentId] else { return .failure(.deploymentNotFound(deploymentId)) }
        var outcome = Outcome()
        record(.deploymentCancelled(deploymentId: deploymentId, atMs: wallTimeMs), now: now, into: &outcome)
        guard let rollbackDeploymentId else {
            merge(reconcile(now: now, wallTimeMs: wallTimeMs), into: &outcome)
            return .success(outcome)
        }
        let version = nextVersion(wallTimeMs: wallTimeMs)
        let originals = deployment.originalVersions.sorted { $0.key < $1.key }
        let earlier = originals.compactMap { appId, original in original.flatMap { earlier in versions[appId]?.first { $0.version == earlier } } }
        let reverted = changes(earlier, restart: [], version: version)
        let deletes = originals.filter { $0.value == nil && apps[$0.key] != nil }.map(\.key)
        var steps = Self.steps(reverted.map(\.action), apps: reverted.map(\.app), reverse: false)
        if !deletes.isEmpty { steps.append(deletes.map { .stop($0) }) }
        let reverting = Deployment(id: rollbackDeploymentId, version: version, steps: steps, originalVersions: [:], startedAtMs: wallTimeMs)
        let puts = reverted.map(\.app)
        switch start(reverting, puts: puts, deletes: deletes, force: true, now: now, wallTimeMs: wallTimeMs) {
        case .success(let more):
            outcome.records += more.records
            outcome.actions += more.actions
            return .success(outcome)
        case .failure(let error):
            return .failure(error)
        }
    }

    mutating func start(
        _ deployment: Deployment, puts: [AppDefinition], deletes: [PathId], force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        let touched = Set(puts.map(\.id) + deletes)
        let blocking = deploymentOrder.compactMap { deployments[$0] }.filter { !touched.isDisjoint(with: $0.affectedApps) }
        if !blocking.isEmpty, !force { return .failure(.locked(deploymentIds: blocking.map(\.id))) }
        var outcome = Outcome()
        for blocked in blocking {
            record(.deploymentCancelled(deploymentId: blocked.id, atMs: wallTimeMs), now: now, into: &outcome)
        }
        for app in puts { record(.appPut(app), now: now, into: &outcome) }
        for appId in deletes { record(.appDeleted(appId, atMs: wallTimeMs), now: now, into: &outcome) }
        record(.deploymentStarted(deployment), now: now, into: &outcome)
        merge(reconcile(now: now, wallTimeMs: wallTimeMs), into: &outcome)
        return .success(outcome)
    }

    /// Orders actions by the apps' dependencies: an app starts (or is replaced, or scaled) in a
    /// step after every app it depends on; apps being stopped go in the reverse order.
    static func steps(_ actions: [DeploymentAction], apps: [AppDefinition], reverse: Bool) -> [[DeploymentAction]] {
        guard !actions.isEmpty else { return [] }
        let byId = Dictionary(apps.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        var levels: [PathId: Int] = [:]
        func level(_ id: PathId, visiting: Set<PathId>) -> Int {
            if let known = levels[id] { return known }
            // A cycle (refused by Marathon's group validation) is cut where it closes.
            let dependencies = (byId[id]?.dependencies ?? []).filter { byId[$0] != nil && !visiting.contains($0) }
            let value = dependencies.map { level($0, visiting: visiting.union([id])) + 1 }.max() ?? 0
            levels[id] = value
            return value
        }
        var steps: [[DeploymentAction]] = []
        for action in actions {
            let index = level(action.appId, visiting: [action.appId])
            while steps.count <= index { steps.append([]) }
            steps[index].append(action)
        }
        steps = steps.filter { !$0.isEmpty }
        return reverse ? steps.reversed() : steps
    }

    // MARK: - Instances

    /// A task's state as the master reports it. A report of an instance the launcher does not
    /// know (or has given up on) is answered with a kill if the task still runs.
    public mutating func instanceUpdate(_ change: InstanceChange, now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        guard let instance = instances[change.instanceId] else {
            if !change.state.isTerminal {
                outcome.actions.append(.kill(instanceId: change.instanceId, agentId: change.agentId, reason: .orphaned))
            }
            return outcome
        }
        let moved = change.agentId.map { $0 != instance.agentId } ?? false || change.ports.map { $0 != instance.ports } ?? false
        guard change.state != instance.state || moved else { return outcome }
        record(.instanceChanged(change), now: now, into: &outcome)
        merge(reconcile(now: now, wallTimeMs: wallTimeMs), into: &outcome)
        return outcome
    }

    /// One health-check result for an instance: recorded when the instance's health changes,
    /// and an instance that failed too many checks in a row is killed (then replaced).
    ///
    /// `byAgent`: the result of a COMMAND check, which the instance's agent runs and acts on
    /// itself (it kills the task when the check keeps failing): the health is recorded, but no
    /// kill is asked for here.
    public mutating func healthResult(
        instanceId: String, checkIndex: Int, passed: Bool, cause: String? = nil, byAgent: Bool = false, now: MonotonicInstant,
        wallTimeMs: Int64
    ) -> Outcome {
        var outcome = Outcome()
        guard let instance = instances[instanceId], !instance.isBeingKilled, let app = apps[instance.appId],
              app.configVersion == instance.configVersion, app.healthChecks.indices.contains(checkIndex)
        else { return outcome }
        let verdict = healthTracker.record(
            instanceId: instanceId, checkIndex: checkIndex, of: app.healthChecks, passed: passed, cause: cause,
            runningSince: instance.state == .running ? runningSince[instanceId] : nil, now: now)
        if case .kill = verdict, !byAgent {
            record(.instanceHealthChanged(instanceId: instanceId, isHealthy: false, atMs: wallTimeMs), now: now, into: &outcome)
            record(.instanceKillRequested(instanceId: instanceId, reason: .failedHealthChecks, atMs: wallTimeMs), now: now, into: &outcome)
            outcome.actions.append(.kill(instanceId: instanceId, agentId: instance.agentId, reason: .failedHealthChecks))
        } else if let isHealthy = healthTracker.isHealthy(instanceId, checkCount: app.healthChecks.count), isHealthy != instance.isHealthy {
            record(.instanceHealthChanged(instanceId: instanceId, isHealthy: isHealthy, atMs: wallTimeMs), now: now, into: &outcome)
        }
        merge(reconcile(now: now, wallTimeMs: wallTimeMs), into: &outcome)
        return outcome
    }

    /// The periodic pass: backoffs past their reset time are dropped, and every app is brought
    /// towards its target (launches whose backoff has run out go now).
    public mutating func tick(now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        for (appId, delay) in launchDelays where delay.isOverdue(now: now) { launchDelays[appId] = nil }
        return reconcile(now: now, wallTimeMs: wallTimeMs)
    }

    /// When the next launch held back by a backoff may go, for the shell to tick then.
    public func nextLaunchDeadline(now: MonotonicInstant) -> MonotonicInstant? {
        launchDelays.values.map(\.deadline).filter { $0 > now }.min()
    }

    // MARK: - Reconciling

    mutating func reconcile(now: MonotonicInstant, wallTimeMs: Int64) -> Outcome {
        var outcome = Outcome()
        var planned: [PathId: (plan: AppPlan, reason: KillReason)] = [:]
        var frozen: Set<PathId> = []
        for deploymentId in deploymentOrder {
            guard var deployment = deployments[deploymentId] else { continue }
            while true {
                if deployment.currentStep >= deployment.steps.count {
                    record(.deploymentFinished(deploymentId: deploymentId, atMs: wallTimeMs), now: now, into: &outcome)
                    break
                }
                var stepPlans: [PathId: (plan: AppPlan, reason: KillReason)] = [:]
                for action in deployment.steps[deployment.currentStep] {
                    stepPlans[action.appId] = plan(for: action)
                }
                if stepPlans.values.allSatisfy(\.plan.isComplete) {
                    let step = deployment.currentStep
                    record(.deploymentStepFinished(deploymentId: deploymentId, step: step, atMs: wallTimeMs), now: now, into: &outcome)
                    deployment.currentStep = step + 1
                    continue
                }
                planned.merge(stepPlans) { first, _ in first }
                // Apps of later steps wait as they are until their step comes.
                for later in deployment.steps.dropFirst(deployment.currentStep + 1) { frozen.formUnion(later.map(\.appId)) }
                break
            }
        }
        for appId in apps.keys.sorted() where planned[appId] == nil && !frozen.contains(appId) {
            let plan = DeploymentPlanner.scale(target: apps[appId]!, instances: instances(of: appId))
            planned[appId] = (plan, .scalingDown)
        }
        // Instances of removed apps that no deployment is stopping.
        let orphans = Set(instances.values.map(\.appId)).filter { apps[$0] == nil && planned[$0] == nil }
        for appId in orphans.sorted() {
            let kill = instances(of: appId).filter { !$0.isBeingKilled }.map(\.id)
            planned[appId] = (AppPlan(kill: kill, isComplete: kill.isEmpty), .deletingApp)
        }
        for appId in planned.keys.sorted() {
            let (plan, reason) = planned[appId]!
            for instanceId in plan.kill {
                let agentId = instances[instanceId]?.agentId
                record(.instanceKillRequested(instanceId: instanceId, reason: reason, atMs: wallTimeMs), now: now, into: &outcome)
                outcome.actions.append(.kill(instanceId: instanceId, agentId: agentId, reason: reason))
            }
            guard plan.startCount > 0, let app = apps[appId], let configVersion = app.configVersion else { continue }
            if let delay = launchDelays[appId], delay.configVersion == configVersion, delay.deadline > now { continue }
            for _ in 0..<plan.startCount {
                let instance = AppInstance(
                    id: "\(app.id.safePath).instance-\(nextInstanceNumber)", appId: appId, configVersion: configVersion,
                    stagedAtMs: wallTimeMs)
                record(.instanceLaunched(instance), now: now, into: &outcome)
                outcome.actions.append(.launch(instanceId: instance.id, app: app))
            }
        }
        return outcome
    }

    private func plan(for action: DeploymentAction) -> (plan: AppPlan, reason: KillReason) {
        let current = instances(of: action.appId)
        switch action {
        case .start(let id), .scale(let id):
            guard let app = apps[id] else { return (AppPlan(isComplete: true), .scalingDown) }
            return (DeploymentPlanner.scale(target: app, instances: current), .scalingDown)
        case .restart(let id):
            guard let app = apps[id] else { return (AppPlan(isComplete: true), .upgrading) }
            return (DeploymentPlanner.replace(target: app, instances: current), .upgrading)
        case .stop:
            let kill = current.filter { !$0.isBeingKilled }.map(\.id)
            return (AppPlan(kill: kill, isComplete: current.isEmpty), .deletingApp)
        }
    }

    func merge(_ more: Outcome, into outcome: inout Outcome) {
        outcome.records += more.records
        outcome.actions += more.actions
    }
}

/// Why a change to apps or deployments was refused, with Marathon's status and message.
public enum LauncherError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 409: another deployment holds one of the apps (`AppLockedException`).
    case locked(deploymentIds: [String])
    /// 404 (`AppNotFoundException`).
    case appNotFound(PathId, version: AppVersion?)
    /// 409 for `POST /v2/apps` of an id in use.
    case alreadyExists(PathId)
    /// 404 for `/v2/deployments/{id}`.
    case deploymentNotFound(String)
    /// 404 for `/v2/groups/{id}` (`UnknownGroupException`).
    case groupNotFound(PathId)
    /// 409 for `POST /v2/groups` of a group that exists.
    case groupExists(PathId)
    /// 409 for `POST /v2/groups` of a group whose id is an app's.
    case appPathExists(PathId)
    /// 404 for `DELETE /v2/queue/{appId}/delay` of an app with nothing waiting to launch.
    case notInQueue(PathId)

    public var status: Int {
        switch self {
        case .locked, .alreadyExists, .groupExists, .appPathExists: 409
        case .appNotFound, .deploymentNotFound, .groupNotFound, .notInQueue: 404
        }
    }

    public var message: String {
        switch self {
        case .locked:
            "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'."
        case .appNotFound(let id, let version): "App '\(id)' does not exist" + (version.map { " in version \($0)" } ?? "")
        case .alreadyExists(let id): "An app with id [\(id)] already exists."
        case .deploymentNotFound(let id): "DeploymentPlan \(id) does not exist"
        case .groupNotFound(let id): "Group '\(id)' does not exist"
        case .groupExists(let id): "Group \(id) is already created. Use PUT to change this group."
        case .appPathExists(let id): "An app with the path \(id) already exists."
        case .notInQueue(let id): "Application \(id) not found in tasks queue."
        }
    }

    public var description: String {
        if case .locked(let ids) = self { return "\(message) (blocked by \(ids.joined(separator: ", ")))" }
        return message
    }
}
