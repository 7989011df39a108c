import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A Hummingbird HTTP/1.1 server answering every request with one handler, started and stopped
/// by its owner (a name node or data node) rather than by signals. Request and response bodies
/// stream with backpressure.
public final class HTTPServer: Sendable {
    public let port: Int
    private let serviceGroup: ServiceGroup
    private let task: Task<Void, any Error>

    private init(port: Int, serviceGroup: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.serviceGroup = serviceGroup
        self.task = task
    }

    struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext
        let handler: @Sendable (Request) async -> Response

        func respond(to request: Request, context: Context) async throws -> Response {
            await handler(request)
        }
    }

    /// Binds `host:port` (0: a free port) and serves until `shutdown`.
    public static func start(
        host: String, port: Int, group: any EventLoopGroup, logger: Logger,
        handler: @escaping @Sendable (Request) async -> Response
    ) async throws -> HTTPServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let application = Application(
            responder: Responder(handler: handler),
            server: .http1(configuration: .init(idleTimeout: .seconds(120))),
            configuration: .init(address: .hostname(host, port: port), serverName: "Strata"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            eventLoopGroupProvider: .shared(group),
            logger: logger)
        let serviceGroup = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let task = Task {
            defer { continuation.finish() }
            try await serviceGroup.run()
        }
        for await bound in ports {
            return HTTPServer(port: bound, serviceGroup: serviceGroup, task: task)
        }
        // The server stopped before it was running: report why.
        try await task.value
        throw HTTPServerError(message: "HTTP server on \(host):\(port) stopped while starting")
    }

    /// Stops accepting connections, lets requests in flight finish for a few seconds, then stops.
    public func shutdown() async {
        await serviceGroup.triggerGracefulShutdown()
        let task = self.task
        let watchdog = Task {
            try await Task.sleep(for: .seconds(5))
            task.cancel()
        }
        _ = try? await task.value
        watchdog.cancel()
    }
}

public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
