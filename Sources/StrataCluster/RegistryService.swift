import Logging
import NIOCore
import ServiceLifecycle
import StrataClient
import StrataCore
import StrataHTTP
import StrataImages
import StrataRegistry

/// The image registry as a service: opens the image store's index on the DFS, serves the OCI
/// distribution API until graceful shutdown, then closes the store and its DFS client.
public final class RegistryService: Service, Sendable {
    public let registry: Registry
    let client: DFSClient
    let host: String
    let port: Int
    let group: any EventLoopGroup
    let logger: Logger
    /// The HTTP port, once the registry serves (after the store's index is read).
    public let ready = Readiness<Int>()

    public init(
        dfs: DFSClientConfiguration, host: String, port: Int, token: String?, storeOptions: ImageStore.Options = ImageStore.Options(),
        group: any EventLoopGroup, logger: Logger
    ) {
        let client = DFSClient(configuration: dfs, group: group)
        self.client = client
        self.registry = Registry(store: ImageStore(client: client, options: storeOptions, logger: logger), token: token, logger: logger)
        self.host = host
        self.port = port
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        let registry = self.registry
        let client = self.client
        try await runDaemon("the registry", ready: ready) {
            try await registry.store.open()
            let server = HTTPServer(host: host, port: port, group: group, logger: logger, acceptsUploads: true) { request in
                await registry.respond(to: request)
            }
            try await serveWithLoops(server: server, ready: ready, name: "registry")
        } stop: {
            await runToCompletion {
                try? await registry.store.close()
                await client.close()
            }
        }
    }
}
