/// The bounds of cron's schedule logic, in one place, so a hostile or mistaken schedule can cost
/// only so much work.
public enum CronLimits {
    /// No schedule fires after the end of this year: run ids and start times print with four-digit
    /// years, and a schedule that would reach past it simply has no more fire times.
    public static let lastYear = 9999
    /// No ISO 8601 start is earlier than the start of this year.
    public static let firstYear = 1
    /// Shortest ISO 8601 repetition period accepted: a schedule is a plan for batch runs, not a
    /// timer.
    public static let minimumPeriodMilliseconds: Int64 = 1000
    /// Largest number in one field of an ISO 8601 duration (`P1000000D` is about 2,700 years).
    public static let maximumDurationFieldValue: Int64 = 1_000_000
    /// Longest epsilon (how late a missed run may still start): a week.
    public static let maximumEpsilonMilliseconds: Int64 = 7 * 86_400_000
    /// Most runs one catch-up decision starts at once.
    public static let maximumCatchUpRuns = 1000
    /// Longest a scheduled run may be submitted ahead of its time (`CronState`'s
    /// `submitAheadMilliseconds`): its task holds its resources on an agent meanwhile.
    public static let maximumSubmitAheadMilliseconds: Int64 = 600_000
    /// Most runs of one job one tick submits ahead of their time (a schedule every second and a
    /// lead of a minute and a half reach it).
    public static let maximumRunsSubmittedAheadPerTick = 100
    /// Most fire times one `next(after:count:)` call returns (`strata cron next --count`).
    public static let maximumListedFireTimes = 10_000
    /// Most missed runs a catch-up decision lists one by one (it always counts them all for ISO
    /// 8601 schedules; see `maximumRunsEnumerated` for cron expressions).
    public static let maximumMissedRunsListed = 100
    /// Most fire times a catch-up decision walks through one by one. A cron expression fires at
    /// most once a minute, so this covers about 69 days of missed minutes; past it a decision
    /// counts no further and says its count is a lower bound.
    public static let maximumRunsEnumerated = 100_000
    /// Days a cron expression's next fire time is searched over. A valid expression fires at
    /// least once in any 8 years and a day (February 29 across a skipped leap year, 2096 to 2104).
    static let cronSearchDays: Int64 = 9 * 366
}
