/// How a master runs (`strata master`).
public struct MasterConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// The master's HTTP port (Mesos: 5050).
    public var port: Int = 5050
    /// An agent silent this long is lost (Mesos' agent ping timeout is 75 s in all; Strata: 15 s).
    public var agentTimeoutMs: Int64 = 15_000
    /// Where the master keeps its state in the DFS.
    public var stateDirectory = "/system/master"

    public init() {}
}
