/// An ISO 8601 repeating interval as Chronos takes it: `Rn/<start>/<duration>`.
///
/// - `R` repeats forever, `Rn` fires `n` times in all (`R0` never fires), counting runs that were
///   missed: Chronos' `Schedule.next` counts every scheduled time it passes.
/// - The start is `YYYY-MM-DD[Thh:mm[:ss[.fff]]][Z|±hh:mm|±hhmm|±hh]`; an empty start is `now`.
/// - With a `scheduleTimeZone`, the start's date and time of day are read as a wall time in that
///   zone and any offset written in it is ignored ("this field takes precedence over any time zone
///   specified in schedule", as Chronos' `withZoneRetainFields` does). Without one, the start's
///   offset (UTC if it has none) is the zone.
/// - Occurrence `k` is the start's wall time plus `k` times the duration's calendar part, made an
///   instant in the zone, plus `k` times its time part in elapsed time. Computing each occurrence
///   from the start (Chronos' `origin.plus(period.multipliedBy(k))`), never from the previous one,
///   keeps a schedule from drifting: `P1M` from January 31 fires on February 28 and then March 31,
///   and a `P1D` whose 02:30 fell in a gap is back at 02:30 the day after.
/// - A wall time the zone skips fires at the first instant after the gap (Joda-Time would shift it
///   by the gap's length, to 03:30); one the zone repeats fires at its first instant.
public struct RepeatingInterval: Sendable, Hashable, CustomStringConvertible {
    /// How many times the schedule fires, or `nil` for forever.
    public let repetitions: Int64?
    /// The first fire time (occurrence 0), an instant in milliseconds since the Unix epoch.
    public let startMs: Int64
    /// The start as a wall time in `timeZone` (milliseconds since 1970-01-01T00:00 local), from
    /// which every later occurrence is stepped.
    let startWallMs: Int64
    public let period: IsoDuration
    public let timeZone: ScheduleTimeZone

    /// Parses `text`. `timeZone` is the job's `scheduleTimeZone` (`nil` or empty: none); `nowMs`
    /// is the start when the expression leaves it empty.
    public static func parse(_ text: String, timeZone timeZoneName: String?, nowMs: Int64) throws(ScheduleError) -> RepeatingInterval {
        func fail(_ reason: String) -> ScheduleError {
            ScheduleError(.invalidRepeatingInterval, "invalid ISO 8601 repeating interval \"\(text)\": \(reason)")
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw fail("expected three parts separated by /, as in R/2026-11-25T00:00:00Z/PT1H (repetitions/start/duration)")
        }
        let repetitionText = parts[0]
        guard repetitionText.first == "R" else { throw fail("the first part is R (forever) or Rn (n times)") }
        var repetitions: Int64?
        if repetitionText.count > 1 {
            let digits = repetitionText.dropFirst()
            guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let count = Int64(digits) else {
                throw fail("\"\(repetitionText)\" is not R or R followed by a whole number")
            }
            repetitions = count
        }
        let period = try IsoDuration.parse(String(parts[2]))
        let zoneName = timeZoneName ?? ""
        let zone: ScheduleTimeZone? = zoneName.isEmpty ? nil : try ScheduleTimeZone(identifier: zoneName)

        let startText = String(parts[1])
        let chosenZone: ScheduleTimeZone
        let startWallMs: Int64
        let startMs: Int64
        if startText.isEmpty {
            chosenZone = zone ?? .utc
            startMs = nowMs
            startWallMs = chosenZone.wallTime(at: nowMs)
        } else {
            let start = try IsoStart.parse(startText)
            if let zone {
                chosenZone = zone
            } else if let offsetSeconds = start.offsetSeconds {
                chosenZone = ScheduleTimeZone(fixedOffsetSeconds: offsetSeconds)
            } else {
                chosenZone = .utc
            }
            startWallMs = start.wallMs
            startMs = chosenZone.resolve(wallMs: start.wallMs).earliestOrGapEnd
        }
        let interval = RepeatingInterval(repetitions: repetitions, startMs: startMs, startWallMs: startWallMs, period: period, timeZone: chosenZone)
        try interval.checkPeriod(text: text)
        return interval
    }

    private init(repetitions: Int64?, startMs: Int64, startWallMs: Int64, period: IsoDuration, timeZone: ScheduleTimeZone) {
        self.repetitions = repetitions
        self.startMs = startMs
        self.startWallMs = startWallMs
        self.period = period
        self.timeZone = timeZone
    }

