import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import StrataApps
import StrataHTTP

/// `strata app`: long-running apps on the service launcher, through its Marathon REST API v2, in
/// the shapes of Marathon's and the DC/OS CLI's commands (docs/launcher.md, docs/cli.md).
struct AppCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app", abstract: "Long-running apps on the service launcher (Marathon's REST API v2).",
        discussion: "The launcher is --launcher URL, else STRATA_LAUNCHER, else http://127.0.0.1:8080.",
        subcommands: [
            AppDeployCommand.self, AppListCommand.self, AppShowCommand.self, AppScaleCommand.self, AppRestartCommand.self,
            AppRemoveCommand.self, AppTasksCommand.self, AppVersionsCommand.self,
        ])
}

struct LauncherOption: ParsableArguments {
    @Option(help: "The launcher's URL (default: STRATA_LAUNCHER, else http://127.0.0.1:8080).")
    var launcher: String?
}

/// What every command that starts a deployment takes.
struct DeploymentOptions: ParsableArguments {
    @Flag(help: "Cancel deployments that hold the app and go ahead (Marathon's ?force=true).")
    var force = false

    @Flag(help: "Wait until the deployment is over.")
    var wait = false

    @Option(help: "Seconds --wait waits at most.")
    var timeout: Double = 300

    func validate() throws {
        guard timeout > 0 && timeout <= 86400 else { throw ValidationError("--timeout must be more than 0 and at most 86400 seconds") }
    }

    var query: String { force ? "?force=true" : "" }
}

/// The launcher as the CLI reaches it: Marathon's JSON in and out, its error answers shown whole
/// (message, validation details, the deployments that lock an app).
enum LauncherAPI: HTTPServiceAPI {
    static let serviceName = "the launcher"
    static let environmentVariable = "STRATA_LAUNCHER"
    static let defaultURL = "http://127.0.0.1:8080"
    static let dialect = "Marathon's JSON"

    /// Marathon's error bodies as lines: the message; each validation detail as `PATH: error`;
    /// for an app locked by deployments, which ones and that `--force` cancels them.
    static func describeError(status: Int, body: [UInt8]) -> String {
        guard let error = try? JSONDecoder().decode(LauncherClient.MarathonError.self, from: Data(body)), let message = error.message else {
            return describeUnknownError(status: status, body: body)
        }
        if let deployments = error.deployments, !deployments.isEmpty {
            let ids = deployments.map(\.id).joined(separator: ", ")
            return "App is locked by one or more deployments: \(ids). Use --force to cancel them and go ahead."
        }
        switch error.details {
        case .text(let text)?: return "\(message): \(text)"
        case .list(let details)? where !details.isEmpty:
            return ([message] + details.flatMap { detail in detail.errors.map { "  \(detail.path): \($0)" } }).joined(separator: "\n")
        default: return message
        }
    }
}

/// The CLI's way to the launcher (`--launcher`, else `STRATA_LAUNCHER`, else http://127.0.0.1:8080).
typealias LauncherClient = HTTPServiceClient<LauncherAPI>

extension HTTPServiceClient where API == LauncherAPI {
    /// How often `--wait` looks at the launcher's deployments (it has no event stream yet).
    static var deploymentPollMilliseconds: Int { 250 }

    /// Runs a command's body with a client; an error prints as `strata app COMMAND: message` and exits 1.
    static func run(_ command: String, launcher: String?, _ body: (LauncherClient) async throws -> Void) async throws {
        try await run("app \(command)", url: launcher, body)
    }

