import StrataCompute

/// Reads Marathon's app JSON field by field, as Marathon's generated RAML readers (Play JSON) do:
/// a field of the wrong type is `error.expected.jsnumber` (`jsstring`, `jsarray`, ...), a
/// whole-number field given a fraction `error.expected.int`, a missing required field
/// `error.path.missing`, a value past the schema's bounds `error.min` / `error.max` /
/// `error.minLength` / `error.maxLength` / `error.pattern`, an unknown enum value
/// `error.unknown.enum.literal`. Every violation is kept with its path (`/healthChecks(0)/path`);
/// unknown fields are ignored, as Play's readers ignore them.
struct JSONReader {
    var violations: [(path: String, error: String)] = []
    /// Rule violations met while reading (constraints' operators and values): Marathon's
    /// validators report them ("Object is not valid"), not its readers.
    var ruleViolations: [(path: String, error: String)] = []

    mutating func fail(_ path: String, _ error: String) { violations.append((path, error)) }

    /// The members of an object, or nil (with a violation) for anything else.
    mutating func object(_ value: JSONValue, at path: String) -> [String: JSONValue]? {
        if case .object(let members) = value { return members }
        fail(path.isEmpty ? "/" : path, "error.expected.jsobject")
        return nil
    }

    /// A member, with `null` taken as absent (Play's `readNullable`).
    func member(_ members: [String: JSONValue], _ key: String) -> JSONValue? {
        guard let value = members[key], value != .null else { return nil }
        return value
    }

    mutating func string(_ value: JSONValue?, at path: String, minLength: Int? = nil) -> String? {
        guard let value else { return nil }
        guard case .string(let text) = value else { return expected("jsstring", at: path) }
        if let minLength, text.count < minLength { fail(path, "error.minLength") }
        return text
    }

    mutating func double(_ value: JSONValue?, at path: String, minimum: Double? = nil, maximum: Double? = nil) -> Double? {
        guard let value else { return nil }
        guard case .number(let number) = value else { return expected("jsnumber", at: path) }
        if let minimum, number < minimum { fail(path, "error.min") }
        if let maximum, number > maximum { fail(path, "error.max") }
        return number
    }

    mutating func int(_ value: JSONValue?, at path: String, minimum: Int? = nil, maximum: Int? = nil) -> Int? {
        guard let value else { return nil }
        guard case .number(let number) = value else { return expected("jsnumber", at: path) }
        guard number == number.rounded(), abs(number) < 2_147_483_648 else {
            fail(path, "error.expected.int")
            return nil
        }
        let whole = Int(number)
        if let minimum, whole < minimum { fail(path, "error.min") }
        if let maximum, whole > maximum { fail(path, "error.max") }
        return whole
    }

    mutating func bool(_ value: JSONValue?, at path: String) -> Bool? {
        guard let value else { return nil }
        guard case .boolean(let flag) = value else { return expected("jsboolean", at: path) }
        return flag
    }

    mutating func array(_ value: JSONValue?, at path: String) -> [JSONValue]? {
        guard let value else { return nil }
        guard case .array(let elements) = value else { return expected("jsarray", at: path) }
        return elements
    }

    mutating func strings(_ value: JSONValue?, at path: String) -> [String]? {
        guard let elements = array(value, at: path) else { return nil }
        return elements.enumerated().compactMap { index, element in string(element, at: "\(path)(\(index))") }
    }

    mutating func stringMap(_ value: JSONValue?, at path: String) -> [String: String]? {
        guard let value else { return nil }
        guard case .object(let members) = value else { return expected("jsobject", at: path) }
        var result: [String: String] = [:]
        for (key, member) in members.sorted(by: { $0.key < $1.key }) {
            if let text = string(member, at: "\(path)/\(key)") { result[key] = text }
        }
        return result
    }

    mutating func enumeration<Value: RawRepresentable<String>>(_ type: Value.Type, _ value: JSONValue?, at path: String) -> Value? {
        guard let text = string(value, at: path) else { return nil }
        guard let parsed = Value(rawValue: text) else {
            fail(path, "error.unknown.enum.literal")
            return nil
        }
        return parsed
    }

