import StrataCore

/// Health-check results per instance and check, judged as Marathon's `HealthCheckActor` judges
/// them (docs/health-checks.md):
///
/// - a failure counts only once the task runs, and not while it is within the check's grace
///   period from when it started running and has never passed;
/// - a pass resets the consecutive failures; an instance is alive while its last result of each
///   check is a pass;
/// - when the consecutive failures reach the check's `killsAfter`, the instance is to be killed
///   (and, like a failed task, replaced after the app's launch backoff).
public struct HealthTracker: Sendable {
    /// One check's record for one instance (Marathon's `Health`).
    public struct Health: Sendable, Hashable {
        public var firstSuccess: MonotonicInstant?
        public var lastSuccess: MonotonicInstant?
        public var lastFailure: MonotonicInstant?
        public var lastFailureCause: String?
        public var consecutiveFailures = 0

        /// Passed, and not failed since.
        public var isAlive: Bool {
            guard let lastSuccess else { return false }
            return lastFailure.map { lastSuccess > $0 } ?? true
        }
    }

    /// What a result means for its instance.
    public enum Verdict: Sendable, Hashable {
        /// Nothing to do (a failure ignored, or no change of the instance's health).
        case unchanged
        /// The instance's health, all its checks taken together, changed.
        case healthChanged(isHealthy: Bool)
        /// Too many consecutive failures: kill the instance.
        case kill(cause: String)
    }

    struct Key: Hashable {
        var instanceId: String
        var checkIndex: Int
    }

    private var records: [Key: Health] = [:]

    public init() {}

    public func health(of instanceId: String, check checkIndex: Int) -> Health? {
        records[Key(instanceId: instanceId, checkIndex: checkIndex)]
    }

    /// Whether every one of `checkCount` checks of the instance is alive; nil before any answered.
    public func isHealthy(_ instanceId: String, checkCount: Int) -> Bool? {
        let checks = (0..<checkCount).map { records[Key(instanceId: instanceId, checkIndex: $0)] }
        if checks.allSatisfy({ $0 == nil }) { return nil }
        return checks.allSatisfy { $0?.isAlive ?? false }
    }

    /// Records one result of check `checkIndex` of `checks` for an instance that has been
    /// running since `runningSince` (nil: not running, so a failure is ignored).
    public mutating func record(
        instanceId: String, checkIndex: Int, of checks: [HealthCheck], passed: Bool, cause: String? = nil,
        runningSince: MonotonicInstant?, now: MonotonicInstant
    ) -> Verdict {
        precondition(checks.indices.contains(checkIndex), "a result of a check the app does not have")
        let check = checks[checkIndex]
        let key = Key(instanceId: instanceId, checkIndex: checkIndex)
        let before = isHealthy(instanceId, checkCount: checks.count)
        var health = records[key] ?? Health()
        if passed {
            health.firstSuccess = health.firstSuccess ?? now
            health.lastSuccess = now
            health.consecutiveFailures = 0
        } else {
            guard let runningSince else { return .unchanged }
            let withinGrace = runningSince.advanced(byMilliseconds: Int64(check.gracePeriodSeconds) * 1000) > now
            if health.firstSuccess == nil, withinGrace { return .unchanged }
            health.lastFailure = now
            health.lastFailureCause = cause
            health.consecutiveFailures += 1
        }
        records[key] = health
        if !passed, let limit = check.killsAfter, health.consecutiveFailures >= limit {
            return .kill(cause: cause ?? "\(health.consecutiveFailures) consecutive health check failures")
        }
        let after = isHealthy(instanceId, checkCount: checks.count)
        return after != before && after != nil ? .healthChanged(isHealthy: after!) : .unchanged
    }

    /// Drops an instance's records (it ended).
    public mutating func forget(_ instanceId: String) {
        records = records.filter { $0.key.instanceId != instanceId }
    }
}
