/// A data-local batch job as submitted: a command run once per input split, its stdout kept as
/// one part file per split under `output`.
public struct JobSpec: Sendable, Hashable, Codable {
    /// `job-N`, given by the master, or the id its submitter chose.
    public var id: String
    /// Who submitted it: its tasks run as this user and read and write the DFS as this user.
    public var user: String
    /// The command and its arguments (argv).
    public var arguments: [String]
    public var environment: [String: String]
    /// The input paths as given (files, directories, globs).
    public var inputs: [String]
    /// The output directory in the DFS: `part-NNNNN` files and `_SUCCESS`.
    public var output: String
    /// What each task needs.
    public var resources: Resources
    /// Failed attempts a task may make before the job fails (Hadoop's default is 4).
    public var maxAttempts: Int
    /// How long a task waits for a slot beside its block before running elsewhere.
    public var localityWaitMs: Int64
    public var constraints: [Constraint]
    /// A root filesystem directory on the agents: tasks run in a runc container from it.
    public var rootFilesystem: String?
    /// An image from the image store: tasks run in a runc container from it.
    public var image: TaskImage?
    /// Set for a service task (one long-running task, no input, no output, never run again by
    /// the master: its owner, such as the launcher, decides what replaces it); nil for a batch
    /// job.
    public var service: ServiceTask?
    /// Labels the job is listed by (nil in records written before jobs had labels).
    public var labels: [String: String]?
    /// The name its constraints count tasks under: jobs of one user naming the same group are
    /// one group (UNIQUE, MAX_PER, GROUP_BY, CLUSTER see all their tasks), as the launcher names
    /// the jobs of one app's instances after the app. Nil: the job alone.
    public var placementGroup: String?
    /// Wall time (ms since the Unix epoch) before which no task of the job starts its command.
    /// The job is placed as usual; its agent prepares the task (sandbox, cgroup, its shell) at
    /// once and lets the command start only then, measured on the agent's clock. Nil: no wait.
    public var notBeforeMs: Int64?
    /// Wall time of submission, for listings.
    public var submittedAtMs: Int64

    public init(
        id: String, user: String, arguments: [String], environment: [String: String] = [:], inputs: [String], output: String,
        resources: Resources, maxAttempts: Int = JobSpec.defaultMaxAttempts, localityWaitMs: Int64 = JobSpec.defaultLocalityWaitMs,
        constraints: [Constraint] = [], rootFilesystem: String? = nil, image: TaskImage? = nil, service: ServiceTask? = nil,
        labels: [String: String]? = nil, submittedAtMs: Int64
    ) {
        self.id = id
        self.user = user
        self.arguments = arguments
        self.environment = environment
        self.inputs = inputs
        self.output = output
        self.resources = resources
        self.maxAttempts = maxAttempts
        self.localityWaitMs = localityWaitMs
        self.constraints = constraints
        self.rootFilesystem = rootFilesystem
        self.image = image
        self.service = service
        self.labels = labels
        self.submittedAtMs = submittedAtMs
    }

    /// The key constraints group this job's tasks by: its placement group within its user's
    /// jobs, else the job itself.
    public var constraintGroup: String {
        placementGroup.map { "\(user)/\($0)" } ?? id
    }

    /// Whether the job has label `key` set to `value` (its own labels, or its service task's).
    public func hasLabel(_ key: String, _ value: String) -> Bool {
        labels?[key] == value || service?.labels[key] == value
    }

    /// Why `id` cannot name a job a submitter chose, or nil if it can: 1 to 200 letters, digits,
    /// `.`, `_` and `-`, starting with a letter or digit, and not `job-N` (the master's own) or
    /// `watch` (a path of the API).
    public static func invalidChosenIdReason(_ id: String) -> String? {
        guard (1...200).contains(id.utf8.count) else { return "a job id has 1 to 200 characters" }
        guard id.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }),
              id.utf8.first!.isASCIIAlphanumeric else {
            return "a job id is letters, digits, '.', '_' and '-', starting with a letter or digit: '\(id)'"
        }
        guard !id.hasPrefix("job-"), id != "watch" else { return "'\(id)' is reserved for the master's own job ids" }
        return nil
    }

    /// How far ahead of its submission a job's `notBefore` may be: a held task keeps its
    /// resources on its agent until then.
    public static let maximumNotBeforeLeadMs: Int64 = 3_600_000

    /// Hadoop's `mapreduce.map.maxattempts`.
    public static let defaultMaxAttempts = 4
    /// Delay scheduling's default wait for a node-local slot.
    public static let defaultLocalityWaitMs: Int64 = 3_000
    /// What a task gets when the submitter names nothing (Mesos' and Marathon's small defaults).
    public static let defaultResources = Resources(cpus: 0.1, memMB: 128)

    /// The output file of split `index`: `part-00007` (Hadoop's naming).
    public static func partName(_ index: Int) -> String {
        let digits = String(index)
        return "part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }
}