    mutating func version(_ value: JSONValue?, at path: String) -> AppVersion? {
        guard let text = string(value, at: path) else { return nil }
        guard let version = AppVersion(parsing: text) else {
            fail(path, "error.expected.date.isoformat")
            return nil
        }
        return version
    }

    private mutating func expected<Value>(_ kind: String, at path: String) -> Value? {
        fail(path, "error.expected.\(kind)")
        return nil
    }

    // MARK: - Marathon's types

    mutating func app(_ json: JSONValue, at prefix: String = "", idRequired: Bool = true) -> AppDefinition? {
        guard let members = object(json, at: prefix) else { return nil }
        func path(_ key: String) -> String { "\(prefix)/\(key)" }
        let idText = string(member(members, "id"), at: path("id"), minLength: 1)
        if let idText, !idText.isEmpty, !PathId.isWellFormed(idText) { fail(path("id"), "error.pattern") }
        if idText == nil, member(members, "id") == nil, idRequired { fail(path("id"), "error.path.missing") }
        var app = AppDefinition(id: PathId(idText ?? ""))
        app.cmd = string(member(members, "cmd"), at: path("cmd"), minLength: 1)
        app.args = strings(member(members, "args"), at: path("args"))
        app.user = string(member(members, "user"), at: path("user"))
        app.cpus = double(member(members, "cpus"), at: path("cpus"), minimum: 0.001) ?? app.cpus
        app.mem = double(member(members, "mem"), at: path("mem"), minimum: 0) ?? app.mem
        app.disk = double(member(members, "disk"), at: path("disk"), minimum: 0) ?? app.disk
        app.instances = int(member(members, "instances"), at: path("instances"), minimum: 0) ?? app.instances
        app.env = stringMap(member(members, "env"), at: path("env")) ?? app.env
        app.labels = stringMap(member(members, "labels"), at: path("labels")) ?? app.labels
        app.container = member(members, "container").flatMap { container($0, at: path("container")) }
        if let ports = array(member(members, "portDefinitions"), at: path("portDefinitions")) {
            app.portDefinitions = ports.enumerated().compactMap { index, port in
                portDefinition(port, at: "\(path("portDefinitions"))(\(index))")
            }
        } else if let ports = array(member(members, "ports"), at: path("ports")) {
            // The deprecated `ports`: a list of numbers, each a port definition.
            app.portDefinitions = ports.enumerated().compactMap { index, port in
                int(port, at: "\(path("ports"))(\(index))", minimum: 0, maximum: 65535).map { PortDefinition(port: $0) }
            }
        }
        app.requirePorts = bool(member(members, "requirePorts"), at: path("requirePorts")) ?? false
        if let constraints = array(member(members, "constraints"), at: path("constraints")) {
            app.constraints = constraints.enumerated().compactMap { index, element in
                let constraintPath = "\(path("constraints"))(\(index))"
                return constraint(element, at: constraintPath).flatMap { appConstraint($0, at: constraintPath) }
            }
        }
        if let checks = array(member(members, "healthChecks"), at: path("healthChecks")) {
            app.healthChecks = checks.enumerated().compactMap { index, element in
                healthCheck(element, at: "\(path("healthChecks"))(\(index))")
            }
        }
        app.backoffSeconds = int(member(members, "backoffSeconds"), at: path("backoffSeconds"), minimum: 0) ?? app.backoffSeconds
        app.backoffFactor = double(member(members, "backoffFactor"), at: path("backoffFactor"), minimum: 1) ?? app.backoffFactor
        app.maxLaunchDelaySeconds =
            int(member(members, "maxLaunchDelaySeconds"), at: path("maxLaunchDelaySeconds"), minimum: 0) ?? app.maxLaunchDelaySeconds
        if let strategy = member(members, "upgradeStrategy"), let fields = object(strategy, at: path("upgradeStrategy")) {
            let strategyPath = path("upgradeStrategy")
            let minimum = double(member(fields, "minimumHealthCapacity"), at: "\(strategyPath)/minimumHealthCapacity", minimum: 0, maximum: 1)
            let maximum = double(member(fields, "maximumOverCapacity"), at: "\(strategyPath)/maximumOverCapacity", minimum: 0, maximum: 1)
            if member(fields, "minimumHealthCapacity") == nil { fail("\(strategyPath)/minimumHealthCapacity", "error.path.missing") }
            if member(fields, "maximumOverCapacity") == nil { fail("\(strategyPath)/maximumOverCapacity", "error.path.missing") }
            app.upgradeStrategy = UpgradeStrategy(minimumHealthCapacity: minimum ?? 1, maximumOverCapacity: maximum ?? 1)
        }
        if let dependencies = strings(member(members, "dependencies"), at: path("dependencies")) {
            for (index, dependency) in dependencies.enumerated() where !PathId.isWellFormed(dependency) {
                fail("\(path("dependencies"))(\(index))", "error.pattern")
            }
            app.dependencies = dependencies.map(PathId.init)
        }
        app.killSelection = enumeration(KillSelection.self, member(members, "killSelection"), at: path("killSelection")) ?? .youngestFirst
        app.version = version(member(members, "version"), at: path("version"))
        if let info = member(members, "versionInfo"), let fields = object(info, at: path("versionInfo")) {
            let scaling = version(member(fields, "lastScalingAt"), at: "\(path("versionInfo"))/lastScalingAt")
            let config = version(member(fields, "lastConfigChangeAt"), at: "\(path("versionInfo"))/lastConfigChangeAt")
            if let scaling, let config { app.versionInfo = AppDefinition.VersionInfo(lastScalingAt: scaling, lastConfigChangeAt: config) }
        }
        return app
    }

