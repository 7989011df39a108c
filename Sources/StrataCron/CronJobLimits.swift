/// The bounds and defaults of cron jobs, in one place.
public enum CronJobLimits {
    /// Longest job name, in characters. A name goes into run ids (percent-encoded) and DFS
    /// paths under `/system/cron/`, whose components must stay well under 255 bytes.
    public static let maximumNameLength = 128
    /// Longest command, in bytes.
    public static let maximumCommandBytes = 65_536
    /// Most arguments, environment variables or parents one job may have.
    public static let maximumListCount = 1000
    /// Most retries of a failed run (Chronos' default is 2).
    public static let maximumRetries = 100
    /// Largest history limit (Kubernetes' defaults are 3 successful and 1 failed).
    public static let maximumHistoryLimit = 100
    /// Longest `startingDeadlineSeconds`: the longest epsilon, a week.
    public static let maximumStartingDeadlineSeconds = CronLimits.maximumEpsilonMilliseconds / 1000

    /// Chronos' `--task_epsilon` default: a run up to 60 seconds late still starts.
    public static let defaultEpsilon = "PT60S"
    /// Chronos' default retries.
    public static let defaultRetries = 2
    /// Chronos' `--mesos_task_cpu`, `--mesos_task_mem` (MB) and `--mesos_task_disk` (MB) defaults,
    /// used when a job gives none or zero.
    public static let defaultCpus = 0.1
    public static let defaultMemMB = 128.0
    public static let defaultDiskMB = 256.0
    /// Kubernetes' CronJob defaults.
    public static let defaultSuccessfulHistoryLimit = 3
    public static let defaultFailedHistoryLimit = 1
    /// Chronos' `--failure_retry` default: a failed run is tried again a minute later.
    public static let defaultFailureRetryDelayMilliseconds: Int64 = 60_000
    /// Chronos' `jobs/search` page size when the request gives no `limit`.
    public static let defaultSearchLimit = 10
}
