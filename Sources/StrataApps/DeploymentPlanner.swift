/// What to do next for one app, decided from its target definition and its instances alone, so
/// the same answer comes after a restart of the launcher as before it: how many instances to
/// start, which to kill, and whether the app has reached its target.
public struct AppPlan: Sendable, Hashable {
    public var startCount: Int
    /// Instance ids, in the order they should be killed.
    public var kill: [String]
    /// Whether nothing remains to do: the step that changes this app is complete.
    public var isComplete: Bool

    public init(startCount: Int = 0, kill: [String] = [], isComplete: Bool) {
        self.startCount = startCount
        self.kill = kill
        self.isComplete = isComplete
    }
}

/// Marathon's rules for replacing and scaling an app's instances (`TaskReplaceActor`,
/// `ScalingProposition`, docs/deployments.md), as functions of the instances.
public enum DeploymentPlanner {
    /// The bounds of a rolling replacement of `app`: at least `minimumHealthy` instances stay
    /// healthy (`ceil(instances × minimumHealthCapacity)`), at most `maximumCapacity` exist
    /// (`floor(instances × (1 + maximumOverCapacity))`). When the two are equal nothing could
    /// ever be replaced, so Marathon allows one instance over (`TaskReplaceActor
    /// .computeRestartStrategy`).
    public static func bounds(of app: AppDefinition) -> (minimumHealthy: Int, maximumCapacity: Int) {
        let instances = Double(app.instances)
        let minimumHealthy = Int((instances * app.upgradeStrategy.minimumHealthCapacity).rounded(.up))
        var maximumCapacity = Int((instances * (1 + app.upgradeStrategy.maximumOverCapacity)).rounded(.down))
        if minimumHealthy == maximumCapacity { maximumCapacity += 1 }
        return (minimumHealthy, maximumCapacity)
    }

    /// A rolling replacement of every instance whose configuration is not `target`'s: healthy
    /// old instances are killed only while enough others stay healthy (unhealthy ones at once);
    /// new ones are started while the total stays within capacity. Complete when `instances` new
    /// instances are healthy and no old one is left.
    public static func replace(target: AppDefinition, instances: [AppInstance]) -> AppPlan {
        guard target.instances > 0, let version = target.configVersion else { return scale(target: target, instances: instances) }
        let hasChecks = !target.healthChecks.isEmpty
        let active = instances.filter(\.isActive)
        let old = active.filter { $0.configVersion != version }
        let new = active.filter { $0.configVersion == version && !$0.isBeingKilled }
        let (minimumHealthy, maximumCapacity) = bounds(of: target)

        let healthy = active.count { !$0.isBeingKilled && $0.isConsideredHealthy(hasHealthChecks: hasChecks) }
        let killable = old.filter { !$0.isBeingKilled }
        // Old instances that are not healthy go at once: killing them lowers no healthy count and
        // frees capacity. (Marathon kills them first too, `toKillOrdered`, but within the count
        // it may kill at the deployment's start, plus any instances over `instances` then; this
        // planner keeps no count of its own, so it is decided from the instances each time.)
        var kill = killable.filter { !$0.isConsideredHealthy(hasHealthChecks: hasChecks) }.map(\.id)
        // Healthy old ones go, oldest launch first, only while enough others stay healthy.
        let budget = max(0, healthy - minimumHealthy)
        kill += killable.filter { $0.isConsideredHealthy(hasHealthChecks: hasChecks) }.sorted { $0.stagedAtMs < $1.stagedAtMs }
            .prefix(budget).map(\.id)

        let leftCapacity = max(0, maximumCapacity - old.count - new.count)
        let notStartedYet = max(0, target.instances - new.count)
        let startCount = min(notStartedYet, leftCapacity)

        let newHealthy = new.count { $0.isConsideredHealthy(hasHealthChecks: hasChecks) }
        let isComplete = old.isEmpty && newHealthy >= target.instances && kill.isEmpty && startCount == 0
        return AppPlan(startCount: startCount, kill: kill, isComplete: isComplete)
    }

    /// Keeping (or scaling to) `instances` instances of whatever configuration: missing ones
    /// are started, extra ones killed in Marathon's order (`ScalingProposition`): staging before
    /// starting before running, and among equals the youngest first (or the oldest, by
    /// `killSelection`). Complete when exactly `instances` are wanted, all healthy, and every
    /// killed one has ended.
    public static func scale(target: AppDefinition, instances: [AppInstance]) -> AppPlan {
        let hasChecks = !target.healthChecks.isEmpty
        let active = instances.filter(\.isActive)
        let wanted = active.filter { !$0.isBeingKilled }
        var plan = AppPlan(isComplete: false)
        if wanted.count > target.instances {
            plan.kill = killOrder(wanted, selection: target.killSelection).prefix(wanted.count - target.instances).map(\.id)
        } else {
            plan.startCount = target.instances - wanted.count
        }
        plan.isComplete = plan.kill.isEmpty && plan.startCount == 0 && !active.contains(where: \.isBeingKilled)
            && wanted.allSatisfy { $0.isConsideredHealthy(hasHealthChecks: hasChecks) }
        return plan
    }

    /// Kill candidates, first to kill first: Marathon weighs staging 2, starting 3, running 4
    /// (`ScalingProposition.sortByConditionAndDate`; it does not weigh health, a TODO there),
    /// then orders equals by the kill selection: by staging time for staging instances, by
    /// start time for running ones.
    public static func killOrder(_ instances: [AppInstance], selection: KillSelection) -> [AppInstance] {
        func weight(_ instance: AppInstance) -> Int {
            switch instance.state {
            case .staging: 2
            case .starting: 3
            case .running: 4
            default: 5
            }
        }
        func time(_ instance: AppInstance) -> Int64 {
            instance.state == .running ? instance.startedAtMs ?? instance.stagedAtMs : instance.stagedAtMs
        }
        return instances.sorted { left, right in
            if weight(left) != weight(right) { return weight(left) < weight(right) }
            if time(left) != time(right) {
                return selection == .youngestFirst ? time(left) > time(right) : time(left) < time(right)
            }
            return left.id < right.id
        }
    }
}
