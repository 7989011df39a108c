import StrataCore

extension LauncherState {
    // MARK: - Groups

    /// Deploys new definitions and removals of apps as one deployment (a group change): apps
    /// removed are stopped in a first step (as Marathon's `DeploymentPlan` stops them first),
    /// then the others start, restart or scale in the order of their dependencies.
    public mutating func change(
        puts: [AppDefinition], deletes: [PathId], deploymentId: String, force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        let version = nextVersion(wallTimeMs: wallTimeMs)
        let removed = Set(deletes).filter { apps[$0] != nil }.sorted()
        let changed = changes(puts, restart: [], version: version)
        var originals: [PathId: AppVersion?] = [:]
        for (app, _) in changed { originals[app.id] = .some(apps[app.id]?.version) }
        for appId in removed { originals[appId] = .some(apps[appId]?.version) }
        var steps: [[DeploymentAction]] = removed.isEmpty ? [] : [removed.map { .stop($0) }]
        steps += Self.steps(changed.map(\.action), apps: changed.map(\.app), reverse: false)
        return start(
            Deployment(id: deploymentId, version: version, steps: steps, originalVersions: originals, startedAtMs: wallTimeMs),
            puts: changed.map(\.app), deletes: removed, force: force, now: now, wallTimeMs: wallTimeMs)
    }

    /// What a group update changes (Marathon's `UpdateGroupStructureOp`): a group's `apps`,
    /// when given, replace the apps directly in it (the others are removed); its `groups`, when
    /// given, replace its sub-groups (a sub-group not named is removed with every app in it, a
    /// named one is updated by the same rule). What is not given is left as it is.
    public func groupChange(_ update: AppGroup) -> (puts: [AppDefinition], deletes: [PathId]) {
        var puts: [AppDefinition] = []
        var deletes: [PathId] = []
        func execute(_ group: AppGroup) {
            let inside = apps.keys.filter { $0.isWithin(group.id) && $0 != group.id }
            let depth = group.id.segments.count
            if group.appsGiven {
                puts += group.apps
                let given = Set(group.apps.map(\.id))
                deletes += inside.filter { $0.segments.count == depth + 1 && !given.contains($0) }
            }
            if group.groupsGiven {
                let given = Set(group.groups.map(\.id))
                for child in group.groups { execute(child) }
                deletes += inside.filter { $0.segments.count > depth + 1 && !given.contains(PathId(segments: Array($0.segments.prefix(depth + 1)))) }
            }
        }
        execute(update)
        return (puts, Set(deletes).subtracting(puts.map(\.id)).sorted())
    }

    /// The apps in group `groupId` (at any depth) with their instances scaled by `factor`,
    /// rounded up (Marathon's `scaleBy`).
    public func scaled(_ groupId: PathId, by factor: Double) -> [AppDefinition] {
        apps.values.filter { $0.id.isWithin(groupId) && $0.id != groupId }.sorted { $0.id < $1.id }.map { app in
            var scaled = app
            scaled.instances = Int((Double(app.instances) * factor).rounded(.up))
            return scaled
        }
    }

    /// Whether a group exists: the root always, another when an app lies below it (groups are
    /// not stored of their own; they are the paths of the apps).
    public func groupExists(_ groupId: PathId) -> Bool {
        GroupTree.exists(groupId, apps: apps.keys)
    }

    // MARK: - Killing chosen instances

    /// Kills chosen instances (Marathon's `DELETE /v2/apps/{id}/tasks/{taskId}` and
    /// `POST /v2/tasks/delete`). Without `scale`, each is killed and, like any killed instance,
    /// replaced. With `scale`, their apps get new versions with `instances` lowered by the number
    /// killed (never below 0) in one deployment, as Marathon's `TaskKiller.killAndScale`; only
    /// active instances not already being killed count. Unknown ids are ignored.
    public mutating func kill(
        _ instanceIds: [String], scale: Bool, deploymentId: String, force: Bool, now: MonotonicInstant, wallTimeMs: Int64
    ) -> Result<Outcome, LauncherError> {
        var seen = Set<String>()
        let targets = instanceIds.compactMap { id -> AppInstance? in
            guard seen.insert(id).inserted, let instance = instances[id], instance.isActive, !instance.isBeingKilled else { return nil }
            return instance
        }
        let byApp = Dictionary(grouping: targets, by: \.appId)
        if scale, !force {
            let blocking = deploymentOrder.compactMap { deployments[$0] }.filter { !Set(byApp.keys).isDisjoint(with: $0.affectedApps) }
            if !blocking.isEmpty { return .failure(.locked(deploymentIds: blocking.map(\.id))) }
        }
        var outcome = Outcome()
        for instance in targets {
            record(.instanceKillRequested(instanceId: instance.id, reason: .killedByUser, atMs: wallTimeMs), now: now, into: &outcome)
            outcome.actions.append(.kill(instanceId: instance.id, agentId: instance.agentId, reason: .killedByUser))
        }
        guard scale else {
            merge(reconcile(now: now, wallTimeMs: wallTimeMs), into: &outcome)
            return .success(outcome)
        }
        let scaled = byApp.keys.sorted().compactMap { appId -> AppDefinition? in
            guard var app = apps[appId] else { return nil }
            app.instances = max(0, app.instances - byApp[appId]!.count)
            return app
        }
        switch deploy(scaled, deploymentId: deploymentId, force: force, now: now, wallTimeMs: wallTimeMs) {
        case .success(let more):
            merge(more, into: &outcome)
            return .success(outcome)
        case .failure(let error):
            return .failure(error)
        }
    }

