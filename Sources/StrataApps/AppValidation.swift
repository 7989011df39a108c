extension AppDefinition {
    /// Reads a definition from a request body: unparsable JSON, then field types and bounds
    /// ("Invalid JSON"), then Marathon's rules ("Object is not valid"), each as Marathon answers.
    /// A relative id is taken from `base`; `id` is what a `PUT /v2/apps/{id}` names, used when
    /// the body has none.
    public static func parse(_ body: some Collection<UInt8>, base: PathId = .root, id: PathId? = nil) throws(ValidationFailure) -> AppDefinition {
        try read(JSONValue.parse(body), base: base, id: id).get()
    }

    /// `parse` on JSON already parsed.
    public static func read(_ json: JSONValue, base: PathId = .root, id: PathId? = nil) -> Result<AppDefinition, ValidationFailure> {
        read(json, base: base, id: id, pathPrefix: "")
    }

    static func read(_ json: JSONValue, base: PathId, id: PathId?, pathPrefix: String) -> Result<AppDefinition, ValidationFailure> {
        var reader = JSONReader()
        guard var app = reader.app(json, at: pathPrefix, idRequired: id == nil), reader.violations.isEmpty else {
            return .failure(ValidationFailure(kind: .invalidJSON, details: ValidationDetail.grouped(reader.violations)))
        }
        if let id, app.id.segments.isEmpty { app.id = id }
        app.id = app.id.canonical(base: base)
        app.dependencies = app.dependencies.map { $0.canonical(base: app.id.parent) }
        let violations = reader.ruleViolations + app.ruleViolations(pathPrefix: pathPrefix)
        guard violations.isEmpty else {
            return .failure(ValidationFailure(kind: .notValid, details: ValidationDetail.grouped(violations)))
        }
        return .success(app)
    }

    /// Marathon's validators (`AppValidation.validateCanonicalAppAPI`, `AppDefinition
    /// .validAppDefinition`) on a definition that has been read: nothing when it is valid.
    public func validationDetails() -> [ValidationDetail] {
        ValidationDetail.grouped(ruleViolations(pathPrefix: ""))
    }

    func ruleViolations(pathPrefix prefix: String) -> [(path: String, error: String)] {
        var violations: [(path: String, error: String)] = []
        func fail(_ path: String, _ error: String) {
            violations.append((prefix.isEmpty ? path : (path == "/" ? prefix : prefix + path), error))
        }

        for error in id.violations() { fail("/id", error) }
        for (index, dependency) in dependencies.enumerated() {
            for error in dependency.violations() { fail("/dependencies(\(index))", error) }
        }

        let hasCmd = !(cmd ?? "").isEmpty
        let hasArgs = !(args ?? []).isEmpty
        let hasContainer = container.map { $0.docker != nil || $0.type == .mesos } ?? false
        if !((hasCmd != hasArgs) || (!(hasCmd && hasArgs) && hasContainer)) {
            fail("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
        }
        // Marathon refuses a one-character cmd with this message too (`s.length() > 1`).
        if let cmd, cmd.count <= 1 { fail("/", "must not be an empty string") }

        if let container {
            if let docker = container.docker {
                if docker.image.isEmpty { fail("/container/docker/image", "must not be empty") }
            } else if container.type == .docker {
                fail("/container/docker", "not defined")
            }
        }

        let fixedPorts = portDefinitions.map(\.port).filter { $0 != 0 }
        if Set(fixedPorts).count != fixedPorts.count { fail("/portDefinitions", "Ports must be unique.") }
        let names = portDefinitions.compactMap(\.name)
        if Set(names).count != names.count { fail("/portDefinitions", "Port names must be unique.") }

        for (index, check) in healthChecks.enumerated() {
            let usesAppPort = check.command == nil && [.http, .https, .tcp].contains(check.protocol)
            let addressesAPort: Bool =
                if let portIndex = check.portIndex { portDefinitions.indices.contains(portIndex) } else {
                    check.port != nil || portDefinitions.count == 1
                }
            if usesAppPort, !addressesAPort {
                fail("/healthChecks(\(index))", "Health check port indices must address an element of the ports array or container port mappings.")
            }
            if check.protocol == .command, (check.command ?? "").isEmpty {
                fail("/healthChecks(\(index))/command", "not defined")
            }
        }
        let mesosChecks = healthChecks.count { $0.protocol.isMesosLevel && $0.protocol != .command }
        if mesosChecks > 1 { fail("/", "AppDefinition can contain at most one Mesos health check") }
        return violations
    }
}

/// A group of apps and groups (`PUT /v2/groups`): `{"id":"/shop","apps":[...],"groups":[...]}`.
/// Relative ids inside are resolved against the enclosing group's.
public struct AppGroup: Sendable, Hashable, Codable {
    public var id: PathId
    public var apps: [AppDefinition]
    public var groups: [AppGroup]
    public var dependencies: [PathId]
    /// Whether the JSON named `apps` / `groups`: an update replaces only what it names
    /// (Marathon's `UpdateGroupStructureOp`).
    public var appsGiven: Bool
    public var groupsGiven: Bool
    /// `scaleBy`: scale every app in the group by this factor instead of changing its structure.
    public var scaleBy: Double?
    /// `version`: roll the group back to this version instead.
    public var version: String?

    public init(
        id: PathId, apps: [AppDefinition] = [], groups: [AppGroup] = [], dependencies: [PathId] = [], appsGiven: Bool = true,
        groupsGiven: Bool = true, scaleBy: Double? = nil, version: String? = nil
    ) {
        self.id = id
        self.apps = apps
        self.groups = groups
        self.dependencies = dependencies
        self.appsGiven = appsGiven
        self.groupsGiven = groupsGiven
        self.scaleBy = scaleBy
        self.version = version
    }

    /// Every app of the group and of the groups below it, in the order given.
    public var allApps: [AppDefinition] { apps + groups.flatMap(\.allApps) }

    public static func parse(_ body: some Collection<UInt8>, base: PathId = .root) throws(ValidationFailure) -> AppGroup {
        try read(JSONValue.parse(body), base: base).get()
    }

    /// Reads a group; the first kind of failure met anywhere in it is the answer, with every
    /// detail of that kind (paths like `/apps(0)/cmd`, `/groups(1)/apps(0)/id`).
    public static func read(_ json: JSONValue, base: PathId = .root) -> Result<AppGroup, ValidationFailure> {
        var invalidJSON: [ValidationDetail] = []
        var notValid: [ValidationDetail] = []
        let group = read(json, base: base, prefix: "", invalidJSON: &invalidJSON, notValid: &notValid)
        if !invalidJSON.isEmpty { return .failure(ValidationFailure(kind: .invalidJSON, details: invalidJSON)) }
        if !notValid.isEmpty { return .failure(ValidationFailure(kind: .notValid, details: notValid)) }
        return .success(group!)
    }

    private static func read(
        _ json: JSONValue, base: PathId, prefix: String, invalidJSON: inout [ValidationDetail], notValid: inout [ValidationDetail]
    ) -> AppGroup? {
        var reader = JSONReader()
        guard let members = reader.object(json, at: prefix) else {
            invalidJSON += ValidationDetail.grouped(reader.violations)
            return nil
        }
        let idText = reader.string(reader.member(members, "id"), at: "\(prefix)/id", minLength: 1)
        if let idText, !PathId.isWellFormed(idText) { reader.fail("\(prefix)/id", "error.pattern") }
        if reader.member(members, "id") == nil { reader.fail("\(prefix)/id", "error.path.missing") }
        let id = PathId(idText ?? "").canonical(base: base)
        let appsJSON = reader.array(reader.member(members, "apps"), at: "\(prefix)/apps") ?? []
        let groupsJSON = reader.array(reader.member(members, "groups"), at: "\(prefix)/groups") ?? []
        let dependencies = (reader.strings(reader.member(members, "dependencies"), at: "\(prefix)/dependencies") ?? [])
            .map { PathId($0).canonical(base: id.parent) }
        let scaleBy = reader.double(reader.member(members, "scaleBy"), at: "\(prefix)/scaleBy", minimum: 0)
        let version = reader.string(reader.member(members, "version"), at: "\(prefix)/version")
        invalidJSON += ValidationDetail.grouped(reader.violations)

        var apps: [AppDefinition] = []
        for (index, appJSON) in appsJSON.enumerated() {
            let appPrefix = "\(prefix)/apps(\(index))"
            switch AppDefinition.read(appJSON, base: id, id: nil, pathPrefix: appPrefix) {
            case .success(let app):
                if app.id.parent != id {
                    notValid += ValidationDetail.grouped([("\(appPrefix)/id", "Identifier is not child of '\(id)'")])
                }
                apps.append(app)
            case .failure(let failure):
                if failure.kind == .notValid { notValid += failure.details } else { invalidJSON += failure.details }
            }
        }
        var groups: [AppGroup] = []
        for (index, groupJSON) in groupsJSON.enumerated() {
            let child = read(groupJSON, base: id, prefix: "\(prefix)/groups(\(index))", invalidJSON: &invalidJSON, notValid: &notValid)
            if let child {
                if child.id.parent != id {
                    notValid += ValidationDetail.grouped([("\(prefix)/groups(\(index))/id", "Identifier is not child of '\(id)'")])
                }
                groups.append(child)
            }
        }
        return AppGroup(
            id: id, apps: apps, groups: groups, dependencies: dependencies, appsGiven: reader.member(members, "apps") != nil,
            groupsGiven: reader.member(members, "groups") != nil, scaleBy: scaleBy, version: version)
    }
}
