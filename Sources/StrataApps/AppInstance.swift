import StrataCompute

/// One running copy of an app (Marathon's instance, one task): which configuration it was
/// launched from, where it runs and how it is doing.
public struct AppInstance: Sendable, Hashable, Codable {
    public var id: String
    public var appId: PathId
    /// The app's `configVersion` when this instance was launched: a deployment replaces the
    /// instances whose configuration is older than the app's.
    public var configVersion: AppVersion
    /// Its task's state as the master reports it (`TASK_STAGING` until placed and started).
    public var state: TaskState
    /// Nil until a health check has answered (or always, for an app without health checks).
    public var isHealthy: Bool?
    /// A kill was asked for (scale-down, upgrade, failed health checks): the instance still
    /// counts towards the app's total until its task ends, but no longer towards its healthy
    /// or wanted instances (Marathon's goal `Decommissioned`).
    public var isBeingKilled: Bool
    public var agentId: String?
    public var host: String?
    public var ports: [Int]
    public var stagedAtMs: Int64
    /// When its task started running (Marathon's `startedAt`); nil before.
    public var startedAtMs: Int64?
    public var endedAtMs: Int64?

    public init(
        id: String, appId: PathId, configVersion: AppVersion, state: TaskState = .staging, isHealthy: Bool? = nil,
        isBeingKilled: Bool = false, agentId: String? = nil, host: String? = nil, ports: [Int] = [], stagedAtMs: Int64,
        startedAtMs: Int64? = nil, endedAtMs: Int64? = nil
    ) {
        self.id = id
        self.appId = appId
        self.configVersion = configVersion
        self.state = state
        self.isHealthy = isHealthy
        self.isBeingKilled = isBeingKilled
        self.agentId = agentId
        self.host = host
        self.ports = ports
        self.stagedAtMs = stagedAtMs
        self.startedAtMs = startedAtMs
        self.endedAtMs = endedAtMs
    }

    public var isActive: Bool { !state.isTerminal }

    /// Marathon's `consideredHealthy`: running, and alive by its health checks if it has any.
    public func isConsideredHealthy(hasHealthChecks: Bool) -> Bool {
        state == .running && (!hasHealthChecks || isHealthy == true)
    }
}

/// A change of an instance's task, as the master reports it: its state, and where it was placed.
public struct InstanceChange: Sendable, Hashable, Codable {
    public var instanceId: String
    public var state: TaskState
    public var agentId: String?
    public var host: String?
    public var ports: [Int]?
    public var atMs: Int64
    public var message: String?

    public init(instanceId: String, state: TaskState, agentId: String? = nil, host: String? = nil, ports: [Int]? = nil, atMs: Int64, message: String? = nil) {
        self.instanceId = instanceId
        self.state = state
        self.agentId = agentId
        self.host = host
        self.ports = ports
        self.atMs = atMs
        self.message = message
    }
}

/// Why the launcher kills an instance.
public enum KillReason: String, Sendable, Hashable, Codable {
    case scalingDown = "ScalingApp"
    case upgrading = "Upgrading"
    case failedHealthChecks = "FailedHealthChecks"
    case deletingApp = "DeletingApp"
    case killedByUser = "KillingTasksViaApi"
    /// A task the launcher does not know (or has given up on) was reported running.
    case orphaned = "Orphaned"
}
