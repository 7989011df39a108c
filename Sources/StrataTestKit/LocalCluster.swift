import Foundation
import Logging
import NIOCore
import NIOPosix
import StrataClient
import StrataCore
import StrataDataNode
import StrataNameNode
import StrataWebHDFS

/// A name node and data nodes in this process, on loopback ports chosen by the system, with
/// their data in a directory: what `strata cluster up` runs, and what tests start.
public final class LocalCluster: Sendable {
    public let directory: String
    public let group: MultiThreadedEventLoopGroup
    public let nameNode: NameNode
    public let dataNodes: [DataNode]
    public let nameNodePort: Int
    /// WebHDFS and `/metrics` on the name node.
    public let nameNodeHTTP: NameNodeWebHDFS
    /// WebHDFS data side and `/metrics` on each data node, in `dataNodes` order.
    public let dataNodeHTTP: [DataNodeWebHDFS]
    let logger: Logger

    /// The name node's HTTP port (WebHDFS, HDFS default 9870).
    public var nameNodeHTTPPort: Int { nameNodeHTTP.port }

    public struct Options: Sendable {
        /// Data nodes to start; 0 gives a name node alone (to test what writers see without any).
        public var dataNodes = 3
        public var superuser = "strata"
        public var heartbeatIntervalMs: Int64 = 1_000
        public var heartbeatTimeoutMs: Int64 = 30_000
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
        public init() {}
    }

    /// Starts (or restarts, on an existing directory) a cluster and waits until every data node
    /// has registered.
    public static func start(directory: String, options: Options = Options()) async throws -> LocalCluster {
        var logger = Logger(label: "strata")
        logger.logLevel = options.logLevel
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        var configuration = NameNodeConfiguration(directory: directory + "/namenode", superuser: options.superuser)
        configuration.rpcPort = options.rpcPort
        configuration.blockManager.heartbeatIntervalMs = options.heartbeatIntervalMs
        configuration.blockManager.heartbeatTimeoutMs = options.heartbeatTimeoutMs
        configuration.monitorIntervalMs = options.monitorIntervalMs
        configuration.checkpointEveryEdits = options.checkpointEveryEdits
        configuration.rawFrameSize = options.rawFrameSizeBytes
        configuration.leaseSoftLimitMs = options.leaseSoftLimitMs
        configuration.leaseHardLimitMs = options.leaseHardLimitMs
        configuration.leaseRecoveryTimeoutMs = options.leaseRecoveryTimeoutMs
        let nameNode = try NameNode(configuration: configuration, logger: logger)
        let port = try await nameNode.start(group: group)
        let nameNodeHTTP = try await NameNodeWebHDFS.start(
            nameNode: nameNode, host: configuration.host, port: options.httpPort, group: group, logger: logger)
        var dataNodes: [DataNode] = []
        var dataNodeHTTP: [DataNodeWebHDFS] = []
        for index in stride(from: 1, through: options.dataNodes, by: 1) {
            var node = DataNodeConfiguration(directory: directory + "/node\(index)")
            node.transferPort = 0
            node.nameNodePort = port
            node.heartbeatIntervalMs = options.heartbeatIntervalMs
            node.scanBytesPerSecond = options.scanBytesPerSecond
            node.scanPeriodMs = options.scanPeriodMs
            let dataNode = try DataNode(configuration: node, group: group, logger: logger)
            // The HTTP port goes into the node's registration, so its server starts first.
            let http = try await DataNodeWebHDFS.start(
                dataNode: dataNode, host: node.host, port: options.dataNodeHTTPPort == 0 ? 0 : options.dataNodeHTTPPort + index - 1,
                nameNodeHTTPPort: nameNodeHTTP.port, group: group, logger: logger)
            try await dataNode.start()
            dataNodes.append(dataNode)
            dataNodeHTTP.append(http)
        }
        let cluster = LocalCluster(
            directory: directory, group: group, nameNode: nameNode, dataNodes: dataNodes, port: port, nameNodeHTTP: nameNodeHTTP,
            dataNodeHTTP: dataNodeHTTP, logger: logger)
        try await cluster.waitForDataNodes(options.dataNodes)
        return cluster
    }

    private init(
        directory: String, group: MultiThreadedEventLoopGroup, nameNode: NameNode, dataNodes: [DataNode], port: Int,
        nameNodeHTTP: NameNodeWebHDFS, dataNodeHTTP: [DataNodeWebHDFS], logger: Logger
    ) {
        self.nameNodeHTTP = nameNodeHTTP
        self.dataNodeHTTP = dataNodeHTTP
        self.directory = directory
        self.group = group
        self.nameNode = nameNode
        self.dataNodes = dataNodes
        self.nameNodePort = port
        self.logger = logger
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

    public func shutdown() async {
        await nameNodeHTTP.shutdown()
        for http in dataNodeHTTP { await http.shutdown() }
        for node in dataNodes { await node.shutdown() }
        await nameNode.shutdown()
        try? await group.shutdownGracefully()
    }
}

public struct ClusterError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
