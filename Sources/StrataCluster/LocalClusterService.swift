import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StrataAgent
import StrataClient
import StrataCompute
import StrataCore
import StrataDataNode
import StrataMaster
import StrataCronService
import StrataLauncher
import StrataRegistry
import StrataNameNode
import StrataWebHDFS
import Synchronization

/// A name node and data nodes in this process on loopback, each with its HTTP server, their
/// data under one directory: what `strata cluster up` runs, and what tests start.
///
/// `run` owns everything it starts, event loop threads included: it composes a
/// `NameNodeService` and one `DataNodeService` per node in a service group, reports `ready`
/// once every data node has registered and the name node is out of safe mode, and on graceful
/// shutdown stops the data nodes (last first), then the name node, then the threads, before it
/// returns. Run again on the same directory, it brings back every file.
public final class LocalClusterService: Service, Sendable {
    public struct Options: Sendable {
        /// Data nodes to start; 0 gives a name node alone (to test what writers see without any).
        public var dataNodes = 3
        public var superuser = "strata"
        public var heartbeatIntervalMs: Int64 = 1_000
        public var heartbeatTimeoutMs: Int64 = 30_000
        /// The name node's RPC port (0: a free one).
        public var rpcPort = 0
        /// The name node's HTTP port (0: a free one).
        public var httpPort = 0
        /// The first data node's HTTP port, the next ones following it (0: free ones).
        public var dataNodeHTTPPort = 0
        public var monitorIntervalMs: Int64 = 200
        public var checkpointEveryEdits: UInt64 = 200_000
        /// Raw bytes per block frame; tests use small frames to cross many frame boundaries cheaply.
        public var rawFrameSizeBytes = Limits.defaultRawFrameSizeBytes
        public var logLevel: Logger.Level = .warning
        /// The data nodes' block scanner rate (0: no scanner, the default in tests).
        public var scanBytesPerSecond = 0
        /// How soon the scanner verifies a replica again (the data node's default: 504 hours).
        public var scanPeriodMs: Int64 = 504 * 3_600_000
        public var leaseSoftLimitMs: Int64 = 60_000
        public var leaseHardLimitMs: Int64 = 1_200_000
        public var leaseRecoveryTimeoutMs: Int64 = 60_000
        /// How long `complete` and `addBlock` wait for a just-written block's finished replica.
        public var finishedReplicaWaitMs: Int64 = 20_000
        /// Blocks of a deleted tree leaving the block map per hold of the name node's lock.
        public var blockDeletionIncrement = 1000
        /// How long the data nodes may take to register and the name node to leave safe mode.
        public var readyTimeoutSeconds: Double = 30
        /// The name node's clock (tests give a `ManualClock` to move its leases and liveness
        /// without sleeping; data nodes and clients keep the system clock).
        public var nameNodeClock: any Clock = SystemClock()
        /// Starts a master and an agent beside each data node (`strata cluster up` does unless
        /// `--no-compute`; tests of the file system alone leave them out).
        public var compute = false
        /// The master's HTTP port (0: a free one).
        public var masterPort = 0
        /// The first agent's HTTP port, the next ones following it (0: free ones).
        public var agentPort = 0
        /// What each agent offers; nil: the machine's measure (every agent on one machine
        /// offers the same).
        public var agentResources: Resources?
        /// Amounts every agent offers instead of the measured ones (`--agent-resources`).
        public var agentResourceOverrides = ResourceOverrides()
        public var agentTimeoutMs: Int64 = 15_000
        public var agentHeartbeatIntervalMs: Int64 = 1_000
        public var allowRootTasks = false
        /// The cluster secret the master, agents and registry require of every call (nil:
        /// none, as on loopback).
        public var token: String?
        /// Starts the service launcher beside the master (Marathon's API; `strata cluster up`
        /// does with compute).
        public var launcher = false
        /// The launcher's HTTP port (0: a free one).
        public var launcherPort = 0
        /// The user the launcher's instances run as when their app names none (nil: the superuser).
        public var launcherTaskUser: String?
        /// Starts the cron service beside the master (Chronos' API; `strata cluster up` does
        /// with compute).
        public var cron = false
        /// The cron service's HTTP port (0: a free one).
        public var cronPort = 0
        /// The user cron runs run as when their job names none (nil: the superuser).
        public var cronTaskUser: String?
        /// How long a failed cron attempt waits before it is tried again.
        public var cronRetryDelayMs: Int64 = 60_000
        /// Starts the image registry (the OCI distribution API over the image store in the
        /// DFS); `strata cluster up` does with compute.
        public var registry = false
        /// The registry's HTTP port (0: a free one).
        public var registryPort = 0
        public init() {}
    }

