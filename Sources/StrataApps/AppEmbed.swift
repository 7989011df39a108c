/// What an app view includes besides its definition (Marathon's `AppInfo.Embed`, resolved from
/// `embed=` parameters by `InfoEmbedResolver`).
public enum AppEmbed: String, Sendable, Hashable, CaseIterable {
    case tasks, counts, deployments, readiness, lastTaskFailure, taskStats

    /// Resolves `embed` values as Marathon does: a prefix `apps.`, `app.` or `group.apps.` is
    /// optional; `tasks` brings `deployments` too, `failures` (deprecated) means tasks,
    /// lastTaskFailure and deployments; unknown values are ignored.
    public static func resolve(_ values: [String]) -> Set<AppEmbed> {
        var result: Set<AppEmbed> = []
        for value in values {
            var name = Substring(value)
            for prefix in ["group.apps.", "apps.", "app."] where name.hasPrefix(prefix) {
                name = name.dropFirst(prefix.count)
                break
            }
            switch name {
            case "tasks": result.formUnion([.tasks, .deployments])
            case "failures": result.formUnion([.tasks, .lastTaskFailure, .deployments])
            default: if let embed = AppEmbed(rawValue: String(name)) { result.insert(embed) }
            }
        }
        return result
    }

    /// What `GET /v2/apps` always embeds (Marathon, "for compatibility").
    public static let listDefaults: Set<AppEmbed> = [.counts, .deployments]
    /// What `GET /v2/apps/{id}` always embeds.
    public static let showDefaults: Set<AppEmbed> = [.counts, .tasks, .lastTaskFailure, .deployments]
}

/// The last failed task of an app (Marathon's `TaskFailure`, shown as `lastTaskFailure`).
public struct TaskFailure: Sendable, Hashable, Codable {
    public var appId: PathId
    public var taskId: String
    public var state: String
    public var message: String
    public var host: String
    public var slaveId: String?
    public var version: AppVersion
    public var timestamp: AppVersion

    public init(appId: PathId, taskId: String, state: String, message: String, host: String, slaveId: String?, version: AppVersion, timestamp: AppVersion) {
        self.appId = appId
        self.taskId = taskId
        self.state = state
        self.message = message
        self.host = host
        self.slaveId = slaveId
        self.version = version
        self.timestamp = timestamp
    }
}

/// Marathon's `taskStats` of an app (`TaskStatsByVersion`): counts and lifetimes of its tasks,
/// in all (`totalSummary`), of its current configuration (`withLatestConfig`), of older ones
/// (`withOutdatedConfig`) and started since its last scaling (`startedAfterLastScaling`). A
/// group without tasks is left out.
public struct TaskStatistics: Sendable, Hashable, Encodable {
    public struct Counts: Sendable, Hashable, Encodable {
        public var staged = 0
        public var running = 0
        public var healthy = 0
        public var unhealthy = 0
    }
    public struct LifeTime: Sendable, Hashable, Encodable {
        public var averageSeconds: Double
        public var medianSeconds: Double
    }
    public struct Stats: Sendable, Hashable, Encodable {
        public var counts: Counts
        public var lifeTime: LifeTime?
    }
    public struct Entry: Sendable, Hashable, Encodable {
        public var stats: Stats
    }

    public var startedAfterLastScaling: Entry?
    public var withLatestConfig: Entry?
    public var withOutdatedConfig: Entry?
    public var totalSummary: Entry?

    public static func of(_ app: AppDefinition, instances: [AppInstance], wallTimeMs: Int64) -> TaskStatistics {
        let hasChecks = !app.healthChecks.isEmpty
        func entry(_ selected: [AppInstance]) -> Entry? {
            guard !selected.isEmpty else { return nil }
            var counts = Counts()
            for instance in selected {
                switch instance.state {
                case .staging, .starting: counts.staged += 1
                case .running: counts.running += 1
                default: break
                }
                if hasChecks, instance.state == .running {
                    if instance.isHealthy == true { counts.healthy += 1 } else if instance.isHealthy == false { counts.unhealthy += 1 }
                }
            }
            let lives = selected.compactMap(\.startedAtMs).map { Double(max(0, wallTimeMs - $0)) / 1000 }.sorted()
            var lifeTime: LifeTime?
            if !lives.isEmpty {
                let middle = lives.count / 2
                let median = lives.count % 2 == 1 ? lives[middle] : (lives[middle - 1] + lives[middle]) / 2
                lifeTime = LifeTime(averageSeconds: lives.reduce(0, +) / Double(lives.count), medianSeconds: median)
            }
            return Entry(stats: Stats(counts: counts, lifeTime: lifeTime))
        }
        let active = instances.filter(\.isActive)
        let lastScaling = app.versionInfo?.lastScalingAt.millisecondsSinceEpoch ?? 0
        return TaskStatistics(
            startedAfterLastScaling: entry(active.filter { $0.stagedAtMs >= lastScaling }),
            withLatestConfig: entry(active.filter { $0.configVersion == app.configVersion }),
            withOutdatedConfig: entry(active.filter { $0.configVersion != app.configVersion }),
            totalSummary: entry(active))
    }
}
