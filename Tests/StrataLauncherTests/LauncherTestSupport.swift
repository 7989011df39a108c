import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import StrataClient
import StrataCluster
import StrataCompute
import StrataCore
import StrataLauncher
import StrataTestKit
import Testing

/// The user tasks run as in tests: the agent (root) refuses root tasks, and `nobody` exists on
/// every Debian host.
let taskUser = "nobody"

/// A local cluster with a master, an agent beside each data node and (unless `launcher` is
/// false) the service launcher, its instances running as `nobody`.
func withLauncherCluster<Result>(launcher: Bool = true, _ body: (LocalCluster) async throws -> Result) async throws -> Result {
    try await LocalCluster.withTemporary(prefix: "strata-launcher-", { options in
        options.compute = true
        options.launcher = launcher
        options.launcherTaskUser = taskUser
        options.agentResources = Resources(cpus: 4, memMB: 4096)
        options.agentHeartbeatIntervalMs = 200
    }, body)
}

/// A launcher run on its own against a cluster's master, to stop and start again.
enum StandaloneLauncher {
    static func start(_ cluster: LocalCluster, snapshotEveryRecords: Int = 10_000) async throws -> StandaloneService<LauncherService> {
        var configuration = LauncherConfiguration(masterAddress: "127.0.0.1:\(cluster.masterPort!)", taskUser: taskUser)
        configuration.port = 0
        configuration.snapshotEveryRecords = snapshotEveryRecords
        var dfs = DFSClientConfiguration(user: "strata")
        dfs.nameNodePort = cluster.nameNodePort
        var logger = Logger(label: "launcher-test")
        logger.logLevel = .warning
        let launcher = Launcher(configuration: configuration, dfs: dfs, group: cluster.group, logger: logger)
        let service = LauncherService(launcher: launcher, group: cluster.group, logger: logger)
        return try await StandaloneService.start(service, ready: service.ready, logger: logger)
    }
}

func call(_ port: Int, _ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> HTTPReply {
    try await httpCall(port, method, path, body: body)
}

/// Polls `probe` (HTTP state) every 100 ms until it gives a value, within `seconds`.
func eventually<Value>(_ what: String, seconds: Double = 60, _ probe: () async throws -> Value?) async throws -> Value {
    let clock = SystemClock()
    let deadline = clock.now + .seconds(seconds)
    var last: (any Error)?
    while clock.now < deadline {
        do {
            if let value = try await probe() { return value }
        } catch {
            last = error
        }
        try await clock.sleep(milliseconds: 100)
    }
    throw TestFailure(message: "\(what) did not happen within \(seconds) s" + (last.map { " (last error: \($0))" } ?? ""))
}

struct TestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The app as `GET /v2/apps/{id}` shows it.
func app(_ port: Int, _ id: String) async throws -> [String: Any] {
    let reply = try await call(port, .GET, "/v2/apps\(id)")
    return reply.object["app"] as? [String: Any] ?? [:]
}

/// The app once `count` instances run and are healthy and no deployment is left: its tasks.
func waitHealthy(_ port: Int, _ id: String, count: Int) async throws -> [[String: Any]] {
    try await eventually("\(count) healthy instances of \(id)") {
        let app = try await app(port, id)
        let tasks = app["tasks"] as? [[String: Any]] ?? []
        guard app["tasksHealthy"] as? Int == count, app["tasksRunning"] as? Int == count, tasks.count == count,
              (app["deployments"] as? [Any])?.isEmpty == true
        else { return nil }
        return tasks
    }
}

/// Calls the master's HTTP API as `nobody`.
func callMaster(_ cluster: LocalCluster, _ method: HTTPMethod, _ path: String) async throws -> HTTPReply {
    let separator = path.contains("?") ? "&" : "?"
    return try await call(cluster.masterPort!, method, path + "\(separator)user.name=\(taskUser)")
}

/// The master's service tasks the launcher started.
func masterServices(_ cluster: LocalCluster, activeOnly: Bool) async throws -> ComputeAPI.ServiceList {
    let reply = try await callMaster(cluster, .GET, "/api/v1/services?label=strata.launcher=launcher" + (activeOnly ? "&active=true" : ""))
    return try JSONDecoder().decode(ComputeAPI.ServiceList.self, from: Data(reply.body.utf8))
}

/// A home for the task user, as HDFS gives each user /user/NAME.
func makeHome(_ cluster: LocalCluster) async throws {
    let admin = cluster.client()
    try await admin.mkdirs("/user/\(taskUser)")
    try await admin.setOwner("/user/\(taskUser)", owner: taskUser, group: taskUser)
    await admin.close()
}

let webApp = """
    {"id":"/web","cmd":"exec python3 -m http.server $PORT0","instances":2,"cpus":0.1,"mem":64,
     "healthChecks":[{"protocol":"HTTP","path":"/","intervalSeconds":1,"gracePeriodSeconds":5,"timeoutSeconds":2,"maxConsecutiveFailures":3}]}
    """
