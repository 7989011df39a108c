import Logging
import NIOCore
import ServiceLifecycle
import StrataClient
import StrataCore
import StrataHTTP
import StrataNameNode
import StrataWebHDFS

/// A name node as a service: its RPC server, monitors and WebHDFS HTTP server. `run` starts
/// them, serves until graceful shutdown (SIGTERM, Ctrl-C) or cancellation, then stops the HTTP
/// server (requests in flight get `HTTPServer.shutdownGraceSeconds`) and the name node (its
/// journal made durable) before it returns.
public final class NameNodeService: Service, Sendable {
    /// Where the name node serves, reported once both servers are serving.
    public struct Running: Sendable {
        public var rpcPort: Int
        public var httpPort: Int
        /// WebHDFS and `/metrics`.
        public var webHDFS: NameNodeWebHDFS
    }

    public let nameNode: NameNode
    let httpPort: Int
    let group: any EventLoopGroup
    let logger: Logger
    /// Ready when RPC and HTTP both serve; failed if `run` ends first.
    public let ready = Readiness<Running>()

    /// `httpPort` 0: a free port. The RPC server listens where `nameNode.configuration` says,
    /// and the HTTP server on the same host.
    public init(nameNode: NameNode, httpPort: Int, group: any EventLoopGroup, logger: Logger) {
        self.nameNode = nameNode
        self.httpPort = httpPort
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        try await runDaemon("the name node", ready: ready) {
            try await serve()
        } stop: {
            await stopNameNode()
        }
    }

    private func serve() async throws {
        let rpcPort = try await nameNode.start(group: group)
        // Hadoop RPC's truncate inside a block copies the kept bytes as WebHDFS TRUNCATE does:
        // with a DFS client of this name node, as the calling user.
        let rpcHost = nameNode.configuration.host == "0.0.0.0" ? "127.0.0.1" : nameNode.configuration.host
        let group = self.group
        nameNode.setTruncateInsideBlock { path, newLength, user in
            var configuration = DFSClientConfiguration(user: user)
            configuration.nameNodeHost = rpcHost
            configuration.nameNodePort = rpcPort
            let client = DFSClient(configuration: configuration, group: group)
            do {
                let result = try await client.truncate(path, newLength: newLength)
                await client.close()
                return result
            } catch {
                await client.close()
                throw error
            }
        }
        // Made after RPC serves: its requests go to the RPC port.
        let webHDFS = NameNodeWebHDFS.make(
            nameNode: nameNode, host: nameNode.configuration.host, port: httpPort, group: group, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            // The HTTP server stops on this service's graceful shutdown, which it shares.
            tasks.addTask { try await webHDFS.run() }
            guard let httpPort = try? await webHDFS.serving() else {
                // It stopped before serving: its error ends the service, or, without one, it
                // was shut down while starting.
                try await tasks.waitForAll()
                return
            }
            logger.info("name node HTTP serving", metadata: ["http": "\(nameNode.configuration.host):\(httpPort)"])
            ready.resolve(Running(rpcPort: rpcPort, httpPort: httpPort, webHDFS: webHDFS))
            try await tasks.waitForAll()
        }
    }

    private func stopNameNode() async {
        let nameNode = self.nameNode
        await runToCompletion { await nameNode.shutdown() }
    }
}
