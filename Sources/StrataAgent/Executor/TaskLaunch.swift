import StrataCompute

/// A task's container image, already unpacked on this host.
public struct ContainerSpec: Sendable, Hashable, Codable {
    /// The directory holding the image's unpacked root filesystem. runc mounts what a process
    /// needs (`/proc`, `/dev`, `/sys`, `/mnt/sandbox`) under it, making their mount points
    /// when they are missing (`OCIConfiguration.mountPoints`).
    public var rootFilesystem: String
    /// The container sees its root filesystem read-only, with a fresh tmpfs at `/tmp`: what a
    /// root filesystem shared by tasks (the agent's image cache) needs. runc then writes
    /// nothing in it, provided the mount points are there.
    public var readOnly: Bool
    /// Where the command starts (an image's WorkingDir); empty: `/`.
    public var workingDirectory: String

    public init(rootFilesystem: String, readOnly: Bool = false, workingDirectory: String = "") {
        self.rootFilesystem = rootFilesystem
        self.readOnly = readOnly
        self.workingDirectory = workingDirectory
    }
}

/// What the agent asks its executor to run.
public struct TaskLaunch: Sendable {
    /// Names the task's cgroup and runc container: letters, digits, `_`, `.` and `-`, as Marathon's
    /// task ids are.
    public var taskId: String
    /// The command and its arguments. `arguments[0]` is looked up on `PATH` (the task's own, or
    /// the usual system directories) unless it contains a `/`; inside a container it is looked
    /// up in the image's root filesystem.
    public var arguments: [String]
    /// The task's whole environment (the agent's own is not passed on). `PATH` is added when it
    /// is missing.
    public var environment: [String: String]
    /// The user the task runs as: the agent is root and switches uid, gid and supplementary
    /// groups to this user's (Mesos `--switch_user`). Looked up on this host, for containers too.
    public var user: String
    /// An existing directory: a process's working directory, and `/mnt/sandbox` in a container.
    /// The task's `stdout` and `stderr` files are written in it.
    public var sandbox: String
    /// A file given to the task as its standard input; nil gives it `/dev/null`.
    public var standardInput: String?
    /// A descriptor given to the task as its standard input instead of `standardInput` (the read
    /// end of the pipe the agent streams the task's split into). The executor gives the task a
    /// duplicate, in a container too (runc passes its stdin on); the caller keeps and closes its own.
    public var standardInputDescriptor: Int32?
    /// `cpus` becomes the cgroup's CPU shares (1024 per CPU, at least 2) and `memMB` its memory
    /// limit (none when zero). Disk is not enforced here.
    public var resources: Resources
    /// Run in an OCI container with runc; nil runs a plain process in cgroups of its own.
    public var container: ContainerSpec?
    /// A process task is made ready (its files, its cgroups, its shell started in them) but its
    /// command does not start until `RunningTask.release()`: what lets a task due at an instant
    /// start then without paying for its preparation. Not for a container.
    public var heldUntilReleased = false

    public init(
        taskId: String, arguments: [String], environment: [String: String] = [:], user: String, sandbox: String,
        standardInput: String? = nil, standardInputDescriptor: Int32? = nil, resources: Resources,
        container: ContainerSpec? = nil
    ) {
        self.taskId = taskId
        self.arguments = arguments
        self.environment = environment
        self.user = user
        self.sandbox = sandbox
        self.standardInput = standardInput
        self.standardInputDescriptor = standardInputDescriptor
        self.resources = resources
        self.container = container
    }
}

/// Why a task could not be started. Nothing of the task is left behind when this is thrown.
public struct LaunchError: Error, Sendable, CustomStringConvertible {
    /// For people: what was wrong, naming the user, command or path.
    public var message: String
    /// Mesos' reason for the failed task (`REASON_TASK_INVALID`, `REASON_COMMAND_EXECUTOR_FAILED`,
    /// `REASON_CONTAINER_LAUNCH_FAILED`).
    public var reason: String

    public init(message: String, reason: String) {
        self.message = message
        self.reason = reason
    }

    public var description: String { message }

    /// The launch itself is wrong: an unknown user, root when root is not allowed, a bad task id.
    static func invalid(_ message: String) -> LaunchError {
        LaunchError(message: message, reason: TaskOutcome.Reason.taskInvalid)
    }

    /// The command is not there to run.
    static func commandNotFound(_ message: String) -> LaunchError {
        LaunchError(message: message, reason: TaskOutcome.Reason.commandExecutorFailed)
    }

    /// The host could not set the task up: cgroups, files, the root filesystem, runc, spawn.
    static func launchFailed(_ message: String) -> LaunchError {
        LaunchError(message: message, reason: TaskOutcome.Reason.containerLaunchFailed)
    }
}