    mutating func container(_ json: JSONValue, at prefix: String) -> AppContainer? {
        guard let members = object(json, at: prefix) else { return nil }
        let kind = enumeration(AppContainer.Kind.self, member(members, "type"), at: "\(prefix)/type") ?? .docker
        var docker: AppContainer.Docker?
        if let dockerJSON = member(members, "docker"), let fields = object(dockerJSON, at: "\(prefix)/docker") {
            let image = string(member(fields, "image"), at: "\(prefix)/docker/image")
            if member(fields, "image") == nil { fail("\(prefix)/docker/image", "error.path.missing") }
            let forcePull = bool(member(fields, "forcePullImage"), at: "\(prefix)/docker/forcePullImage") ?? false
            docker = AppContainer.Docker(image: image ?? "", forcePullImage: forcePull)
        }
        return AppContainer(type: kind, docker: docker)
    }

    mutating func portDefinition(_ json: JSONValue, at prefix: String) -> PortDefinition? {
        guard let members = object(json, at: prefix) else { return nil }
        let port = int(member(members, "port"), at: "\(prefix)/port", minimum: 0, maximum: 65535) ?? 0
        let name = string(member(members, "name"), at: "\(prefix)/name")
        if let name, !Self.isPortName(name) { fail("\(prefix)/name", "error.pattern") }
        let portProtocol = string(member(members, "protocol"), at: "\(prefix)/protocol") ?? "tcp"
        if !PortDefinition.protocols.contains(portProtocol) { fail("\(prefix)/protocol", "error.unknown.enum.literal") }
        let labels = stringMap(member(members, "labels"), at: "\(prefix)/labels") ?? [:]
        return PortDefinition(port: port, protocol: portProtocol, name: name, labels: labels)
    }

    /// A constraint in Marathon's array form: 2 or 3 strings (the schema's `minItems` /
    /// `maxItems`); its operator and value are checked by `AppValidation`, after reading.
    mutating func constraint(_ json: JSONValue, at path: String) -> [String]? {
        guard let fields = strings(json, at: path) else { return nil }
        if fields.count < 2 { fail(path, "error.minLength") }
        if fields.count > 3 { fail(path, "error.maxLength") }
        return fields
    }

