import StrataCompute

/// How an agent runs (`strata agent`).
public struct AgentConfiguration: Sendable {
    /// Where sandboxes, the agent's id and its cluster secret live.
    public var workDirectory: String
    /// The master's HTTP address (`host:port`, Mesos `--master`).
    public var masterAddress: String
    public var host: String = "127.0.0.1"
    /// The agent's HTTP port (Mesos: 5051).
    public var port: Int = 5051
    /// What the agent offers; nil: measured on the machine (Mesos' defaults), with
    /// `resourceOverrides` in place of the amounts it gives.
    public var resources: Resources?
    /// Amounts to offer instead of the measured ones (`--resources`).
    public var resourceOverrides = ResourceOverrides()
    /// Ports tasks may be given (Mesos' default range).
    public var ports: [PortRange] = [PortRange(31000, 32000)]
    public var attributes: [String: String] = [:]
    /// The data node beside this agent.
    public var dataNodeId: String?
    /// Tasks may run as root only when this is set (`--allow-root-tasks`).
    public var allowRootTasks = false
    /// The name the agent gives for itself (and constraints match on).
    public var hostname = "localhost"
    /// How often the agent tells the master its tasks' states (and that it is alive).
    public var heartbeatIntervalMs: Int64 = 1_000
    /// How long a killed task gets between SIGTERM and SIGKILL (Mesos' default is 3 s).
    public var killGracePeriodMs: Int64 = 3_000
    /// Tasks' cgroups go under this parent in every hierarchy (one per agent on a shared host).
    public var cgroupParent = "strata"
    /// runc's state and the containers' bundles.
    public var runtimeDirectory = "/run/strata"
    /// The cluster secret: sent to the master, and required of callers when set.
    public var token: String?
    /// Where tasks' images are read from in the DFS.
    public var imageStoreRoot = "/system/images"
    /// The most disk the cache of unpacked images (`WORK_DIR/images`) may take; the least
    /// recently used images no task runs from are removed to stay under it.
    public var imageCacheBytes: Int64 = 10 << 30

    public init(workDirectory: String, masterAddress: String) {
        self.workDirectory = workDirectory
        self.masterAddress = masterAddress
    }
}