    /// An error answer: `{"message":..}`, with `details` (a parser's message, or validation
    /// details by path) and `deployments` (those locking the app) when Marathon gives them.
    struct MarathonError: Decodable {
        enum Details: Decodable {
            case text(String)
            case list([ValidationDetail])

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let text = try? container.decode(String.self) {
                    self = .text(text)
                } else {
                    self = .list(try container.decode([ValidationDetail].self))
                }
            }
        }
        var message: String?
        var details: Details?
        var deployments: [DeploymentId]?
    }

    struct DeploymentId: Decodable { var id: String }

    /// The answer of a change that starts a deployment.
    struct DeploymentReply: Decodable {
        var deploymentId: String
        var version: String
    }

    /// Prints what a change started and, with `--wait`, waits until its deployment has left
    /// `/v2/deployments` (it finished, or another change cancelled it); past `--timeout` it
    /// fails naming the deployment, which goes on.
    func follow(_ reply: DeploymentReply, doing action: String, options: DeploymentOptions) async throws {
        print("\(action): deployment \(reply.deploymentId) (version \(reply.version))")
        guard options.wait else { return }
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int64(options.timeout * 1000))
        while true {
            let deployments: [DeploymentId] = try await get("/v2/deployments")
            if !deployments.contains(where: { $0.id == reply.deploymentId }) { break }
            guard ContinuousClock.now < deadline else {
                throw CLIError(
                    "deployment \(reply.deploymentId) is still running after \(formatNumber(options.timeout)) s "
                        + "(strata app ls shows it; a change with --force cancels it)")
            }
            try await Task.sleep(for: .milliseconds(Self.deploymentPollMilliseconds))
        }
        let elapsed = (ContinuousClock.now - start).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        print("deployment \(reply.deploymentId) done in \(String(format: "%.1f", seconds)) s")
    }

    /// The API path of an app: `/v2/apps/shop/web` (ids are made absolute, as the launcher reads them).
    static func appPath(_ id: String, _ suffix: String = "") -> String {
        let canonical = PathId(id).canonical().description
        return "/v2/apps" + (canonical.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? canonical) + suffix
    }
}

/// `1`, `0.5`, `128`: whole numbers without a fraction.
func formatNumber(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
}