    /// The running cluster, reported once it serves.
    public struct Running: Sendable {
        public var directory: String
        /// The event loops the cluster runs on, shut down when `run` returns.
        public var group: MultiThreadedEventLoopGroup
        public var nameNode: NameNode
        public var nameNodePort: Int
        /// WebHDFS and `/metrics` on the name node.
        public var nameNodeHTTP: NameNodeWebHDFS
        public var nameNodeHTTPPort: Int
        public var dataNodes: [DataNode]
        /// WebHDFS data side and `/metrics` on each data node, in `dataNodes` order.
        public var dataNodeHTTP: [DataNodeWebHDFS]
        /// The master and agents, when the cluster runs compute.
        public var master: Master?
        public var masterPort: Int?
        public var agents: [Agent] = []
        public var agentPorts: [Int] = []
        /// The image registry, when the cluster runs one.
        public var registry: Registry?
        public var registryPort: Int?
        /// The service launcher, when the cluster runs one.
        public var launcher: Launcher?
        public var launcherPort: Int?
        /// The cron service, when the cluster runs one.
        public var cron: CronScheduler?
        public var cronPort: Int?
    }

    public let directory: String
    public let options: Options
    let logger: Logger
    /// Ready when every data node has registered and the name node is out of safe mode; failed
    /// if `run` ends first.
    public let ready = Readiness<Running>()

    public init(directory: String, options: Options = Options()) {
        self.directory = directory
        self.options = options
        var logger = Logger(label: "strata")
        logger.logLevel = options.logLevel
        self.logger = logger
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let dataNodes = DataNodes()
        try await runDaemon("the local cluster", ready: ready) {
            try await serve(group: group, dataNodes: dataNodes)
        } stop: {
            await stop(group: group, dataNodes: dataNodes)
        }
    }

    private func serve(group: MultiThreadedEventLoopGroup, dataNodes: DataNodes) async throws {
        let nameNode = try NameNode(configuration: nameNodeConfiguration(), logger: logger, clock: options.nameNodeClock)
        let nameNodeService = NameNodeService(nameNode: nameNode, httpPort: options.httpPort, group: group, logger: logger)
        // The data nodes join once the name node's ports are known. The group shuts its services
        // down in reverse order: data nodes (last added first), then the name node. It follows
        // this service's graceful shutdown, and one service failing shuts the others down
        // gracefully too.
        let services = ServiceGroup(configuration: .init(services: [Self.configuration(nameNodeService)], logger: logger))
        try await withThrowingTaskGroup(of: (any Error)?.self) { tasks in
            tasks.addTask {
                do {
                    try await self.startDataNodes(in: services, nameNodeService: nameNodeService, group: group, dataNodes: dataNodes)
                    return nil
                } catch is CancellationError {
                    return nil
                } catch {
                    // The start-up's own failure (a data node cannot be made, or they do not all
                    // register in time) stops the services, and is this service's error.
                    await services.triggerGracefulShutdown()
                    return error
                }
            }
            try await services.run()
            // A start-up still going when the services end (they were shut down while
            // starting) is moot.
            tasks.cancelAll()
            for try await case let error? in tasks { throw error }
        }
    }

