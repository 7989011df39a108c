/// One of an app's `healthChecks`, with Marathon's defaults (docs/health-checks.md, RAML
/// `types/healthCheck.raml`).
public struct HealthCheck: Sendable, Hashable, Codable {
    /// Marathon's protocols. The `MESOS_*` ones and `COMMAND` are run next to the task in Mesos;
    /// in Strata every check is run by the launcher's checker or the agent alike, and the names
    /// only change how `maxConsecutiveFailures` counts (see `killsAfter`).
    public enum ProtocolName: String, Sendable, Hashable, Codable, CaseIterable {
        case http = "HTTP"
        case https = "HTTPS"
        case tcp = "TCP"
        case command = "COMMAND"
        case mesosHTTP = "MESOS_HTTP"
        case mesosHTTPS = "MESOS_HTTPS"
        case mesosTCP = "MESOS_TCP"

        /// What is checked, whichever side runs it.
        public enum Kind: Sendable, Hashable { case http(secure: Bool), tcp, command }

        public var kind: Kind {
            switch self {
            case .http, .mesosHTTP: .http(secure: false)
            case .https, .mesosHTTPS: .http(secure: true)
            case .tcp, .mesosTCP: .tcp
            case .command: .command
            }
        }

        /// Mesos-level checks (Marathon docs, "Mesos-level health checks").
        public var isMesosLevel: Bool {
            switch self {
            case .http, .https, .tcp: false
            case .command, .mesosHTTP, .mesosHTTPS, .mesosTCP: true
            }
        }
    }

    public var `protocol`: ProtocolName = .http
    /// For HTTP kinds: the path requested (default `/`).
    public var path: String?
    /// Index into `portDefinitions` of the port to check (default 0 when no `port` is given).
    public var portIndex: Int?
    /// A fixed port, which takes precedence over `portIndex`.
    public var port: Int?
    /// For COMMAND: the shell command; exit status 0 is healthy.
    public var command: String?
    public var gracePeriodSeconds = Defaults.gracePeriodSeconds
    public var intervalSeconds = Defaults.intervalSeconds
    public var timeoutSeconds = Defaults.timeoutSeconds
    public var maxConsecutiveFailures = Defaults.maxConsecutiveFailures
    public var delaySeconds = Defaults.delaySeconds
    public var ignoreHttp1xx = false

    public init(protocol: ProtocolName = .http) {
        self.protocol = `protocol`
    }

    public enum Defaults {
        public static let gracePeriodSeconds = 300
        public static let intervalSeconds = 60
        public static let timeoutSeconds = 20
        public static let maxConsecutiveFailures = 3
        public static let delaySeconds = 15
    }

    /// After how many consecutive counted failures the instance is killed, or nil if never.
    /// Marathon's own checks (HTTP, HTTPS, TCP) kill on a failure that comes when the count
    /// already stands at `maxConsecutiveFailures` (that is, after *more than* that many), and
    /// never with 0; Mesos-level checks kill once the count reaches it, so 0 kills on the first
    /// failure (docs/health-checks.md, `HealthCheckActor.checkConsecutiveFailures`).
    public var killsAfter: Int? {
        if `protocol`.isMesosLevel { return max(1, maxConsecutiveFailures) }
        return maxConsecutiveFailures > 0 ? maxConsecutiveFailures + 1 : nil
    }

    enum CodingKeys: String, CodingKey {
        case `protocol`, path, portIndex, port, command, gracePeriodSeconds, intervalSeconds, timeoutSeconds
        case maxConsecutiveFailures, delaySeconds, ignoreHttp1xx
    }

    struct CommandValue: Codable { var value: String }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(`protocol`, forKey: .protocol)
        try container.encodeIfPresent(path, forKey: .path)
        try container.encodeIfPresent(portIndex, forKey: .portIndex)
        try container.encodeIfPresent(port, forKey: .port)
        try container.encodeIfPresent(command.map(CommandValue.init(value:)), forKey: .command)
        try container.encode(gracePeriodSeconds, forKey: .gracePeriodSeconds)
        try container.encode(intervalSeconds, forKey: .intervalSeconds)
        try container.encode(timeoutSeconds, forKey: .timeoutSeconds)
        try container.encode(maxConsecutiveFailures, forKey: .maxConsecutiveFailures)
        try container.encode(delaySeconds, forKey: .delaySeconds)
        if case .http = `protocol`.kind, !`protocol`.isMesosLevel { try container.encode(ignoreHttp1xx, forKey: .ignoreHttp1xx) }
    }

    public init(from decoder: any Decoder) throws {
        var reader = JSONReader()
        let check = reader.healthCheck(try JSONValue(from: decoder), at: "")
        guard let check, reader.violations.isEmpty else {
            let failure = ValidationFailure(kind: .invalidJSON, details: ValidationDetail.grouped(reader.violations))
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: failure.description))
        }
        self = check
    }
}
