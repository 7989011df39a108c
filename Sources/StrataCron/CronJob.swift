/// A cron job as Chronos defines it (its job JSON, with its defaults), plus Strata's additions
/// (concurrency policy, history limits, a starting deadline, a data-local input path).
///
/// A job runs either on a `schedule` (an ISO 8601 repeating interval or a cron expression, in
/// `scheduleTimeZone`) or after its `parents` (a dependent job), never both. A job holds only
/// what its owner defines: its run statistics (`successCount`, `lastError`, ...) are kept by
/// `CronState` and written into the JSON the service answers with.
///
/// Read one from a request body with `CronJob.parse(_:nowMs:)`; it is `Codable` (its stored
/// form, in `CronRecord`s) and renders to Chronos' JSON with `chronosJSON(stats:)`.
public struct CronJob: Sendable, Hashable, Codable {
    /// What a run does when another run of the same job is still in flight when it is due
    /// (Kubernetes' `concurrencyPolicy`).
    public enum ConcurrencyPolicy: String, Sendable, Hashable, Codable, CaseIterable {
        /// Start it anyway: runs of the job may overlap.
        case allow = "Allow"
        /// Skip it, and record that it was skipped.
        case forbid = "Forbid"
        /// Kill the runs in flight, then start it.
        case replace = "Replace"
    }

    /// An environment variable of the job's tasks: Chronos' `{"name": ..., "value": ...}`.
    public struct EnvironmentVariable: Sendable, Hashable, Codable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The image a job's tasks run in: Chronos' `container`, whose `image` names an image in
    /// Strata's image store (`name:tag` or `name@sha256:...`).
    public struct Container: Sendable, Hashable, Codable {
        /// `DOCKER` or `MESOS`, as Chronos takes them; both run the image with runc.
        public var type: String
        public var image: String
        /// Whether an agent fetches the image again even if it has it cached.
        public var forcePullImage: Bool

        public init(type: String = "DOCKER", image: String, forcePullImage: Bool = false) {
            self.type = type
            self.image = image
            self.forcePullImage = forcePullImage
        }
    }

    public var name: String
    /// The command: run by `/bin/sh -c` when `shell` is true (and `arguments` are ignored), else
    /// the executable, given `arguments`.
    public var command: String
    public var shell: Bool = true
    public var arguments: [String] = []
    /// The schedule as stored: a repeating interval's empty start is written out as the moment
    /// the job was read, so the schedule does not move when the service restarts. `nil` for a
    /// dependent job.
    public var schedule: String?
    /// A tz database name, or empty: the schedule's own offset (or UTC).
    public var scheduleTimeZone: String = ""
    /// The jobs that must all succeed before this one runs; empty for a scheduled job.
    public var parents: [String] = []
    /// How late a scheduled run may still start, an ISO 8601 duration (Chronos' default `PT60S`).
    public var epsilon: String = CronJobLimits.defaultEpsilon
    /// How many times a failed run is tried again.
    public var retries: Int = CronJobLimits.defaultRetries
    public var cpus: Double = CronJobLimits.defaultCpus
    public var mem: Double = CronJobLimits.defaultMemMB
    public var disk: Double = CronJobLimits.defaultDiskMB
    /// Who to tell when the job fails (e-mail addresses, comma-separated), as Chronos has it.
    public var owner: String = ""
    public var ownerName: String = ""
    public var description: String = ""
    /// A disabled (suspended) job starts no scheduled or dependent runs; a manual run still starts.
    public var disabled: Bool = false
    /// Chronos' `softError`: a failed run (once out of retries) still counts for the dependent
    /// jobs as if it had succeeded.
    public var softError: Bool = false
    /// The user the tasks run as (and read and write the DFS as); empty: the service's user.
    public var runAsUser: String = ""
    public var environmentVariables: [EnvironmentVariable] = []
    public var container: Container?
    // Strata's additions.
    public var concurrencyPolicy: ConcurrencyPolicy = .allow
    /// How many successful runs `history` keeps.
    public var successfulHistoryLimit: Int = CronJobLimits.defaultSuccessfulHistoryLimit
    /// How many failed (and, separately, missed or skipped) runs `history` keeps.
    public var failedHistoryLimit: Int = CronJobLimits.defaultFailedHistoryLimit
    /// Kubernetes' bound on catch-up: when set, how late (in seconds) a scheduled run may still
    /// start, in place of `epsilon`.
    public var startingDeadlineSeconds: Int?
    /// A DFS path (file or directory) the job reads: a data-local job, whose runs the master
    /// places beside the path's blocks. `nil`: a plain command or image job.
    public var inputPath: String?

    public init(name: String, command: String, schedule: String? = nil, parents: [String] = []) {
        self.name = name
        self.command = command
        self.schedule = schedule
        self.parents = parents
    }

    /// Whether the job runs after its parents rather than on a schedule.
    public var isDependent: Bool { schedule == nil }

    /// The job's schedule, parsed. Stored schedules always parse (they were checked when the job
    /// was read); `nil` for a dependent job.
    public var parsedSchedule: Schedule? {
        guard let schedule else { return nil }
        return try? Schedule.parse(schedule, timeZone: scheduleTimeZone, nowMs: 0)
    }

    /// How late a scheduled run may still start: `startingDeadlineSeconds` if set, else
    /// `epsilon`. Only the latest overdue run starts (`CatchUpPolicy`'s default), the others
    /// are recorded as missed.
    public var catchUpPolicy: CatchUpPolicy {
        if let startingDeadlineSeconds,
           let policy = try? CatchUpPolicy(epsilonMilliseconds: Int64(startingDeadlineSeconds) * 1000)
        {
            return policy
        }
        return (try? CatchUpPolicy(epsilon: epsilon)) ?? .default
    }
}
