/// How a launcher runs (`strata launcher`, or beside the master in `strata cluster up`).
public struct LauncherConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// Its HTTP port (Marathon's: 8080).
    public var port: Int = 8080
    /// The master it places instances through (`host:port`).
    public var masterAddress: String
    /// Where it keeps its state in the DFS.
    public var stateDirectory = "/system/launcher"
    /// The user instances run as when their app names none (`user` in the app).
    public var taskUser: String
    /// The user it acts as in the DFS and kills tasks as (the master's superuser).
    public var superuser = "strata"
    /// The cluster secret: required of callers when set, and sent to the master.
    public var token: String?
    /// Its name, the value of the `strata.launcher` label on every task it starts: what it
    /// finds its tasks by after a restart.
    public var name = "launcher"
    /// How many records the log takes between snapshots of the whole state.
    public var snapshotEveryRecords = 10_000
    /// How often the tick runs at the latest (backoff deadlines wake it sooner).
    public var tickIntervalMs: Int64 = 1_000
    /// How long one watch of the master's service tasks waits for a change.
    public var watchWaitMs: Int64 = 10_000

    public init(masterAddress: String, taskUser: String) {
        self.masterAddress = masterAddress
        self.taskUser = taskUser
    }
}

/// The labels the launcher puts on its service tasks.
enum TaskLabels {
    static let launcher = "strata.launcher"
    static let app = "marathon.app"
    static let version = "marathon.version"
    static let instance = "marathon.instance"
}
