import StrataCompute

/// A long-running app as Marathon's v2 API defines it (`POST /v2/apps`), with Marathon's defaults
/// for every field left out (its RAML `types/app.raml` and `AppNormalization`). Encoded, every
/// field is written, defaults included, as Marathon answers `GET /v2/apps/{id}`. Decoding goes
/// through `AppDefinition.read`, so a stored definition reads back the same way a request does.
public struct AppDefinition: Sendable, Hashable, Codable {
    /// Absolute once read (relative ids are resolved against the group, or the root).
    public var id: PathId
    /// A shell command (`/bin/sh -c`); either this or `args`, not both.
    public var cmd: String?
    /// The command as an argument vector (after the image's entrypoint, for a container).
    public var args: [String]?
    public var user: String?
    public var cpus: Double = Defaults.cpus
    public var mem: Double = Defaults.mem
    public var disk: Double = Defaults.disk
    public var instances: Int = Defaults.instances
    public var env: [String: String] = [:]
    public var labels: [String: String] = [:]
    public var container: AppContainer?
    /// Ports each instance gets; Marathon's default is one port, 0 (assigned from the agent's range).
    public var portDefinitions: [PortDefinition] = [PortDefinition.defaultPort]
    /// Whether non-zero ports are the host ports themselves (else every port is assigned).
    public var requirePorts = false
    public var constraints: [Constraint] = []
    public var healthChecks: [HealthCheck] = []
    public var backoffSeconds: Int = Defaults.backoffSeconds
    public var backoffFactor: Double = Defaults.backoffFactor
    public var maxLaunchDelaySeconds: Int = Defaults.maxLaunchDelaySeconds
    public var upgradeStrategy = UpgradeStrategy()
    public var dependencies: [PathId] = []
    public var killSelection: KillSelection = .youngestFirst
    /// Set by the launcher when it accepts the definition.
    public var version: AppVersion?
    /// When the configuration (anything but `instances`) and the scale last changed: instances
    /// launched from an older configuration are replaced by a deployment, a scale change is not.
    public var versionInfo: VersionInfo?

    public init(id: PathId, cmd: String? = nil, args: [String]? = nil) {
        self.id = id
        self.cmd = cmd
        self.args = args
    }

    /// Marathon's defaults (RAML `types/app.raml`; `maxLaunchDelaySeconds` has been 300 since
    /// Marathon 1.8, #6686; it was 3600 before).
    public enum Defaults {
        public static let cpus = 1.0
        public static let mem = 128.0
        public static let disk = 0.0
        public static let instances = 1
        public static let backoffSeconds = 1
        public static let backoffFactor = 1.15
        public static let maxLaunchDelaySeconds = 300
    }

    public struct VersionInfo: Sendable, Hashable, Codable {
        public var lastScalingAt: AppVersion
        public var lastConfigChangeAt: AppVersion
        public init(lastScalingAt: AppVersion, lastConfigChangeAt: AppVersion) {
            self.lastScalingAt = lastScalingAt
            self.lastConfigChangeAt = lastConfigChangeAt
        }
    }

    /// The version instances must have been launched from to count as current: the last
    /// configuration change (a scale change alone replaces nothing).
    public var configVersion: AppVersion? { versionInfo?.lastConfigChangeAt ?? version }

    /// The resources one instance takes.
    public var resources: Resources { Resources(cpus: cpus, memMB: mem, diskMB: disk) }

    /// Whether `other` differs from this definition in more than its instance count and
    /// versions (Marathon's `isUpgrade`): such a change replaces every instance.
    public func isUpgrade(to other: AppDefinition) -> Bool {
        var left = self
        var right = other
        left.instances = 0
        right.instances = 0
        left.version = nil
        right.version = nil
        left.versionInfo = nil
        right.versionInfo = nil
        return left != right
    }

    // MARK: - Encoding (Marathon's field names, every default written)

