/// When a job runs: an ISO 8601 repeating interval (Chronos) or a 5-field cron expression, each
/// read in the job's time zone. Pure: every method takes the time it reasons about.
public enum Schedule: Sendable, Hashable, CustomStringConvertible {
    case repeatingInterval(RepeatingInterval)
    case cron(CronExpression)

    /// Parses a job's `schedule` field: a repeating interval if it starts with `R` (or has no
    /// spaces and a `/P`, so a forgotten `R` gets the ISO error), otherwise a cron expression.
    /// `timeZone` is the job's `scheduleTimeZone` (`nil` or empty: none); `nowMs` is the start of
    /// a repeating interval whose start is empty.
    public static func parse(_ text: String, timeZone: String? = nil, nowMs: Int64) throws(ScheduleError) -> Schedule {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else {
            throw ScheduleError(
                .invalidCronExpression,
                "empty schedule: expected an ISO 8601 repeating interval such as R/2026-11-25T00:00:00Z/PT1H or a cron expression such as */5 * * * *")
        }
        if trimmed.hasPrefix("R") || (!trimmed.contains(" ") && trimmed.contains("/P")) {
            return .repeatingInterval(try RepeatingInterval.parse(trimmed, timeZone: timeZone, nowMs: nowMs))
        }
        return .cron(try CronExpression.parse(trimmed, timeZone: timeZone))
    }

    public var timeZone: ScheduleTimeZone {
        switch self {
        case .repeatingInterval(let interval): interval.timeZone
        case .cron(let expression): expression.timeZone
        }
    }

    /// The schedule as text that parses back to it (with the same time zone).
    public var description: String {
        switch self {
        case .repeatingInterval(let interval): interval.description
        case .cron(let expression): expression.description
        }
    }

    /// The first fire time after `wallTimeMs` (milliseconds since the Unix epoch), or `nil` once
    /// the schedule is over.
    public func nextFire(after wallTimeMs: Int64) -> Int64? {
        switch self {
        case .repeatingInterval(let interval): interval.nextFire(after: wallTimeMs)
        case .cron(let expression): expression.nextFire(after: wallTimeMs)
        }
    }

    /// The next `count` fire times after `wallTimeMs` (fewer if the schedule ends first), at most
    /// `CronLimits.maximumListedFireTimes`.
    public func next(after wallTimeMs: Int64, count: Int) -> [Int64] {
        precondition((0...CronLimits.maximumListedFireTimes).contains(count), "count out of 0...\(CronLimits.maximumListedFireTimes)")
        var times: [Int64] = []
        var cursor = wallTimeMs
        while times.count < count, let time = nextFire(after: cursor) {
            times.append(time)
            cursor = time
        }
        return times
    }

    /// The fire times in `(afterMs, throughMs]`, earliest first, at most `limit` of them.
    func fireTimes(after afterMs: Int64, through throughMs: Int64, limit: Int) -> [Int64] {
        var times: [Int64] = []
        var cursor = afterMs
        while times.count < limit, let time = nextFire(after: cursor), time <= throughMs {
            times.append(time)
            cursor = time
        }
        return times
    }

    /// How many fire times fall in `(afterMs, throughMs]`, and whether that is exact: repeating
    /// intervals count by index, cron expressions one by one up to `CronLimits.maximumRunsEnumerated`.
    func countFireTimes(after afterMs: Int64, through throughMs: Int64) -> (count: Int64, isExact: Bool) {
        guard throughMs > afterMs else { return (0, true) }
        switch self {
        case .repeatingInterval(let interval):
            return (interval.boundaryIndex(after: throughMs) - interval.boundaryIndex(after: afterMs), true)
        case .cron:
            let limit = CronLimits.maximumRunsEnumerated
            var count = 0
            var cursor = afterMs
            while let time = nextFire(after: cursor), time <= throughMs {
                guard count < limit else { return (Int64(count), false) }
                count += 1
                cursor = time
            }
            return (Int64(count), true)
        }
    }

    /// The last `count` fire times in `(afterMs, throughMs]`, earliest first.
    func lastFireTimes(after afterMs: Int64, through throughMs: Int64, count: Int) -> [Int64] {
        guard throughMs > afterMs, count > 0 else { return [] }
        switch self {
        case .repeatingInterval(let interval):
            let first = interval.boundaryIndex(after: afterMs)
            let end = interval.boundaryIndex(after: throughMs)
            return (max(first, end - Int64(count))..<end).compactMap { interval.occurrence($0) }
        case .cron:
            // A cron expression fires at most once a minute, and the window is at most the
            // longest epsilon, so walking it is bounded.
            var times: [Int64] = []
            var cursor = afterMs
            while let time = nextFire(after: cursor), time <= throughMs {
                times.append(time)
                if times.count > count { times.removeFirst() }
                cursor = time
            }
            return times
        }
    }
}