    // MARK: - The launch queue

    /// An app with instances waiting to launch (Marathon's `/v2/queue` entry).
    public struct QueueEntry: Sendable, Hashable {
        public var appId: PathId
        /// Instances left to launch: held back by the backoff, or submitted and not yet placed.
        public var count: Int
        /// When held-back launches may go; nil when none is held back.
        public var delayDeadline: MonotonicInstant?
        /// Since when the oldest of them waits (wall time).
        public var sinceWallTimeMs: Int64

        /// Marathon's `delay.timeLeftSeconds`: whole seconds until the backoff ends, 0 when none.
        public func timeLeftSeconds(now: MonotonicInstant) -> Int64 {
            guard let delayDeadline, delayDeadline > now else { return 0 }
            return delayDeadline.milliseconds(since: now) / 1000
        }

        /// Marathon's `delay.overdue`: no backoff holds the launches back (they wait for room).
        public func isOverdue(now: MonotonicInstant) -> Bool {
            delayDeadline.map { $0 <= now } ?? true
        }
    }

    /// The apps with instances waiting to launch, by id: those the backoff holds back (missing
    /// from the app's count while its delay runs), and those submitted to the master and not yet
    /// placed on an agent.
    public func queue(now: MonotonicInstant, wallTimeMs: Int64) -> [QueueEntry] {
        apps.keys.sorted().compactMap { appId in
            let app = apps[appId]!
            let active = instances(of: appId).filter(\.isActive)
            let unplaced = active.filter { $0.state == .staging && $0.agentId == nil && !$0.isBeingKilled }
            var held = 0
            var deadline: MonotonicInstant?
            var since = unplaced.map(\.stagedAtMs).min()
            if let delay = launchDelays[appId], delay.configVersion == app.configVersion, delay.deadline > now {
                held = max(0, app.instances - active.count { !$0.isBeingKilled })
                if held > 0 {
                    deadline = delay.deadline
                    let waitingSince = wallTimeMs - now.milliseconds(since: delay.referenceTime)
                    since = min(since ?? waitingSince, waitingSince)
                }
            }
            let count = unplaced.count + held
            guard count > 0 else { return nil }
            return QueueEntry(appId: appId, count: count, delayDeadline: deadline, sinceWallTimeMs: since ?? wallTimeMs)
        }
    }

    /// Drops an app's launch backoff (`DELETE /v2/queue/{appId}/delay`): launches it held back
    /// go now. Refused for an app with nothing in the queue, as Marathon refuses it.
    public mutating func resetDelay(_ appId: PathId, now: MonotonicInstant, wallTimeMs: Int64) -> Result<Outcome, LauncherError> {
        guard queue(now: now, wallTimeMs: wallTimeMs).contains(where: { $0.appId == appId }) else { return .failure(.notInQueue(appId)) }
        launchDelays[appId] = nil
        return .success(reconcile(now: now, wallTimeMs: wallTimeMs))
    }
}

/// A group as `GET /v2/groups` shows it. Groups are the paths of the apps: a group exists while
/// an app lies below it (the root always).
public struct GroupTree: Sendable, Hashable {
    public var id: PathId
    /// The apps directly in it, sorted.
    public var apps: [PathId]
    public var groups: [GroupTree]
    /// The newest version of an app in it.
    public var version: AppVersion?

    public static func exists(_ id: PathId, apps: some Collection<PathId>) -> Bool {
        let id = id.canonical()
        return id.isRoot || apps.contains { $0.isWithin(id) && $0 != id }
    }

    /// The group `id` with its apps and sub-groups at every depth; nil when it does not exist.
    public static func of(_ id: PathId, apps: [PathId: AppDefinition]) -> GroupTree? {
        let id = id.canonical()
        guard exists(id, apps: apps.keys) else { return nil }
        let depth = id.segments.count
        let inside = apps.keys.filter { $0.isWithin(id) && $0 != id }
        let direct = inside.filter { $0.segments.count == depth + 1 }.sorted()
        let children = Set(inside.filter { $0.segments.count > depth + 1 }.map { PathId(segments: Array($0.segments.prefix(depth + 1))) })
        return GroupTree(
            id: id, apps: direct, groups: children.sorted().compactMap { of($0, apps: apps) },
            version: inside.compactMap { apps[$0]?.version }.max())
    }
}
