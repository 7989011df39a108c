/// What the cron service does for one schedule when it wakes: the result of
/// `Schedule.runsDue(handledThroughMs:nowMs:policy:)`.
public struct DueRuns: Sendable, Equatable {
    /// Scheduled times whose runs start now, earliest first.
    public var due: [Int64]
    /// Scheduled times recorded as missed, earliest first: at most
    /// `CronLimits.maximumMissedRunsListed` of them (`missedCount` counts them all).
    public var missed: [Int64]
    /// How many runs were missed: too late for epsilon, or within it but beyond
    /// `maximumCatchUpRuns`.
    public var missedCount: Int64
    /// False when a cron expression had more missed runs than `CronLimits.maximumRunsEnumerated`
    /// to count: `missedCount` is then a lower bound.
    public var missedCountIsExact: Bool
    /// The latest scheduled time now handled (started or missed), or a later time before which
    /// nothing else is scheduled; the service stores it and passes it back as `handledThroughMs`
    /// next time.
    public var handledThroughMs: Int64
    /// The next scheduled time after `nowMs`, when to wake again; `nil` once the schedule is over.
    public var nextWakeMs: Int64?
}

extension Schedule {
    /// Which scheduled runs to start now and which to record as missed, given that every
    /// scheduled time up to `handledThroughMs` was already handled.
    ///
    /// A run scheduled at `t` in `(handledThroughMs, nowMs]` starts if `nowMs - t` is at most the
    /// policy's epsilon and it is among the latest `maximumCatchUpRuns` such runs; otherwise it is
    /// missed. Nothing at or before `handledThroughMs` is ever returned again, so a wall clock
    /// stepped back, or a restart that replays the same `handledThroughMs`, starts no run twice
    /// (the run's `RunId` guards the window between starting it and storing the new mark).
    ///
    /// For a new job, pass the time it was added minus one millisecond, so that a schedule whose
    /// start is in the past does not count the runs before the job existed as missed (a start
    /// left empty, "now", then fires at once).
    public func runsDue(handledThroughMs: Int64, nowMs: Int64, policy: CatchUpPolicy) -> DueRuns {
        guard nowMs > handledThroughMs else {
            return DueRuns(
                due: [], missed: [], missedCount: 0, missedCountIsExact: true, handledThroughMs: handledThroughMs,
                nextWakeMs: nextFire(after: handledThroughMs))
        }
        // Runs scheduled at or before `lateThrough` are past epsilon.
        let lateThrough = max(handledThroughMs, nowMs - policy.epsilonMilliseconds - 1)
        let listLimit = CronLimits.maximumMissedRunsListed
        var missed = fireTimes(after: handledThroughMs, through: lateThrough, limit: listLimit)
        let late = countFireTimes(after: handledThroughMs, through: lateThrough)
        var missedCount = late.count

        let inTime = lastFireTimes(after: lateThrough, through: nowMs, count: policy.maximumCatchUpRuns)
        if let firstStarted = inTime.first {
            // Runs within epsilon but beyond the catch-up bound are missed too.
            let (beyondBound, _) = countFireTimes(after: lateThrough, through: firstStarted - 1)
            missedCount += beyondBound
            if beyondBound > 0, missed.count < listLimit {
                missed += fireTimes(after: lateThrough, through: firstStarted - 1, limit: listLimit - missed.count)
            }
        }
        var handled = handledThroughMs
        if let last = inTime.last {
            handled = last
        } else if missedCount > 0 {
            // Nothing is scheduled in (lateThrough, nowMs]; the mark is the latest missed run if it
            // is found within a bounded walk back, else lateThrough, which is just as true.
            let walkFrom = max(handledThroughMs, lateThrough - CronLimits.maximumEpsilonMilliseconds)
            handled = lastFireTimes(after: walkFrom, through: lateThrough, count: 1).first ?? lateThrough
        }
        return DueRuns(
            due: inTime, missed: missed, missedCount: missedCount, missedCountIsExact: late.isExact, handledThroughMs: handled,
            nextWakeMs: nextFire(after: nowMs))
    }
}