    /// Marathon's constraint rules (`SchedulingValidation.complyWithAppConstraintRules`), then
    /// StrataCompute's. `IS` is taken as `CLUSTER` with a value: on text attributes they agree.
    mutating func appConstraint(_ fields: [String], at path: String) -> Constraint? {
        guard fields.count == 2 || fields.count == 3 else { return nil }
        let value = fields.count == 3 ? fields[2] : nil
        func refuse(_ message: String) -> Constraint? {
            ruleViolations.append((path, message))
            return nil
        }
        guard !fields[0].isEmpty else { return refuse("illegal constraint specification") }
        let name = fields[1].uppercased()
        if name == "IS" {
            guard let value, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_/.-".contains($0)) }) else {
                return refuse("IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)")
            }
            return Constraint(field: fields[0], operator: .cluster, value: value)
        }
        guard let op = Constraint.Operator(rawValue: name) else {
            return refuse("operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS")
        }
        switch op {
        case .unique where value != nil: return refuse("UNIQUE does not accept a value")
        case .groupBy where value.map({ Int($0) == nil }) ?? false:
            return refuse("GROUP BY must define an integer value or else no value at all")
        case .maxPer where value.flatMap({ Int($0) }) == nil: return refuse("MAX_PER requires an integer value")
        case .like, .unlike:
            guard let value, !value.isEmpty else { return refuse("LIKE and UNLIKE require a non-empty, regular expression value") }
            if (try? Regex(value)) == nil { return refuse("is not a valid regular expression") }
        default: break
        }
        do {
            return try Constraint(fields: [fields[0], op.rawValue] + (value.map { [$0] } ?? []))
        } catch {
            return refuse(error.message)
        }
    }

    mutating func healthCheck(_ json: JSONValue, at prefix: String) -> HealthCheck? {
        guard let members = object(json, at: prefix) else { return nil }
        func path(_ key: String) -> String { "\(prefix)/\(key)" }
        var check = HealthCheck(
            protocol: enumeration(HealthCheck.ProtocolName.self, member(members, "protocol"), at: path("protocol")) ?? .http)
        check.path = string(member(members, "path"), at: path("path"))
        check.portIndex = int(member(members, "portIndex"), at: path("portIndex"), minimum: 0, maximum: 65535)
        check.port = int(member(members, "port"), at: path("port"), minimum: 0, maximum: 65535)
        if let command = member(members, "command"), let fields = object(command, at: path("command")) {
            check.command = string(member(fields, "value"), at: path("command") + "/value")
        }
        check.gracePeriodSeconds = int(member(members, "gracePeriodSeconds"), at: path("gracePeriodSeconds"), minimum: 0) ?? check.gracePeriodSeconds
        check.intervalSeconds = int(member(members, "intervalSeconds"), at: path("intervalSeconds"), minimum: 0) ?? check.intervalSeconds
        check.timeoutSeconds = int(member(members, "timeoutSeconds"), at: path("timeoutSeconds"), minimum: 0) ?? check.timeoutSeconds
        check.maxConsecutiveFailures =
            int(member(members, "maxConsecutiveFailures"), at: path("maxConsecutiveFailures"), minimum: 0) ?? check.maxConsecutiveFailures
        check.delaySeconds = int(member(members, "delaySeconds"), at: path("delaySeconds"), minimum: 0) ?? check.delaySeconds
        check.ignoreHttp1xx = bool(member(members, "ignoreHttp1xx"), at: path("ignoreHttp1xx")) ?? false
        // Marathon's normalization: HTTP kinds check `/` unless told otherwise, and a check
        // with neither port nor index uses the first port.
        if case .http = check.protocol.kind, check.path == nil { check.path = "/" }
        if check.protocol != .command, check.port == nil, check.portIndex == nil { check.portIndex = 0 }
        return check
    }

    /// Marathon's port name rule (`strings.Name`): lowercase letters, digits and inner hyphens.
    static func isPortName(_ name: String) -> Bool {
        guard name.count <= 63, let first = name.first, let last = name.last, first != "-", last != "-" else { return false }
        return name.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }
}