struct AppDeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: "Create or update an app from its Marathon JSON definition (PUT /v2/apps/{id}).",
        discussion: """
            The file is the app's whole definition: a field left out takes Marathon's default, whatever the app had \
            before. A changed definition rolls out as a deployment; an unchanged one does nothing.
            """)

    @OptionGroup var target: LauncherOption
    @OptionGroup var deployment: DeploymentOptions

    @Argument(help: "The app definition (JSON), or - for standard input.")
    var file: String

    func run() async throws {
        try await LauncherClient.run("deploy", launcher: target.launcher) { client in
            let (id, body) = try Self.readDefinition(file)
            let path = LauncherClient.appPath(id) + "?partialUpdate=false" + (deployment.force ? "&force=true" : "")
            let reply: LauncherClient.DeploymentReply = try client.decode(try await client.call(.PUT, path, body: body), path: path)
            try await client.follow(reply, doing: "deploying \(id)", options: deployment)
        }
    }

    /// The definition's bytes and its app id; a file that cannot be sent is refused here, before
    /// any request: unreadable, not JSON, not an object, or without an id to put it at.
    static func readDefinition(_ file: String) throws -> (id: String, body: [UInt8]) {
        let name = file == "-" ? "standard input" : file
        let (members, bytes) = try readJSONObject(
            file, for: LauncherAPI.serviceName, notAnObject: #"an app definition: that is a JSON object such as {"id": "/web", "cmd": "..."}"#)
        guard let idValue = members["id"] else { throw CLIError(#"\#(name): the app has no "id" (a path such as "/web")"#) }
        guard let id = idValue as? String else { throw CLIError(#"\#(name): "id" must be a string (a path such as "/web")"#) }
        let canonical = PathId(id).canonical()
        guard !canonical.segments.isEmpty else { throw CLIError(#"\#(name): "id" must name an app (a path such as "/web")"#) }
        return (canonical.description, bytes)
    }
}

/// An app as `GET /v2/apps` lists it: what the table shows.
struct AppSummary: Decodable {
    struct Container: Decodable {
        struct Docker: Decodable { var image: String? }
        var docker: Docker?
    }
    var id: String
    var instances: Double?
    var cpus: Double?
    var mem: Double?
    var cmd: String?
    var args: [String]?
    var container: Container?
    var healthChecks: [JSONValue]?
    var tasksRunning: Double?
    var tasksHealthy: Double?
    var deployments: [LauncherClient.DeploymentId]?

    /// The command, else the arguments; an image in brackets before it.
    var commandText: String {
        let command = cmd ?? args?.joined(separator: " ")
        let image = container?.docker?.image.map { "[\($0)]" }
        return [image, command].compactMap { $0 }.joined(separator: " ")
    }
}

struct AppListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List apps: instances running of wanted, health, resources, deployments.")

    @OptionGroup var target: LauncherOption

    @Flag(help: "Print machine-readable JSON (the apps as the launcher shows them).")
    var json = false

    func run() async throws {
        try await LauncherClient.run("ls", launcher: target.launcher) { client in
            let bytes = try await client.call(.GET, "/v2/apps")
            if json {
                struct Apps: Decodable { var apps: [JSONValue] }
                let apps: Apps = try client.decode(bytes, path: "/v2/apps")
                print(try JSONOutput.encode(apps.apps))
                return
            }
            struct Apps: Decodable { var apps: [AppSummary] }
            let apps: Apps = try client.decode(bytes, path: "/v2/apps")
            print(pad("ID", 24) + pad("INSTANCES", 10) + pad("HEALTHY", 8) + pad("CPUS", 6) + pad("MEM", 7) + pad("DEPLOYMENTS", 38) + "CMD")
            for app in apps.apps {
                let instances = "\(formatNumber(app.tasksRunning ?? 0))/\(formatNumber(app.instances ?? 0))"
                let healthy = (app.healthChecks ?? []).isEmpty ? "-" : formatNumber(app.tasksHealthy ?? 0)
                let deployments = (app.deployments ?? []).map(\.id).joined(separator: ",")
                print(pad(app.id, 24) + pad(instances, 10) + pad(healthy, 8) + pad(app.cpus.map(formatNumber) ?? "-", 6)
                    + pad(app.mem.map(formatNumber) ?? "-", 7) + pad(deployments.isEmpty ? "-" : deployments, 38) + app.commandText)
            }
        }
    }
}

struct AppShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print an app's definition as JSON, with its task counts and deployments (or a stored version).")

    @OptionGroup var target: LauncherOption

    @Argument(help: "The app's id (/web).")
    var id: String

    @Option(help: "A stored version (strata app versions ID lists them).")
    var version: String?

    func run() async throws {
        try await LauncherClient.run("show", launcher: target.launcher) { client in
            if let version {
                let encoded = version.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? version
                let app: JSONValue = try await client.get(LauncherClient.appPath(id, "/versions/" + encoded))
                print(try JSONOutput.encode(app))
            } else {
                struct Reply: Decodable { var app: JSONValue }
                let reply: Reply = try await client.get(LauncherClient.appPath(id))
                print(try JSONOutput.encode(reply.app))
            }
        }
    }
}

struct AppScaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale", abstract: "Change how many instances of an app run (PUT /v2/apps/{id} {\"instances\": N}).")

    @OptionGroup var target: LauncherOption
    @OptionGroup var deployment: DeploymentOptions

    @Argument(help: "The app's id (/web).")
    var id: String

    @Argument(help: "How many instances.")
    var instances: Int

    func validate() throws {
        guard instances >= 0 else { throw ValidationError("the number of instances must be 0 or more") }
    }

    func run() async throws {
        try await LauncherClient.run("scale", launcher: target.launcher) { client in
            // A PUT to an unknown id would create an app: say it does not exist instead.
            _ = try await client.call(.GET, LauncherClient.appPath(id))
            let path = LauncherClient.appPath(id) + deployment.query
            let body = Array(try JSONEncoder().encode(["instances": instances]))
            let reply: LauncherClient.DeploymentReply = try client.decode(try await client.call(.PUT, path, body: body), path: path)
            try await client.follow(reply, doing: "scaling \(PathId(id).canonical()) to \(instances)", options: deployment)
        }
    }
}

struct AppRestartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart", abstract: "Replace every instance of an app, rolling as its upgradeStrategy allows.")

    @OptionGroup var target: LauncherOption
    @OptionGroup var deployment: DeploymentOptions

    @Argument(help: "The app's id (/web).")
    var id: String

    func run() async throws {
        try await LauncherClient.run("restart", launcher: target.launcher) { client in
            let path = LauncherClient.appPath(id, "/restart") + deployment.query
            let reply: LauncherClient.DeploymentReply = try client.decode(try await client.call(.POST, path), path: path)
            try await client.follow(reply, doing: "restarting \(PathId(id).canonical())", options: deployment)
        }
    }
}

struct AppRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an app: it is gone at once; a deployment kills its instances.")

    @OptionGroup var target: LauncherOption
    @OptionGroup var deployment: DeploymentOptions

    @Argument(help: "The app's id (/web).")
    var id: String

    func run() async throws {
        try await LauncherClient.run("rm", launcher: target.launcher) { client in
            let path = LauncherClient.appPath(id) + deployment.query
            let reply: LauncherClient.DeploymentReply = try client.decode(try await client.call(.DELETE, path), path: path)
            try await client.follow(reply, doing: "removing \(PathId(id).canonical())", options: deployment)
        }
    }
}

struct AppTasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tasks", abstract: "List an app's tasks: where each runs, its ports, state and health.")

    @OptionGroup var target: LauncherOption

    @Argument(help: "The app's id (/web).")
    var id: String

    @Flag(help: "Print machine-readable JSON (the tasks as the launcher shows them).")
    var json = false

    func run() async throws {
        try await LauncherClient.run("tasks", launcher: target.launcher) { client in
            let path = LauncherClient.appPath(id, "/tasks")
            let bytes = try await client.call(.GET, path)
            if json {
                struct Tasks: Decodable { var tasks: [JSONValue] }
                let tasks: Tasks = try client.decode(bytes, path: path)
                print(try JSONOutput.encode(tasks.tasks))
                return
            }
            struct TaskRow: Decodable {
                struct HealthResult: Decodable { var alive: Bool }
                var id: String
                var host: String?
                var ports: [Int]?
                var state: String
                var startedAt: String?
                var healthCheckResults: [HealthResult]?
            }
            struct Tasks: Decodable { var tasks: [TaskRow] }
            let tasks: Tasks = try client.decode(bytes, path: path)
            print(pad("TASK", 32) + pad("HOST", 16) + pad("PORTS", 14) + pad("STATE", 14) + pad("HEALTHY", 8) + "STARTED")
            for task in tasks.tasks {
                let ports = (task.ports ?? []).map(String.init).joined(separator: ",")
                let results = task.healthCheckResults ?? []
                let healthy = results.isEmpty ? "-" : results.allSatisfy(\.alive) ? "yes" : "no"
                print(pad(task.id, 32) + pad(task.host ?? "-", 16) + pad(ports.isEmpty ? "-" : ports, 14) + pad(task.state, 14)
                    + pad(healthy, 8) + (task.startedAt ?? "-"))
            }
        }
    }
}

struct AppVersionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "versions", abstract: "List an app's stored versions, newest first (strata app show ID --version V prints one).")

    @OptionGroup var target: LauncherOption

    @Argument(help: "The app's id (/web).")
    var id: String

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    func run() async throws {
        try await LauncherClient.run("versions", launcher: target.launcher) { client in
            struct Versions: Decodable { var versions: [String] }
            let reply: Versions = try await client.get(LauncherClient.appPath(id, "/versions"))
            if json {
                print(try JSONOutput.encode(reply.versions))
            } else {
                for version in reply.versions { print(version) }
            }
        }
    }
}
