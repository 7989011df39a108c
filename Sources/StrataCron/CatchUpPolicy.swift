/// How late a scheduled run may still start, and how many overdue runs start at once.
///
/// - `epsilonMilliseconds` is Chronos' `epsilon` (and Kubernetes' `startingDeadlineSeconds`): a
///   run whose scheduled time is at most this long before now still starts; an older one is
///   recorded as missed. Chronos' job model defaults to five minutes (`PT5M`), but its job
///   reader fills in `--task_epsilon`, 60 seconds, which is a `CronJob`'s default.
/// - `maximumCatchUpRuns` bounds how many of the runs still within epsilon start in one decision:
///   the latest ones start, the older ones are recorded as missed. Kubernetes starts only the
///   latest (1); Chronos starts them all.
public struct CatchUpPolicy: Sendable, Hashable {
    public let epsilonMilliseconds: Int64
    public let maximumCatchUpRuns: Int

    /// Five minutes (the default epsilon of Chronos' job model), starting only the latest
    /// overdue run.
    public static let `default` = CatchUpPolicy(checkedEpsilonMilliseconds: 5 * 60_000, maximumCatchUpRuns: 1)

    public init(epsilonMilliseconds: Int64, maximumCatchUpRuns: Int = 1) throws(ScheduleError) {
        guard (0...CronLimits.maximumEpsilonMilliseconds).contains(epsilonMilliseconds) else {
            throw ScheduleError(.invalidPolicy, "epsilon must be between 0 and \(CronLimits.maximumEpsilonMilliseconds / 86_400_000) days")
        }
        guard (1...CronLimits.maximumCatchUpRuns).contains(maximumCatchUpRuns) else {
            throw ScheduleError(.invalidPolicy, "the number of overdue runs to start must be between 1 and \(CronLimits.maximumCatchUpRuns)")
        }
        self.init(checkedEpsilonMilliseconds: epsilonMilliseconds, maximumCatchUpRuns: maximumCatchUpRuns)
    }

    /// A policy whose epsilon is an ISO 8601 duration, as Chronos' job JSON gives it (`PT15M`).
    /// Days and weeks count 24 hours and 7 days; years and months, whose length depends on the
    /// calendar, are refused.
    public init(epsilon: String, maximumCatchUpRuns: Int = 1) throws(ScheduleError) {
        let duration = try IsoDuration.parse(epsilon)
        guard duration.calendarMonths == 0 else {
            throw ScheduleError(.invalidDuration, "invalid epsilon \"\(epsilon)\": years and months are not a fixed length; give days, hours, minutes or seconds")
        }
        let milliseconds = duration.calendarDays * CivilCalendar.millisecondsPerDay + duration.elapsedMilliseconds
        try self.init(epsilonMilliseconds: milliseconds, maximumCatchUpRuns: maximumCatchUpRuns)
    }

    private init(checkedEpsilonMilliseconds: Int64, maximumCatchUpRuns: Int) {
        self.epsilonMilliseconds = checkedEpsilonMilliseconds
        self.maximumCatchUpRuns = maximumCatchUpRuns
    }
}