/// One task's share of a job's input: a block of a file. In line mode the task gets the lines
/// that start in `offset ..< offset + length` (see `LineSplit`).
public struct InputSplit: Sendable, Hashable, Codable {
    public var path: String
    public var offset: UInt64
    public var length: UInt64
    public var fileLength: UInt64
    /// Data nodes holding the block: a task placed beside one of them reads it from local disk.
    public var dataNodes: [String]

    public init(path: String, offset: UInt64, length: UInt64, fileLength: UInt64, dataNodes: [String]) {
        self.path = path
        self.offset = offset
        self.length = length
        self.fileLength = fileLength
        self.dataNodes = dataNodes
    }

    /// No input: a service task's (its stdin ends at once).
    public static let none = InputSplit(path: "", offset: 0, length: 0, fileLength: 0, dataNodes: [])
}

/// What makes a job one service task: the ports it is given from its agent's range (as
/// `$PORT0`, `$PORT1`..., Marathon's `portDefinitions` with port 0) and labels its owner
/// finds it by.
public struct ServiceTask: Sendable, Hashable, Codable {
    public var portCount: Int
    public var labels: [String: String]
    /// A check the agent runs beside the task (Mesos' COMMAND health check): it reports the
    /// task's health as it changes and kills the task when the check keeps failing.
    public var healthCheck: CommandHealthCheck?

    public init(portCount: Int = 0, labels: [String: String] = [:], healthCheck: CommandHealthCheck? = nil) {
        self.portCount = portCount
        self.labels = labels
        self.healthCheck = healthCheck
    }
}

/// A health check run by the task's agent: a shell command in the task's sandbox, environment
/// and container, as its user; exit status 0 is a pass. Mesos' `HealthCheck` of type COMMAND
/// with its field meanings; the defaults are Marathon's (docs/launcher.md "Health").
public struct CommandHealthCheck: Sendable, Hashable, Codable {
    public var command: String
    /// Failures this soon after the task started running are ignored until a first pass.
    public var gracePeriodMs: Int64
    public var intervalMs: Int64
    /// A run of the command that takes longer fails.
    public var timeoutMs: Int64
    /// The first check runs this long after the task started running.
    public var delayMs: Int64
    /// The task is killed when this many failures in a row are counted (0: at the first).
    public var maxConsecutiveFailures: Int

    public init(
        command: String, gracePeriodMs: Int64 = 300_000, intervalMs: Int64 = 60_000, timeoutMs: Int64 = 20_000,
        delayMs: Int64 = 15_000, maxConsecutiveFailures: Int = 3
    ) {
        self.command = command
        self.gracePeriodMs = gracePeriodMs
        self.intervalMs = intervalMs
        self.timeoutMs = timeoutMs
        self.delayMs = delayMs
        self.maxConsecutiveFailures = maxConsecutiveFailures
    }
}

/// Where placement put a pending task: its agent, whether beside its block, and the ports it
/// was given.
public struct TaskPlacement: Sendable, Hashable {
    public var jobId: String
    public var index: Int
    public var agentId: String
    public var isNodeLocal: Bool
    public var ports: [Int]

    public init(jobId: String, index: Int, agentId: String, isNodeLocal: Bool, ports: [Int] = []) {
        self.jobId = jobId
        self.index = index
        self.agentId = agentId
        self.isNodeLocal = isNodeLocal
        self.ports = ports
    }
}

public enum JobState: String, Sendable, Hashable, Codable {
    case running = "RUNNING"
    /// Every task finished; the job's `_SUCCESS` marker is being written.
    case committing = "COMMITTING"
    case finished = "FINISHED"
    case failed = "FAILED"
    case killed = "KILLED"

    public var isTerminal: Bool { self == .finished || self == .failed || self == .killed }
}