    /// Refuses periods that are zero or shorter than `CronLimits.minimumPeriodMilliseconds`
    /// (measured from the start, so `P1M` counts as the month after the start).
    private func checkPeriod(text: String) throws(ScheduleError) {
        guard period.hasCalendarPart || period.elapsedMilliseconds > 0 else {
            throw ScheduleError(.invalidDuration, "invalid ISO 8601 duration \"\(period)\" in \"\(text)\": a schedule's period must be longer than zero")
        }
        if !period.hasCalendarPart, period.elapsedMilliseconds < CronLimits.minimumPeriodMilliseconds {
            throw ScheduleError(.invalidDuration, "invalid ISO 8601 duration \"\(period)\" in \"\(text)\": the shortest period is one second")
        }
    }

    /// The schedule as an expression that parses back to it, its start written out (so a start
    /// that was empty, "now", stays the same instant when a job is stored and read back).
    public var description: String {
        let count = repetitions.map(String.init) ?? ""
        let offset = timeZone.offsetMilliseconds(at: startMs)
        return "R\(count)/\(IsoStart.format(wallMs: startWallMs, offsetMilliseconds: offset))/\(period)"
    }

    /// Occurrence `index`'s instant, or `nil` if it would fall after `CronLimits.lastYear`. Does
    /// not look at `repetitions`.
    func occurrence(_ index: Int64) -> Int64? {
        precondition(index >= 0)
        if index == 0 { return startMs }
        var instant = startMs
        if period.hasCalendarPart {
            let day = CivilCalendar.millisecondsPerDay
            let startDay = CivilCalendar.floorDivide(startWallMs, day)
            let timeOfDay = startWallMs - startDay * day
            let (months, monthsOverflow) = period.calendarMonths.multipliedReportingOverflow(by: index)
            let (days, daysOverflow) = period.calendarDays.multipliedReportingOverflow(by: index)
            // Each bound keeps the arithmetic below far from overflow.
            guard !monthsOverflow, !daysOverflow, months <= 12 * 10_000, days <= 366 * 10_000 else { return nil }
            let date = CivilCalendar.adding(months: months, to: CivilCalendar.date(dayNumber: startDay))
            let dayNumber = CivilCalendar.dayNumber(date) + days
            guard CivilCalendar.date(dayNumber: dayNumber).year <= CronLimits.lastYear else { return nil }
            instant = timeZone.resolve(wallMs: dayNumber * day + timeOfDay).earliestOrGapEnd
        }
        let (elapsed, elapsedOverflow) = period.elapsedMilliseconds.multipliedReportingOverflow(by: index)
        guard !elapsedOverflow, elapsed <= Self.lastInstantMs - instant else { return nil }
        return instant + elapsed
    }

    /// The end of `CronLimits.lastYear`, UTC.
    static let lastInstantMs = CivilCalendar.dayNumber(.init(year: CronLimits.lastYear + 1, month: 1, day: 1)) * CivilCalendar.millisecondsPerDay - 1

    /// The smallest index whose occurrence is after `instantMs` or does not exist (because of
    /// `repetitions` or `CronLimits.lastYear`). Occurrences grow strictly with the index, so the
    /// occurrences in `(a, b]` are those from `boundaryIndex(after: a)` up to, not including,
    /// `boundaryIndex(after: b)`.
    func boundaryIndex(after instantMs: Int64) -> Int64 {
        let limit = repetitions ?? Int64.max
        guard limit > 0 else { return 0 }
        func isPast(_ index: Int64) -> Bool {
            guard index < limit, let time = occurrence(index) else { return true }
            return time > instantMs
        }
        if isPast(0) { return 0 }
        // Estimate from the period's average length, then bracket and bisect: the estimate is
        // usually exact, so most calls compute two or three occurrences.
        let approximate = max(1, period.approximateMilliseconds)
        let estimate = max(1, min(limit - 1, (instantMs - startMs) / approximate + 1))
        var low: Int64 = 0  // isPast(low) is false
        var high: Int64  // isPast(high) is true
        if isPast(estimate) {
            if !isPast(estimate - 1) { return estimate }
            high = estimate - 1
        } else {
            low = estimate
            var step: Int64 = 1
            while true {
                let (probe, overflow) = low.addingReportingOverflow(step)
                if overflow || isPast(probe) {
                    high = overflow ? Int64.max : probe
                    break
                }
                low = probe
                step = step > Int64.max / 2 ? Int64.max : step * 2
            }
        }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if isPast(middle) { high = middle } else { low = middle }
        }
        return high
    }

    /// The first fire time after `instantMs`, or `nil` once the schedule is over.
    public func nextFire(after instantMs: Int64) -> Int64? {
        let index = boundaryIndex(after: instantMs)
        guard index < (repetitions ?? Int64.max) else { return nil }
        return occurrence(index)
    }
}
