import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import StrataCore
import SwiftProtobuf

/// One call as a service receives it.
public struct RPCCall: Sendable {
    public var header: Strata_Wire_RequestHeader
    public var body: ByteBuffer
    public var remoteAddress: SocketAddress?

    public init(header: Strata_Wire_RequestHeader, body: ByteBuffer, remoteAddress: SocketAddress? = nil) {
        self.header = header
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// The method as the wire names it, known to this server or not.
    public var methodName: String { header.method }
    /// The name node method called; nil for a name the protocol does not have.
    public var method: NameNodeMethod? { NameNodeMethod(rawValue: header.method) }
    public var user: String { header.user }

    /// The request message, or a protocol error if the body is not one.
    public func request<Request: SwiftProtobuf.Message>(_ type: Request.Type = Request.self) throws(WireProtocolError) -> Request {
        try Request(buffer: body)
    }
}

/// Answers a call with a response message, or throws (a `RemoteException` reaches the caller as
/// it is; anything else as an `IOException`).
public typealias RPCHandler = @Sendable (RPCCall) async throws -> any SwiftProtobuf.Message

/// Answers a call at once on the event loop that received it, or returns nil to have it run as a
/// task by the `RPCHandler`. For calls that only take a short lock.
public typealias RPCInlineHandler = @Sendable (RPCCall) throws -> (any SwiftProtobuf.Message)?

/// A TCP server for Strata RPC: frames in, a task per call, responses out in any order (calls
/// are matched by id), at most `Limits.maximumInFlightCallsPerConnection` per connection.
public final class RPCServer: Sendable {
    public let localAddress: SocketAddress
    private let channel: any Channel

    public var port: Int { localAddress.port ?? 0 }

    private init(channel: any Channel) {
        self.channel = channel
        self.localAddress = channel.localAddress!
    }

    /// `sharedPortProtocols`: other protocols served on the same port, told from Strata's by a
    /// connection's first 4 bytes (Hadoop RPC opens with `hrpc`, Strata's with `STRT`).
    public static func start(
        host: String, port: Int, group: any EventLoopGroup, logger: Logger, inlineHandler: RPCInlineHandler? = nil,
        sharedPortProtocols: [SharedPortProtocol] = [],
        handler: @escaping RPCHandler
    ) async throws -> RPCServer {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let strata: @Sendable (any Channel) throws -> Void = { channel in
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WireFrameDecoder(expecting: .rpc)))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WireFrameEncoder()))
                        try channel.pipeline.syncOperations.addHandler(
                            RPCServerHandler(handler: handler, inlineHandler: inlineHandler, logger: logger))
                    }
                    if sharedPortProtocols.isEmpty {
                        try strata(channel)
                    } else {
                        let strataProtocol = SharedPortProtocol(magic: WirePreamble.rpc.magic, configure: strata)
                        try channel.pipeline.syncOperations.addHandler(
                            PortProtocolSniffer(protocols: [strataProtocol] + sharedPortProtocols, logger: logger))
                    }
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return RPCServer(channel: channel)
    }

    public func close() async {
        try? await channel.close()
    }
}

final class RPCServerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = WireFrame
    typealias OutboundOut = WireFrame

    private let handler: RPCHandler
    private let inlineHandler: RPCInlineHandler?
    private let logger: Logger
    private let inFlight = NIOLockedValueBox(0)

    init(handler: @escaping RPCHandler, inlineHandler: RPCInlineHandler?, logger: Logger) {
        self.handler = handler
        self.inlineHandler = inlineHandler
        self.logger = logger
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Inline answers are written as calls arrive and flushed once per read burst.
        context.flush()
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let header: Strata_Wire_RequestHeader
        do {
            header = try Strata_Wire_RequestHeader(buffer: frame.header)
        } catch {
            logger.warning("closing RPC connection from \(String(describing: context.remoteAddress)): \(error)")
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        let call = RPCCall(header: header, body: frame.body, remoteAddress: context.remoteAddress)
        if let inlineHandler {
            do {
                if let message = try inlineHandler(call) {
                    context.write(wrapOutboundOut(Self.responseFrame(callId: header.callID, message)), promise: nil)
                    return
                }
            } catch {
                context.write(wrapOutboundOut(Self.errorFrame(callId: header.callID, Self.remoteException(error))), promise: nil)
                return
            }
        }
        let admitted = inFlight.withLockedValue { count in
            guard count < Limits.maximumInFlightCallsPerConnection else { return false }
            count += 1
            return true
        }
        guard admitted else {
            let busy = RemoteException(.retriable, "too many calls in flight on this connection")
            channel.writeAndFlush(Self.errorFrame(callId: header.callID, busy), promise: nil)
            return
        }
        let handler = self.handler
        let inFlight = self.inFlight
        Task {
            let response: WireFrame
            do {
                response = Self.responseFrame(callId: header.callID, try await handler(call))
            } catch {
                response = Self.errorFrame(callId: header.callID, Self.remoteException(error))
            }
            inFlight.withLockedValue { $0 -= 1 }
            channel.writeAndFlush(response, promise: nil)
        }
    }

    static func responseFrame(callId: UInt64, _ message: any SwiftProtobuf.Message) -> WireFrame {
        var header = Strata_Wire_ResponseHeader()
        header.callID = callId
        header.ok = true
        do {
            return WireFrame(header: try header.serializedBuffer(), body: try message.serializedBuffer())
        } catch {
            return errorFrame(callId: callId, RemoteException(.rpcServer, "cannot encode the answer: \(error)"))
        }
    }

    /// What the caller sees of an error: a `RemoteException` as it is, a malformed request as an
    /// `RpcServerException`, anything else as an `IOException`.
    static func remoteException(_ error: any Error) -> RemoteException {
        switch error {
        case let error as RemoteException: error
        case let error as WireProtocolError: RemoteException(.rpcServer, error.message)
        default: RemoteException(.io, "\(error)")
        }
    }

    static func errorFrame(callId: UInt64, _ error: RemoteException) -> WireFrame {
        var header = Strata_Wire_ResponseHeader()
        header.callID = callId
        header.ok = false
        header.exceptionClass = error.exceptionClass.rawValue
        header.message = error.message
        // Serializing a plain header cannot fail.
        return WireFrame(header: try! header.serializedBuffer(), body: ByteBuffer())
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("RPC connection error from \(String(describing: context.remoteAddress)): \(error)")
        context.close(promise: nil)
    }
}
