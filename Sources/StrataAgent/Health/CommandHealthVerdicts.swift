import StrataCompute
import StrataCore

/// The agent's verdicts on one task's command health check, as Mesos' health checker gives
/// them (docs/compute.md "Command health checks"): pure, on given instants.
///
/// - The first check runs `delayMs` after the task started running, then one every
///   `intervalMs` after the previous one started.
/// - A pass makes the task healthy and resets the count of failures in a row.
/// - A failure within `gracePeriodMs` of the start is ignored until the check has passed once
///   (the grace period ends at the first pass).
/// - Any other failure makes the task unhealthy and counts; when the count reaches
///   `maxConsecutiveFailures` (0: at the first), the task is to be killed.
///
/// Only changes of health are reported: the master records each one.
public struct CommandHealthVerdicts: Sendable, Hashable {
    public let check: CommandHealthCheck
    public let runningSince: MonotonicInstant
    public private(set) var consecutiveFailures = 0
    public private(set) var hasPassed = false
    /// The health reported so far; nil before a first counted result.
    public private(set) var healthy: Bool?
    /// When the next check is due.
    public private(set) var nextCheck: MonotonicInstant

    public enum Verdict: Sendable, Hashable {
        /// Tell the master the task's health changed.
        case report(healthy: Bool)
        /// The check failed `failures` times in a row: kill the task.
        case kill(failures: Int)
    }

    public init(check: CommandHealthCheck, runningSince: MonotonicInstant) {
        self.check = check
        self.runningSince = runningSince
        self.nextCheck = runningSince.advanced(byMilliseconds: max(0, check.delayMs))
    }

    /// Takes in the result of the check that started at `startedAt` (the one due then).
    public mutating func record(passed: Bool, startedAt: MonotonicInstant) -> [Verdict] {
        nextCheck = max(startedAt, nextCheck).advanced(byMilliseconds: max(1, check.intervalMs))
        var verdicts: [Verdict] = []
        if passed {
            consecutiveFailures = 0
            hasPassed = true
            if healthy != true { verdicts.append(.report(healthy: true)) }
            healthy = true
            return verdicts
        }
        if !hasPassed, startedAt < runningSince.advanced(byMilliseconds: check.gracePeriodMs) { return verdicts }
        consecutiveFailures += 1
        if healthy != false { verdicts.append(.report(healthy: false)) }
        healthy = false
        if consecutiveFailures >= max(1, check.maxConsecutiveFailures) { verdicts.append(.kill(failures: consecutiveFailures)) }
        return verdicts
    }
}
