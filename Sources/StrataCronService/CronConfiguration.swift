/// How the cron service runs (`strata cron serve`, or beside the master in `strata cluster up`).
public struct CronConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// Its HTTP port (Chronos': 4400).
    public var port: Int = 4400
    /// The master its runs go through (`host:port`).
    public var masterAddress: String
    /// Where it keeps its state in the DFS.
    public var stateDirectory = "/system/cron"
    /// The user runs run as when their job names none (`runAsUser`, else `owner` when it is a
    /// plain user name).
    public var taskUser: String
    /// The user it acts as in the DFS and kills tasks as (the master's superuser).
    public var superuser = "strata"
    /// The cluster secret: required of callers when set, and sent to the master.
    public var token: String?
    /// Its name: the value of the `strata.cron` label on every job it submits, and the first
    /// part of their ids.
    public var name = "cron"
    /// How often the tick runs at the latest (the next fire time wakes it sooner).
    public var tickIntervalMs: Int64 = 1_000
    /// How long one watch of the master's jobs waits for a change.
    public var watchWaitMs: Int64 = 10_000
    /// The least time between two watches of the master's jobs. Each answer lists every run in
    /// flight (a thousand, while a minute's runs start), and while they start and end the
    /// master's state changes every few milliseconds: without a pause the service would fetch
    /// and decode that list back to back, taking the CPU the starts need. A run's end is then
    /// noticed up to this much later.
    public var watchMinimumIntervalMs: Int64 = 250
    /// How many records the log takes between snapshots of the whole state.
    public var snapshotEveryRecords = 10_000
    /// How long a failed attempt waits before it is tried again.
    public var failureRetryDelayMs: Int64 = 60_000
    /// Suspend a job after this many failed runs since its last success (Chronos'
    /// `--disable_after_failures`); 0: never.
    public var disableAfterFailures: Int64 = 0
    /// How long before its scheduled time a run of an `Allow` job is submitted to the master,
    /// with its scheduled time as the job's `notBefore`: the master places it and its agent
    /// prepares it ahead, and its command starts at the scheduled time (docs/cron.md "Starting
    /// on time"). 0 submits every run at its time. At most
    /// `CronLimits.maximumSubmitAheadMilliseconds`.
    public var submitAheadMs: Int64 = 10_000

    public init(masterAddress: String, taskUser: String) {
        self.masterAddress = masterAddress
        self.taskUser = taskUser
    }
}

/// The labels the cron service puts on the master jobs of its runs.
enum CronLabels {
    static let service = "strata.cron"
    static let job = "strata.cron.job"
    static let run = "strata.cron.run"
    static let attempt = "strata.cron.attempt"
}