/// One run of one split's task on one agent. A task that fails or whose agent is lost is run
/// again as a new attempt with a new task id; only one attempt's output is ever committed.
public struct TaskAttempt: Sendable, Hashable, Codable {
    /// `job-7-00003-2`: job, split index, attempt.
    public var taskId: String
    public var jobId: String
    public var index: Int
    public var attempt: Int
    public var user: String
    public var agentId: String
    public var state: TaskState
    /// Placed on an agent beside a data node holding its block.
    public var isNodeLocal: Bool
    public var stagedAtMs: Int64
    public var runningAtMs: Int64?
    public var endedAtMs: Int64?
    public var exitCode: Int32?
    /// Mesos-style reason (`REASON_CONTAINER_LIMITATION_MEMORY`, `REASON_AGENT_REMOVED` ...).
    public var reason: String?
    public var message: String?
    /// Input bytes read from the agent's own disk (short-circuit) and over the network.
    public var bytesReadLocal: UInt64
    public var bytesReadRemote: UInt64
    /// The last lines of the task's stderr, kept for a failed attempt.
    public var stderrTail: String?
    /// Ports given to it from its agent's range (a service task's), in order.
    public var ports: [Int]?
    /// What its agent's command health check last said (nil: no check, or no verdict yet).
    public var healthy: Bool?

    public init(taskId: String, jobId: String, index: Int, attempt: Int, user: String, agentId: String, isNodeLocal: Bool, stagedAtMs: Int64) {
        self.taskId = taskId
        self.jobId = jobId
        self.index = index
        self.attempt = attempt
        self.user = user
        self.agentId = agentId
        self.state = .staging
        self.isNodeLocal = isNodeLocal
        self.stagedAtMs = stagedAtMs
        self.bytesReadLocal = 0
        self.bytesReadRemote = 0
    }

    public static func taskId(job: String, index: Int, attempt: Int) -> String {
        let digits = String(index)
        return "\(job)-\(String(repeating: "0", count: max(0, 5 - digits.count)))\(digits)-\(attempt)"
    }
}

/// What an agent reports of a task: its state and, once it ended, how.
public struct TaskStatus: Sendable, Hashable, Codable {
    public var taskId: String
    public var state: TaskState
    public var exitCode: Int32?
    public var reason: String?
    public var message: String?
    public var bytesReadLocal: UInt64?
    public var bytesReadRemote: UInt64?
    public var stderrTail: String?
    /// The task's health by its command health check, once it has a verdict.
    public var healthy: Bool?

    public init(
        taskId: String, state: TaskState, exitCode: Int32? = nil, reason: String? = nil, message: String? = nil,
        bytesReadLocal: UInt64? = nil, bytesReadRemote: UInt64? = nil, stderrTail: String? = nil, healthy: Bool? = nil
    ) {
        self.taskId = taskId
        self.state = state
        self.exitCode = exitCode
        self.reason = reason
        self.message = message
        self.bytesReadLocal = bytesReadLocal
        self.bytesReadRemote = bytesReadRemote
        self.stderrTail = stderrTail
        self.healthy = healthy
    }
}

/// What the master sends an agent to start a task.
public struct TaskLaunchOrder: Sendable, Hashable, Codable {
    public var taskId: String
    public var jobId: String
    public var user: String
    public var arguments: [String]
    public var environment: [String: String]
    public var resources: Resources
    public var rootFilesystem: String?
    /// The image to run the task from (instead of `rootFilesystem`).
    public var image: TaskImage?
    /// The split to give the task on stdin, in line mode.
    public var split: InputSplit
    /// Where the task's stdout goes once it succeeded: `output/part-NNNNN`; empty for a
    /// service task, whose stdout stays in its sandbox.
    public var output: String
    public var partName: String
    /// Ports given to the task (`$PORT0`...).
    public var ports: [Int]?
    /// The service task's command health check, run by the agent.
    public var healthCheck: CommandHealthCheck?
    /// The job's `notBeforeMs`: the agent prepares the task at once and starts its command no
    /// earlier than this wall time (ms since the Unix epoch); nil: at once.
    public var notBeforeMs: Int64?

    public init(
        taskId: String, jobId: String, user: String, arguments: [String], environment: [String: String], resources: Resources,
        rootFilesystem: String?, image: TaskImage? = nil, split: InputSplit, output: String, partName: String, ports: [Int] = []
    ) {
        self.taskId = taskId
        self.jobId = jobId
        self.user = user
        self.arguments = arguments
        self.environment = environment
        self.resources = resources
        self.rootFilesystem = rootFilesystem
        self.image = image
        self.split = split
        self.output = output
        self.partName = partName
        self.ports = ports.isEmpty ? nil : ports
    }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
