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
    /// What the agent offers; nil amounts are measured on the machine (Mesos' defaults).
    public var resources: Resources?
    /// Ports tasks may be given (Mesos' default range).
    public var ports: [PortRange] = [PortRange(31000, 32000)]
    public var attributes: [String: String] = [:]
    /// The data node beside this agent.
    public var dataNodeId: String?
    /// Tasks may run as root only when this is set (`--allow-root-tasks`).
    public var allowRootTasks = false

    public init(workDirectory: String, masterAddress: String) {
        self.workDirectory = workDirectory
        self.masterAddress = masterAddress
    }
}
