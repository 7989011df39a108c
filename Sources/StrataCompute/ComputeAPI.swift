/// The JSON bodies of the master's and agents' HTTP APIs, shared by the daemons and the CLI.
public enum ComputeAPI {
    /// `POST /api/v1/agents` (agent → master): register, with every task the agent has.
    public struct Registration: Sendable, Codable {
        public var agent: AgentInfo
        public var tasks: [TaskStatus]
        public init(agent: AgentInfo, tasks: [TaskStatus]) {
            self.agent = agent
            self.tasks = tasks
        }
    }

    /// `POST /api/v1/agents/{id}/heartbeat` (agent → master).
    public struct Heartbeat: Sendable, Codable {
        public var tasks: [TaskStatus]
        public init(tasks: [TaskStatus]) { self.tasks = tasks }
    }

    /// `POST /api/v1/agents/{id}/statuses` (agent → master): task states that changed, oldest
    /// first, handled in one go (at most `maximumCount`).
    public struct StatusReports: Sendable, Codable {
        public var statuses: [TaskStatus]
        public init(statuses: [TaskStatus]) { self.statuses = statuses }
        /// The most statuses one report carries.
        public static let maximumCount = 1_000
    }

    /// `POST /api/v1/tasks/launch` (master → agent): the tasks one placement put on the agent,
    /// launched in one call (at most `maximumCount`).
    public struct LaunchBatch: Sendable, Codable {
        public var tasks: [TaskLaunchOrder]
        public init(tasks: [TaskLaunchOrder]) { self.tasks = tasks }
        /// The most tasks one call carries.
        public static let maximumCount = 500
    }

    /// The agent's answer to a `LaunchBatch`: the tasks it took, and those it refused and why
    /// (a task of that id is on it already, or it is shutting down).
    public struct LaunchBatchReply: Sendable, Codable, Equatable {
        public struct Refusal: Sendable, Codable, Equatable {
            public var taskId: String
            public var message: String
            public init(taskId: String, message: String) {
                self.taskId = taskId
                self.message = message
            }
        }
        public var accepted: [String]
        public var refused: [Refusal]
        public init(accepted: [String], refused: [Refusal]) {
            self.accepted = accepted
            self.refused = refused
        }
    }

    /// The master's answer to a heartbeat.
    public struct HeartbeatReply: Sendable, Codable {
        /// The master does not know the agent (it restarted, or gave the agent up): register again.
        public var reregister: Bool
        public init(reregister: Bool) { self.reregister = reregister }
    }

    /// `POST /api/v1/jobs` (CLI → master).
    public struct JobSubmission: Sendable, Codable {
        public var arguments: [String]
        public var inputs: [String]
        public var output: String
        public var cpus: Double?
        public var memMB: Double?
        public var diskMB: Double?
        public var maxAttempts: Int?
        public var localityWaitMs: Int64?
        public var constraints: [Constraint]?
        public var rootFilesystem: String?
        /// An image in the image store (`REPO:TAG` or `REPO@sha256:...`): tasks run from it.
        public var image: String?
        /// Makes the job one service task (no inputs, no output, never run again by the master).
        public var service: ServiceTask?
        public var environment: [String: String]?
        /// The job's id, chosen by the submitter (a service that must never submit the same
        /// work twice names it after that work): submitting an id the master has already
        /// answers with that job as it is. Nil: the master names it `job-N`.
        public var id: String?
        /// Labels the job is listed and watched by (`GET /api/v1/jobs/watch?label=K=V`).
        public var labels: [String: String]?
        /// Jobs of one user naming the same group share their constraints' counts (`JobSpec`).
        public var placementGroup: String?
        /// Wall time (milliseconds since the Unix epoch) before which no task of the job starts
        /// its command: the job is logged and placed at once, its agent prepares each task and
        /// holds it until then (`JobSpec.notBeforeMs`). Nil or past: tasks start when placed.
        public var notBefore: Int64?

        public init(arguments: [String], inputs: [String], output: String) {
            self.arguments = arguments
            self.inputs = inputs
            self.output = output
        }
    }

    /// A job as the API shows it.
    public struct JobView: Sendable, Codable {
        public var id: String
        public var user: String
        public var state: JobState
        public var arguments: [String]
        public var inputs: [String]
        public var output: String
        public var resources: Resources
        public var maxAttempts: Int
        public var localityWaitMs: Int64
        /// The image the tasks run from, as resolved at submission.
        public var image: TaskImage?
        /// Set for a service task.
        public var service: ServiceTask?
        public var labels: [String: String]?
        public var submittedAtMs: Int64
        /// The submission's `notBefore`, if any.
        public var notBefore: Int64?
        public var endedAtMs: Int64?
        public var message: String?
        public var tasks: Int
        public var finishedTasks: Int
        public var runningTasks: Int
        public var pendingTasks: Int
        /// Attempts of any outcome.
        public var attempts: Int
        public var failedAttempts: Int
        /// Finished tasks whose attempt ran beside its block, and those that ran elsewhere.
        public var nodeLocalTasks: Int
        public var remoteTasks: Int
        public var bytesReadLocal: UInt64
        public var bytesReadRemote: UInt64
    }

    /// A task attempt as the API shows it.
    public struct TaskView: Sendable, Codable {
        public var attempt: TaskAttempt
        public var agentHostname: String?
        public var agentAddress: String?
        public var split: InputSplit?
    }

    /// A service task as the launcher sees it: its job and its one attempt, once placed.
    public struct ServiceView: Sendable, Codable {
        public var job: JobView
        public var task: TaskView?
        public init(job: JobView, task: TaskView?) {
            self.job = job
            self.task = task
        }
    }

    /// Service tasks (`GET /api/v1/services`), with the state version to watch from.
    public struct ServiceList: Sendable, Codable {
        public var stateVersion: UInt64
        public var services: [ServiceView]
        public init(stateVersion: UInt64, services: [ServiceView]) {
            self.stateVersion = stateVersion
            self.services = services
        }
    }

    /// Jobs (`GET /api/v1/jobs/watch`), with the state version to watch from.
    public struct JobList: Sendable, Codable {
        public var stateVersion: UInt64
        public var jobs: [JobView]
        public init(stateVersion: UInt64, jobs: [JobView]) {
            self.stateVersion = stateVersion
            self.jobs = jobs
        }
    }

    /// A job and its attempts (`GET /api/v1/jobs/{id}`).
    public struct JobDetail: Sendable, Codable {
        public var job: JobView
        public var tasks: [TaskView]
        /// The master's count of state changes when this was taken: a watcher passes it back as
        /// `?changedAfter=` to be answered at the next change rather than polling.
        public var stateVersion: UInt64?
        public init(job: JobView, tasks: [TaskView], stateVersion: UInt64? = nil) {
            self.job = job
            self.tasks = tasks
            self.stateVersion = stateVersion
        }
    }

    /// An agent as the API shows it.
    public struct AgentView: Sendable, Codable {
        public var info: AgentInfo
        public var active: Bool
        public var used: Resources
        public var tasks: Int
        public var lastSeenSecondsAgo: Double
    }

    /// `GET /files/read` on an agent (Mesos' shape): `data` from `offset` of a sandbox file.
    public struct FileChunk: Sendable, Codable {
        public var data: String
        public var offset: UInt64
        public init(data: String, offset: UInt64) {
            self.data = data
            self.offset = offset
        }
    }
}
