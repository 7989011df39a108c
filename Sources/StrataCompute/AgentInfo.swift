/// What an agent tells the master when it registers: where it is, what it has, and which data
/// node sits beside it (what makes a placement node-local).
public struct AgentInfo: Sendable, Hashable, Codable {
    /// Stable across the agent's restarts (kept in its work directory).
    public var id: String
    public var hostname: String
    /// Where the agent's HTTP API answers (`host:port`).
    public var address: String
    /// The id of the data node on the same machine, if any.
    public var dataNodeId: String?
    public var resources: Resources
    public var ports: [PortRange]
    /// `rack` and any `key=value` given on the agent's command line. `hostname` is a field of
    /// its own, but constraints can name it as if it were an attribute.
    public var attributes: [String: String]

    public init(
        id: String, hostname: String, address: String, dataNodeId: String?, resources: Resources, ports: [PortRange],
        attributes: [String: String]
    ) {
        self.id = id
        self.hostname = hostname
        self.address = address
        self.dataNodeId = dataNodeId
        self.resources = resources
        self.ports = ports
        self.attributes = attributes
    }

    /// The value of a constraint's field on this agent: `hostname`, or an attribute.
    public func value(of field: String) -> String? {
        field == "hostname" ? hostname : attributes[field]
    }
}
