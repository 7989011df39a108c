import Hummingbird
import Logging
import NIOCore
import NIOHTTPTypes
import ServiceLifecycle
import StrataCore
import Synchronization

/// A Hummingbird HTTP/1.1 server answering every request with one handler. It is a `Service`:
/// its owner (a name node or data node service) runs it, and it stops on the owner's graceful
/// shutdown. Request and response bodies stream with backpressure.
public final class HTTPServer: Service, Sendable {
    /// How long requests in flight may go on once shutdown begins before they are cut off: a
    /// client in the middle of a large download must not hold a stopping node for long.
    public static let shutdownGraceSeconds = 5

    private let host: String
    private let requestedPort: Int
    private let application: Application<Responder>
    private let bound: Readiness<Int>

    struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext
        let handler: @Sendable (Request) async -> Response

        func respond(to request: Request, context: Context) async throws -> Response {
            await handler(request)
        }
    }

    /// A server for `host:port` (0: a free port), serving once `run` runs.
    ///
    /// `acceptsUploads`: the server takes request bodies (a data node's CREATE and APPEND), so it
    /// answers `Expect: 100-continue` on PUT and POST at once. A server that only redirects (the
    /// name node) leaves it unanswered: the client then gets the redirect without having sent
    /// its body.
    public init(
        host: String, port: Int, group: any EventLoopGroup, logger: Logger, acceptsUploads: Bool = false,
        handler: @escaping @Sendable (Request) async -> Response
    ) {
        let bound = Readiness<Int>()
        self.host = host
        self.requestedPort = port
        self.bound = bound
        self.application = Application(
            responder: Responder(handler: handler),
            server: .http1(configuration: .init(
                additionalChannelHandlers: acceptsUploads ? [LargeReads(), ContinueUploads()] : [LargeReads()], idleTimeout: .seconds(120))),
            configuration: .init(address: .hostname(host, port: port), serverName: "Strata"),
            onServerRunning: { channel in bound.resolve(channel.localAddress?.port ?? 0) },
            eventLoopGroupProvider: .shared(group),
            logger: logger)
    }

    /// The bound port once the server is serving; 0 before.
    public var port: Int { bound.value ?? 0 }

    /// Waits until the server is serving and returns its bound port (the one asked for, or the
    /// free one the system chose). Throws if `run` ended first: the server could not bind, or
    /// was shut down while starting.
    public func serving() async throws -> Int {
        try await bound.wait()
    }

    /// Serves until graceful shutdown (or cancellation): then stops accepting connections, lets
    /// requests in flight finish for at most `shutdownGraceSeconds`, closes the rest and returns.
    public func run() async throws {
        defer { bound.fail(HTTPServerError(message: "HTTP server on \(host):\(requestedPort) stopped before serving")) }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            // The application shuts down gracefully with the task running it (its own service
            // group follows the graceful shutdown of the one around it).
            tasks.addTask { try await self.application.run() }
            tasks.addTask {
                try await gracefulShutdown()
                try await Task.sleep(for: .seconds(Self.shutdownGraceSeconds))
            }
            // Whichever ends first: the application (it stopped, or failed to bind), or the
            // grace period after shutdown began. Either way the other is no longer needed.
            try await tasks.next()
            tasks.cancelAll()
        }
    }
}

/// Lets a connection read up to 128 KiB per system call instead of NIO's usual 64 KiB: a WebHDFS
/// upload of gigabytes then arrives in half as many pieces, each of which wakes the task copying
/// the body into the file system. (The connection buffers a few pieces ahead of that task, so
/// larger reads would hold more memory per upload.)
final class LargeReads: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = Never

    static let maximumReadBytes = 128 * 1024

    func handlerAdded(context: ChannelHandlerContext) {
        let allocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 64 * 1024, maximum: Self.maximumReadBytes)
        context.channel.setOption(ChannelOptions.recvAllocator, value: allocator).whenComplete { _ in }
    }
}

/// Answers `Expect: 100-continue` (RFC 9110, section 10.1.1) on uploads with an interim
/// `100 Continue`, so that clients which wait for it (curl does, for a second, before any body over
/// a megabyte; so do Java clients) send the body at once.
final class ContinueUploads: ChannelDuplexHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let request) = unwrapInboundIn(data), request.method == .put || request.method == .post,
            request.headerFields[.expect]?.lowercased() == "100-continue"
        {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}

public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
