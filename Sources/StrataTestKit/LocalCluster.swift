import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StrataCluster
import StrataAgent
import StrataClient
import StrataMaster
import StrataCronService
import StrataLauncher
import StrataRegistry
import StrataCore
import StrataDataNode
import StrataNameNode
import StrataWebHDFS

/// A name node and data nodes in this process, on loopback ports chosen by the system, with
/// their data in a directory: a `LocalClusterService` run in its own service group, with the
/// start-and-shut-down handle tests want.
public final class LocalCluster: Sendable {
    public typealias Options = LocalClusterService.Options

    public let directory: String
    public let group: MultiThreadedEventLoopGroup
    public let nameNode: NameNode
    public let dataNodes: [DataNode]
    public let nameNodePort: Int
    /// WebHDFS and `/metrics` on the name node.
    public let nameNodeHTTP: NameNodeWebHDFS
    /// WebHDFS data side and `/metrics` on each data node, in `dataNodes` order.
    public let dataNodeHTTP: [DataNodeWebHDFS]
    /// The master and agents, when started with `options.compute`.
    public let master: Master?
    public let masterPort: Int?
    public let agents: [Agent]
    /// The image registry and its port, when started with `options.registry`.
    public let registry: Registry?
    public let registryPort: Int?
    /// The service launcher and its port, when started with `options.launcher`.
    public let launcher: Launcher?
    public let launcherPort: Int?
    /// The cron service and its port, when started with `options.cron`.
    public let cron: CronScheduler?
    public let cronPort: Int?
    private let services: ServiceGroup
    private let running: Task<Void, any Error>

    /// The name node's HTTP port (WebHDFS, HDFS default 9870).
    public let nameNodeHTTPPort: Int

    /// Starts (or restarts, on an existing directory) a cluster and waits until every data node
    /// has registered.
    public static func start(directory: String, options: Options = Options()) async throws -> LocalCluster {
        let service = LocalClusterService(directory: directory, options: options)
        var logger = Logger(label: "strata")
        logger.logLevel = options.logLevel
        let services = ServiceGroup(configuration: .init(services: [service], logger: logger))
        // Tests need a handle that outlives the call that starts the cluster; `shutdown` ends
        // this task and waits for it.
        let running = Task { try await services.run() }
        let cluster: LocalClusterService.Running
        do {
            cluster = try await service.ready.wait()
        } catch {
            await services.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        return LocalCluster(cluster: cluster, services: services, running: running)
    }

    private init(cluster: LocalClusterService.Running, services: ServiceGroup, running: Task<Void, any Error>) {
        directory = cluster.directory
        group = cluster.group
        nameNode = cluster.nameNode
        dataNodes = cluster.dataNodes
        nameNodePort = cluster.nameNodePort
        nameNodeHTTP = cluster.nameNodeHTTP
        nameNodeHTTPPort = cluster.nameNodeHTTPPort
        dataNodeHTTP = cluster.dataNodeHTTP
        master = cluster.master
        masterPort = cluster.masterPort
        agents = cluster.agents
        registry = cluster.registry
        registryPort = cluster.registryPort
        launcher = cluster.launcher
        launcherPort = cluster.launcherPort
        cron = cluster.cron
        cronPort = cluster.cronPort
        self.services = services
        self.running = running
    }

    /// A client of this cluster acting as `user`.
    public func client(user: String = "strata") -> DFSClient {
        var configuration = DFSClientConfiguration(user: user)
        configuration.nameNodePort = nameNodePort
        return DFSClient(configuration: configuration, group: group)
    }

    /// Waits until `count` data nodes are live and the name node is out of safe mode.
    public func waitForDataNodes(_ count: Int, timeoutSeconds: Double = 30) async throws {
        let client = self.client(user: "strata")
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if let nodes = try? await client.datanodeReport(), nodes.filter({ $0.state == "live" }).count >= count,
                let inSafeMode = try? await client.safeMode("get"), !inSafeMode
            {
                await client.close()
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await client.close()
        throw ClusterError(message: "data nodes did not all register within \(timeoutSeconds) s")
    }

    /// Starts a cluster in a fresh temporary directory (named with `prefix`), runs `body`, and
    /// always shuts the cluster down and removes the directory, so a failing test leaves no
    /// threads or files behind.
    public static func withTemporary<Result>(
        prefix: String = "strata-cluster-",
        _ configure: (inout Options) -> Void = { _ in },
        _ body: (LocalCluster) async throws -> Result
    ) async throws -> Result {
        let directory = NSTemporaryDirectory() + prefix + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = Options()
        configure(&options)
        let cluster = try await LocalCluster.start(directory: directory, options: options)
        do {
            let result = try await body(cluster)
            await cluster.shutdown()
            return result
        } catch {
            await cluster.shutdown()
            throw error
        }
    }

    /// Stops the cluster gracefully (data nodes, then the name node, then its threads) and
    /// waits until everything it started has stopped.
    public func shutdown() async {
        await services.triggerGracefulShutdown()
        _ = try? await running.value
    }
}

public struct ClusterError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
