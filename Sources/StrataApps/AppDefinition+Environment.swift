extension AppDefinition {
    /// The environment an instance runs with, as Marathon builds it (`TaskBuilder
    /// .taskContextEnv`, `EnvironmentHelper.portsEnv`/`labelsToEnvVars`): the app's `env`, then
    /// `PORT0`..`PORTn`, `PORT` (the first), `PORTS`, `PORT_<port>` for each, `PORT_<NAME>` for
    /// named ones, `HOST`, `MESOS_TASK_ID`, `MARATHON_APP_ID`, `MARATHON_APP_VERSION`,
    /// `MARATHON_APP_DOCKER_IMAGE`, `MARATHON_APP_RESOURCE_*` and the labels. `ports` are the
    /// host ports the instance was given, in `portDefinitions` order.
    public func taskEnvironment(instanceId: String, host: String, ports: [Int]) -> [String: String] {
        var environment: [String: String] = [:]
        for (index, port) in ports.enumerated() {
            environment["PORT\(index)"] = String(port)
            let requested = portDefinitions.indices.contains(index) ? portDefinitions[index].port : 0
            environment["PORT_\(requested == 0 ? port : requested)"] = String(port)
            if portDefinitions.indices.contains(index), let name = portDefinitions[index].name {
                environment["PORT_\(name.uppercased())"] = String(port)
            }
        }
        if let first = ports.first {
            environment["PORT"] = String(first)
            environment["PORTS"] = ports.map(String.init).joined(separator: ",")
        }
        environment["HOST"] = host
        environment["MESOS_TASK_ID"] = instanceId
        environment["MARATHON_APP_ID"] = id.description
        environment["MARATHON_APP_VERSION"] = version?.description
        environment["MARATHON_APP_DOCKER_IMAGE"] = container?.docker?.image
        environment["MARATHON_APP_RESOURCE_CPUS"] = String(cpus)
        environment["MARATHON_APP_RESOURCE_MEM"] = String(mem)
        environment["MARATHON_APP_RESOURCE_DISK"] = String(disk)
        var labelNames: [String] = []
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            let name = Self.environmentName(key)
            labelNames.append(name)
            environment["MARATHON_APP_LABEL_\(name)"] = value
        }
        environment["MARATHON_APP_LABELS"] = labelNames.joined(separator: " ")
        // The app's own variables win, as Mesos puts the command's environment last.
        return environment.merging(env) { $1 }
    }

    /// A label's key as a variable name: runs of other characters become `_`, letters upper case.
    static func environmentName(_ key: String) -> String {
        var name = ""
        var inRun = false
        for character in key {
            if character.isASCII, character.isLetter || character.isNumber || character == "_" {
                name.append(contentsOf: character.uppercased())
                inRun = false
            } else if !inRun {
                name.append("_")
                inRun = true
            }
        }
        return name
    }
}
