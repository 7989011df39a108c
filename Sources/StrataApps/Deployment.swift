/// A deployment: the change of one or more apps, as steps run one after the other, the actions of
/// a step together (docs/deployments.md). While it runs it locks its apps.
public struct Deployment: Sendable, Hashable, Codable {
    public var id: String
    /// The version it deploys (the new versions of its apps).
    public var version: AppVersion
    public var steps: [[DeploymentAction]]
    /// Index of the step being run (Marathon's API counts from 1: `currentStep` = this + 1).
    public var currentStep: Int
    /// Each affected app's version before the deployment (nil: the app did not exist), to revert
    /// to if it is cancelled with a rollback.
    public var originalVersions: [PathId: AppVersion?]
    public var startedAtMs: Int64

    public init(id: String, version: AppVersion, steps: [[DeploymentAction]], originalVersions: [PathId: AppVersion?], startedAtMs: Int64) {
        self.id = id
        self.version = version
        self.steps = steps
        self.currentStep = 0
        self.originalVersions = originalVersions
        self.startedAtMs = startedAtMs
    }

    /// The apps it changes, sorted.
    public var affectedApps: [PathId] { Set(steps.flatMap { $0.map(\.appId) }).sorted() }
}

/// One action of a deployment step, named as Marathon's `/v2/deployments` names them.
public enum DeploymentAction: Sendable, Hashable, Codable {
    case start(PathId)
    case scale(PathId)
    case restart(PathId)
    case stop(PathId)

    public var appId: PathId {
        switch self {
        case .start(let id), .scale(let id), .restart(let id), .stop(let id): id
        }
    }

    public var name: String {
        switch self {
        case .start: "StartApplication"
        case .scale: "ScaleApplication"
        case .restart: "RestartApplication"
        case .stop: "StopApplication"
        }
    }
}

/// A change to the launcher's durable state, as logged on the DFS (`/system/launcher/`) and
/// replayed on start: applying a log's records in order to an empty state gives the state the
/// launcher had when it wrote the last of them.
public enum LauncherRecord: Sendable, Hashable, Codable {
    /// A version of an app was stored and made current.
    case appPut(AppDefinition)
    /// An app was removed, with its versions.
    case appDeleted(PathId, atMs: Int64)
    case deploymentStarted(Deployment)
    /// A deployment's step `step` (from 0) is complete; the next one runs.
    case deploymentStepFinished(deploymentId: String, step: Int, atMs: Int64)
    case deploymentFinished(deploymentId: String, atMs: Int64)
    case deploymentCancelled(deploymentId: String, atMs: Int64)
    /// An instance was created (logged before the master is asked to place it).
    case instanceLaunched(AppInstance)
    /// An instance's task changed state or was placed.
    case instanceChanged(InstanceChange)
    case instanceKillRequested(instanceId: String, reason: KillReason, atMs: Int64)
    /// An instance's health, all its checks together, changed.
    case instanceHealthChanged(instanceId: String, isHealthy: Bool, atMs: Int64)
    /// The whole durable state at a moment, as a snapshot of the log holds it.
    case restored(LauncherStateSnapshot)
}

/// What a snapshot of the launcher's log holds (`LauncherState.snapshotRecords`).
public struct LauncherStateSnapshot: Sendable, Hashable, Codable {
    public var apps: [AppDefinition]
    /// Every stored version of every app, by app, oldest first.
    public var versions: [[AppDefinition]]
    /// Running deployments, oldest first.
    public var deployments: [Deployment]
    public var instances: [AppInstance]
    public var nextInstanceNumber: Int
    public var lastVersionMs: Int64
    public var lastTaskFailures: [TaskFailure]
}
