/// How a master runs (`strata master`).
public struct MasterConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// The master's HTTP port (Mesos: 5050).
    public var port: Int = 5050
    /// An agent silent this long is lost (Mesos' agent ping timeout is 75 s in all; Strata: 15 s).
    public var agentTimeoutMs: Int64 = 15_000
    /// Where the master keeps its state in the DFS.
    public var stateDirectory = "/system/master"
    /// The image store jobs' images come from.
    public var imageStoreRoot = "/system/images"
    /// How often agents' liveness is checked.
    public var tickIntervalMs: Int64 = 1_000
    /// Records logged between snapshots of the state.
    public var snapshotEveryRecords = 10_000
    /// Who may kill any job or task (HDFS's superuser).
    public var superuser = "strata"
    /// The cluster secret: when set, every request must carry `Authorization: Bearer <token>`,
    /// and the master sends it to agents too.
    public var token: String?
    /// The token the master presents to agents (the same cluster secret).
    public var agentToken: String? { token }

    public init() {}
}
