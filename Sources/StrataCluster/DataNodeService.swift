import Logging
import NIOCore
import ServiceLifecycle
import StrataCore
import StrataHTTP
import StrataDataNode
import StrataWebHDFS

/// A data node as a service: its WebHDFS HTTP server, then its transfer server, heartbeats,
/// block reports and scanner. `run` starts them, serves until graceful shutdown (SIGTERM,
/// Ctrl-C) or cancellation, then stops the HTTP server (requests in flight get
/// `HTTPServer.shutdownGraceSeconds`) and the node (its background work within its bound)
/// before it returns.
public final class DataNodeService: Service, Sendable {
    /// Where the data node serves, reported once it serves and has started reporting to its
    /// name node.
    public struct Running: Sendable {
        public var transferPort: Int
        public var httpPort: Int
        /// WebHDFS data side and `/metrics`.
        public var webHDFS: DataNodeWebHDFS
    }

    public let dataNode: DataNode
    let httpPort: Int
    let nameNodeHTTPPort: Int
    let group: any EventLoopGroup
    let logger: Logger
    /// Ready when the HTTP and transfer servers serve; failed if `run` ends first.
    public let ready = Readiness<Running>()

    /// `httpPort` 0: a free port, on the node's host. `nameNodeHTTPPort` goes into the
    /// `webhdfs://` URLs WebHDFS CREATE answers with.
    public init(dataNode: DataNode, httpPort: Int, nameNodeHTTPPort: Int, group: any EventLoopGroup, logger: Logger) {
        self.dataNode = dataNode
        self.httpPort = httpPort
        self.nameNodeHTTPPort = nameNodeHTTPPort
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        try await runDaemon("data node \(dataNode.nodeId)", ready: ready) {
            try await serve()
        } stop: {
            await stopDataNode()
        }
    }

    private func serve() async throws {
        let webHDFS = DataNodeWebHDFS.make(
            dataNode: dataNode, host: dataNode.configuration.host, port: httpPort, nameNodeHTTPPort: nameNodeHTTPPort, group: group,
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            // The HTTP server stops on this service's graceful shutdown, which it shares.
            tasks.addTask { try await webHDFS.run() }
            // The HTTP port goes into the node's registration, so its server serves first.
            guard let httpPort = try? await webHDFS.serving() else {
                // It stopped before serving: its error ends the service, or, without one, it
                // was shut down while starting.
                try await tasks.waitForAll()
                return
            }
            logger.info("data node HTTP serving", metadata: ["node": "\(dataNode.nodeId)", "http": "\(dataNode.configuration.host):\(httpPort)"])
            let transferPort = try await dataNode.start()
            ready.resolve(Running(transferPort: transferPort, httpPort: httpPort, webHDFS: webHDFS))
            try await tasks.waitForAll()
        }
    }

    private func stopDataNode() async {
        let dataNode = self.dataNode
        await runToCompletion { await dataNode.shutdown() }
    }
}
