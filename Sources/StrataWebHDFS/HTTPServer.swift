import Hummingbird
import Logging
import NIOCore
import NIOHTTPTypes
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
    ///
    /// `acceptsUploads`: the server takes request bodies (a data node's CREATE and APPEND), so it
    /// answers `Expect: 100-continue` on PUT and POST at once. A server that only redirects (the
    /// name node) leaves it unanswered: the client then gets the redirect without having sent
    /// its body.
    public static func start(
        host: String, port: Int, group: any EventLoopGroup, logger: Logger, acceptsUploads: Bool = false,
        handler: @escaping @Sendable (Request) async -> Response
    ) async throws -> HTTPServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let application = Application(
            responder: Responder(handler: handler),
            server: .http1(configuration: .init(
                additionalChannelHandlers: acceptsUploads ? [LargeReads(), ContinueUploads()] : [LargeReads()], idleTimeout: .seconds(120))),
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