    private static func configuration(_ service: any Service) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: service, failureTerminationBehavior: .gracefullyShutdownGroup)
    }

    private func startDataNodes(
        in services: ServiceGroup, nameNodeService: NameNodeService, group: MultiThreadedEventLoopGroup, dataNodes: DataNodes
    ) async throws {
        // A service that stops before it is ready ends the group, with its error if it has one:
        // the start-up then just ends.
        guard let nameNode = try? await nameNodeService.ready.wait() else { return }
        var dataNodeServices: [DataNodeService] = []
        for index in stride(from: 1, through: options.dataNodes, by: 1) {
            var configuration = DataNodeConfiguration(directory: directory + "/node\(index)")
            configuration.transferPort = 0
            configuration.nameNodePort = nameNode.rpcPort
            configuration.heartbeatIntervalMs = options.heartbeatIntervalMs
            configuration.scanBytesPerSecond = options.scanBytesPerSecond
            configuration.scanPeriodMs = options.scanPeriodMs
            let dataNode = try DataNode(configuration: configuration, group: group, logger: logger)
            dataNodes.append(dataNode)
            let service = DataNodeService(
                dataNode: dataNode, httpPort: options.dataNodeHTTPPort == 0 ? 0 : options.dataNodeHTTPPort + index - 1,
                nameNodeHTTPPort: nameNode.httpPort, group: group, logger: logger)
            await services.addServiceUnlessShutdown(Self.configuration(service))
            dataNodeServices.append(service)
        }
        var dataNodeHTTP: [DataNodeWebHDFS] = []
        for service in dataNodeServices {
            guard let running = try? await service.ready.wait() else { return }
            dataNodeHTTP.append(running.webHDFS)
        }
        try await waitForRegistration(of: options.dataNodes, at: nameNodeService.nameNode)
        var running = Running(
            directory: directory, group: group, nameNode: nameNodeService.nameNode, nameNodePort: nameNode.rpcPort,
            nameNodeHTTP: nameNode.webHDFS, nameNodeHTTPPort: nameNode.httpPort, dataNodes: dataNodeServices.map(\.dataNode),
            dataNodeHTTP: dataNodeHTTP)
        if options.registry {
            var dfs = DFSClientConfiguration(user: options.superuser)
            dfs.nameNodePort = running.nameNodePort
            let service = RegistryService(dfs: dfs, host: "127.0.0.1", port: options.registryPort, token: options.token, group: group, logger: logger)
            await services.addServiceUnlessShutdown(Self.configuration(service))
            guard let port = try? await service.ready.wait() else { return }
            running.registry = service.registry
            running.registryPort = port
        }
        if options.compute {
            guard try await startCompute(in: services, running: &running, group: group) else { return }
        }
        ready.resolve(running)
    }

    /// Starts the master (its state on the DFS just started) and an agent beside each data node,
    /// and waits until every agent has registered. False if the group shut down meanwhile.
    private func startCompute(in services: ServiceGroup, running: inout Running, group: MultiThreadedEventLoopGroup) async throws -> Bool {
        var dfs = DFSClientConfiguration(user: options.superuser)
        dfs.nameNodePort = running.nameNodePort
        var masterConfiguration = MasterConfiguration()
        masterConfiguration.port = options.masterPort
        masterConfiguration.agentTimeoutMs = options.agentTimeoutMs
        masterConfiguration.superuser = options.superuser
        masterConfiguration.token = options.token
        let master = Master(configuration: masterConfiguration, dfs: dfs, group: group, logger: logger)
        let masterService = MasterService(master: master, group: group, logger: logger)
        await services.addServiceUnlessShutdown(Self.configuration(masterService))
        guard let masterPort = try? await masterService.ready.wait() else { return false }
        var agentServices: [AgentService] = []
        for (index, dataNode) in running.dataNodes.enumerated() {
            var configuration = AgentConfiguration(
                workDirectory: directory + "/node\(index + 1)/agent", masterAddress: "127.0.0.1:\(masterPort)")
            configuration.port = options.agentPort == 0 ? 0 : options.agentPort + index
            configuration.dataNodeId = dataNode.nodeId
            configuration.hostname = "node\(index + 1)"
            configuration.attributes = ["node": "node\(index + 1)"]
            configuration.resources = options.agentResources
            configuration.resourceOverrides = options.agentResourceOverrides
            // The agents share one host: each offers its own share of Mesos' 31000-32000, so
            // service tasks on different agents are never given the same port.
            let share = max(1, 1001 / running.dataNodes.count)
            configuration.ports = [PortRange(31000 + index * share, 31000 + (index + 1) * share - 1)]
            configuration.heartbeatIntervalMs = options.agentHeartbeatIntervalMs
            configuration.allowRootTasks = options.allowRootTasks
            configuration.token = options.token
            let agent = try Agent(configuration: configuration, dfs: dfs, group: group, logger: logger)
            // Each agent's tasks' cgroups under a parent of its own, so agents (and clusters) on
            // one machine never take each other's tasks for leftovers.
            let service = AgentService(agent: agent, group: group, logger: logger)
            await services.addServiceUnlessShutdown(Self.configuration(service))
            agentServices.append(service)
        }
        for service in agentServices {
            guard let port = try? await service.ready.wait() else { return false }
            running.agentPorts.append(port)
        }
        try await master.waitForAgents(agentServices.count, timeoutSeconds: options.readyTimeoutSeconds)
        running.master = master
        running.masterPort = masterPort
        running.agents = agentServices.map(\.agent)
        if options.launcher {
            var configuration = LauncherConfiguration(masterAddress: "127.0.0.1:\(masterPort)", taskUser: options.launcherTaskUser ?? options.superuser)
            configuration.port = options.launcherPort
            configuration.superuser = options.superuser
            configuration.token = options.token
            let launcher = Launcher(configuration: configuration, dfs: dfs, group: group, logger: logger)
            let service = LauncherService(launcher: launcher, group: group, logger: logger)
            await services.addServiceUnlessShutdown(Self.configuration(service))
            guard let port = try? await service.ready.wait() else { return false }
            running.launcher = launcher
            running.launcherPort = port
        }
        if options.cron {
            var configuration = CronConfiguration(masterAddress: "127.0.0.1:\(masterPort)", taskUser: options.cronTaskUser ?? options.superuser)
            configuration.port = options.cronPort
            configuration.superuser = options.superuser
            configuration.token = options.token
            configuration.failureRetryDelayMs = options.cronRetryDelayMs
            let scheduler = CronScheduler(configuration: configuration, dfs: dfs, group: group, logger: logger)
            let service = CronService(scheduler: scheduler, group: group, logger: logger)
            await services.addServiceUnlessShutdown(Self.configuration(service))
            guard let port = try? await service.ready.wait() else { return false }
            running.cron = scheduler
            running.cronPort = port
        }
        return true
    }

    /// Waits until `count` data nodes are live and have sent their first block report (so each
    /// has joined the namespace and the name node knows its replicas), and the name node is out
    /// of safe mode: checked
    /// each time the name node's cluster state changes, within a bound.
    private func waitForRegistration(of count: Int, at nameNode: NameNode) async throws {
        let clock = SystemClock()
        let deadline = clock.now + .seconds(options.readyTimeoutSeconds)
        while true {
            let seen = nameNode.clusterStateChanges.count
            let statistics = nameNode.statistics
            if statistics.reportedDataNodes >= count && !statistics.inSafeMode { return }
            guard clock.now < deadline else {
                throw ClusterServiceError(message: "data nodes did not all register within \(options.readyTimeoutSeconds) s")
            }
            await clock.wait(for: nameNode.clusterStateChanges, after: seen, until: deadline)
            try Task.checkCancellation()
        }
    }

    /// Stops what the service group did not: data nodes made but never run as a service (the
    /// group was shutting down when they were added). Stopping a stopped node does nothing more.
    /// Then the event loop threads.
    private func stop(group: MultiThreadedEventLoopGroup, dataNodes: DataNodes) async {
        let nodes = dataNodes.all
        await runToCompletion {
            for node in nodes { await node.shutdown() }
            try? await group.shutdownGracefully()
        }
    }

    private func nameNodeConfiguration() -> NameNodeConfiguration {
        var configuration = NameNodeConfiguration(directory: directory + "/namenode", superuser: options.superuser)
        configuration.rpcPort = options.rpcPort
        configuration.blockManager.heartbeatIntervalMs = options.heartbeatIntervalMs
        configuration.blockManager.heartbeatTimeoutMs = options.heartbeatTimeoutMs
        configuration.monitorIntervalMs = options.monitorIntervalMs
        configuration.checkpointEveryEdits = options.checkpointEveryEdits
        configuration.rawFrameSize = options.rawFrameSizeBytes
        configuration.leases.softLimitMs = options.leaseSoftLimitMs
        configuration.leases.hardLimitMs = options.leaseHardLimitMs
        configuration.leases.recoveryTimeoutMs = options.leaseRecoveryTimeoutMs
        configuration.finishedReplicaWaitMs = options.finishedReplicaWaitMs
        configuration.blockDeletionIncrement = options.blockDeletionIncrement
        return configuration
    }
}

/// The data nodes a cluster made, so that it stops each one even if its service never ran.
private final class DataNodes: Sendable {
    private let nodes = Mutex<[DataNode]>([])

    func append(_ node: DataNode) { nodes.withLock { $0.append(node) } }

    var all: [DataNode] { nodes.withLock { $0 } }
}
