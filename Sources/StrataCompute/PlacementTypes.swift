import StrataCore

// What the master hands to placement and what it gets back. `Placer` (Placement.swift)
// makes the decisions; these types carry no logic of their own beyond small conveniences.

/// An agent as placement sees it: what it is and what is free on it right now (its total less
/// what its running and launching tasks hold).
public struct PlacementAgent: Sendable {
    /// Id, hostname, attributes, the data node beside it, and its total resources and ports.
    public var info: AgentInfo
    /// Resources free now.
    public var available: Resources
    /// Ports free now.
    public var availablePorts: [PortRange]

    public init(info: AgentInfo, available: Resources, availablePorts: [PortRange]) {
        self.info = info
        self.available = available
        self.availablePorts = availablePorts
    }
}

/// A task waiting for an agent.
public struct PlacementTask: Sendable {
    /// How long a task with preferred data nodes waits for a node-local slot before it takes any
    /// agent (Spark's `spark.locality.wait`, Hadoop's delay scheduling), unless it says otherwise.
    public static let defaultLocalityWaitMs: Int64 = 3000

    public var id: String
    /// The job or app the task belongs to: constraints count this group's tasks.
    public var group: String
    /// Dominant Resource Fairness shares are per user.
    public var user: String
    public var needs: Resources
    /// How many ports the task needs; placement picks concrete ones from the agent's free ranges.
    public var portCount: Int
    public var constraints: [Constraint]
    /// Ids of the data nodes holding the task's input block; empty means no preference.
    public var preferredDataNodes: [String]
    /// When the task became pending: its locality wait is counted from here.
    public var waitingSince: MonotonicInstant
    /// How long to wait for a node-local slot before taking any agent; 0 never holds the task back.
    public var localityWaitMs: Int64

    public init(
        id: String, group: String, user: String, needs: Resources, portCount: Int = 0, constraints: [Constraint] = [],
        preferredDataNodes: [String] = [], waitingSince: MonotonicInstant, localityWaitMs: Int64 = PlacementTask.defaultLocalityWaitMs
    ) {
        precondition(portCount >= 0, "a task needs zero or more ports")
        self.id = id
        self.group = group
        self.user = user
        self.needs = needs
        self.portCount = portCount
        self.constraints = constraints
        self.preferredDataNodes = preferredDataNodes
        self.waitingSince = waitingSince
        self.localityWaitMs = localityWaitMs
    }

    /// The instant the task stops waiting for a node-local slot.
    public var localityDeadline: MonotonicInstant { waitingSince.advanced(byMilliseconds: max(0, localityWaitMs)) }
}

/// One task placed on one agent.
public struct PlacementDecision: Sendable, Hashable {
    public var taskId: String
    public var agentId: String
    /// The ports the task was given, taken from the agent's free ranges (as many as it asked for).
    public var ports: [Int]
    /// Whether the agent sits beside one of the task's preferred data nodes.
    public var isNodeLocal: Bool

    public init(taskId: String, agentId: String, ports: [Int], isNodeLocal: Bool) {
        self.taskId = taskId
        self.agentId = agentId
        self.ports = ports
        self.isNodeLocal = isNodeLocal
    }
}

/// What one call of `Placer.place` decided. Every pending task is in exactly one of
/// `decisions`, `waitingForLocality` and `noRoom`.
public struct PlacementRound: Sendable {
    public var decisions: [PlacementDecision]
    /// Tasks held back this round because a preferred data node's agent may free up before their
    /// locality wait ends.
    public var waitingForLocality: [String]
    /// Tasks that fit on no agent right now (resources, ports or constraints).
    public var noRoom: [String]
    /// The earliest instant a held-back task stops waiting: the master places again then, even
    /// if nothing else changed. Nil when no task is held back.
    public var nextLocalityDeadline: MonotonicInstant?

    public init(
        decisions: [PlacementDecision] = [], waitingForLocality: [String] = [], noRoom: [String] = [],
        nextLocalityDeadline: MonotonicInstant? = nil
    ) {
        self.decisions = decisions
        self.waitingForLocality = waitingForLocality
        self.noRoom = noRoom
        self.nextLocalityDeadline = nextLocalityDeadline
    }
}