    enum CodingKeys: String, CodingKey {
        case id, cmd, args, user, cpus, mem, disk, instances, env, labels, container, portDefinitions, requirePorts
        case constraints, healthChecks, backoffSeconds, backoffFactor, maxLaunchDelaySeconds, upgradeStrategy
        case dependencies, killSelection, version, versionInfo
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(cmd, forKey: .cmd)
        try container.encodeIfPresent(args, forKey: .args)
        try container.encodeIfPresent(user, forKey: .user)
        try container.encode(cpus, forKey: .cpus)
        try container.encode(mem, forKey: .mem)
        try container.encode(disk, forKey: .disk)
        try container.encode(instances, forKey: .instances)
        try container.encode(env, forKey: .env)
        try container.encode(labels, forKey: .labels)
        try container.encodeIfPresent(self.container, forKey: .container)
        try container.encode(portDefinitions, forKey: .portDefinitions)
        try container.encode(requirePorts, forKey: .requirePorts)
        try container.encode(constraints, forKey: .constraints)
        try container.encode(healthChecks, forKey: .healthChecks)
        try container.encode(backoffSeconds, forKey: .backoffSeconds)
        try container.encode(backoffFactor, forKey: .backoffFactor)
        try container.encode(maxLaunchDelaySeconds, forKey: .maxLaunchDelaySeconds)
        try container.encode(upgradeStrategy, forKey: .upgradeStrategy)
        try container.encode(dependencies, forKey: .dependencies)
        try container.encode(killSelection, forKey: .killSelection)
        try container.encodeIfPresent(version, forKey: .version)
        try container.encodeIfPresent(versionInfo, forKey: .versionInfo)
    }

    /// Reads through the same reader as requests (so unknown fields are tolerated and defaults
    /// filled in); a definition that does not read throws a `DecodingError` naming the details.
    public init(from decoder: any Decoder) throws {
        let json = try JSONValue(from: decoder)
        switch AppDefinition.read(json) {
        case .success(let app): self = app
        case .failure(let failure):
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: failure.description))
        }
    }
}

/// `container`: Marathon's `{"type":"DOCKER"|"MESOS","docker":{"image":...}}`. In Strata the
/// image is one in the image store (`REPO:TAG`), run by the agent with runc whichever type is
/// named.
public struct AppContainer: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case docker = "DOCKER"
        case mesos = "MESOS"
    }

    public struct Docker: Sendable, Hashable, Codable {
        public var image: String
        public var forcePullImage: Bool
        public init(image: String, forcePullImage: Bool = false) {
            self.image = image
            self.forcePullImage = forcePullImage
        }
    }

    public var type: Kind
    public var docker: Docker?

    public init(type: Kind, docker: Docker?) {
        self.type = type
        self.docker = docker
    }
}

/// One port an instance asks for (`portDefinitions`): `port` 0 takes any free port of the agent's
/// range; another value is a host port only with `requirePorts`.
public struct PortDefinition: Sendable, Hashable, Codable {
    public var port: Int
    public var `protocol`: String
    public var name: String?
    public var labels: [String: String]

    public init(port: Int, protocol: String = "tcp", name: String? = nil, labels: [String: String] = [:]) {
        self.port = port
        self.protocol = `protocol`
        self.name = name
        self.labels = labels
    }

    /// What Marathon gives an app that names no ports (`Apps.DefaultPortDefinitions`).
    public static let defaultPort = PortDefinition(port: 0, name: "default")

    /// Marathon's protocols for a port.
    public static let protocols = ["tcp", "udp", "udp,tcp"]
}

/// `upgradeStrategy`: bounds on a rolling replacement, as fractions of `instances`.
public struct UpgradeStrategy: Sendable, Hashable, Codable {
    /// At least `ceil(minimumHealthCapacity × instances)` instances stay healthy.
    public var minimumHealthCapacity: Double
    /// At most `floor((1 + maximumOverCapacity) × instances)` instances exist at once.
    public var maximumOverCapacity: Double

    public init(minimumHealthCapacity: Double = 1, maximumOverCapacity: Double = 1) {
        self.minimumHealthCapacity = minimumHealthCapacity
        self.maximumOverCapacity = maximumOverCapacity
    }
}

/// Which instances a scale-down kills first among running ones of equal standing.
public enum KillSelection: String, Sendable, Hashable, Codable, CaseIterable {
    case youngestFirst = "YOUNGEST_FIRST"
    case oldestFirst = "OLDEST_FIRST"
}
