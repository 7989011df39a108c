import Logging
import NIOConcurrencyHelpers
import NIOCore
import StrataWire
import SwiftProtobuf

/// Hadoop RPC (ClientProtocol's transport) on a port shared with Strata's RPC.
public enum HadoopRPCServer {
    /// The protocol to pass to `RPCServer.start(sharedPortProtocols:)`: connections that open
    /// with `hrpc` are answered by `handler`.
    public static func sharedPortProtocol(
        logger: Logger, inlineHandler: HadoopRPCInlineHandler? = nil, handler: @escaping HadoopRPCHandler
    ) -> SharedPortProtocol {
        SharedPortProtocol(magic: HadoopRPC.magic) { channel in
            try configure(channel, logger: logger, inlineHandler: inlineHandler, handler: handler)
        }
    }

    /// Adds the Hadoop RPC handlers to the end of a connection's pipeline (on its event loop).
    public static func configure(
        _ channel: any Channel, logger: Logger, inlineHandler: HadoopRPCInlineHandler? = nil, handler: @escaping HadoopRPCHandler
    ) throws {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HadoopRPCFrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(
            HadoopRPCServerHandler(remoteAddress: channel.remoteAddress, inlineHandler: inlineHandler, handler: handler, logger: logger))
    }
}

/// Performs a `HadoopRPCConnection`'s actions: a call the inline handler answers is answered at
/// once (written as calls arrive, flushed once per read burst); any other runs as a task and is
/// answered when it ends (calls of one connection answer in any order, matched by call id); a
/// fatal error is answered, then the connection closed.
final class HadoopRPCServerHandler: ChannelInboundHandler {
    typealias InboundIn = HadoopRPCInbound
    typealias OutboundOut = ByteBuffer

    private var connection: HadoopRPCConnection
    private let handler: HadoopRPCHandler
    private let inlineHandler: HadoopRPCInlineHandler?
    private let logger: Logger
    private let inFlight = NIOLockedValueBox(0)

    init(remoteAddress: SocketAddress?, inlineHandler: HadoopRPCInlineHandler?, handler: @escaping HadoopRPCHandler, logger: Logger) {
        self.connection = HadoopRPCConnection(remoteAddress: remoteAddress)
        self.handler = handler
        self.inlineHandler = inlineHandler
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch connection.on(unwrapInboundIn(data)) {
        case .none:
            break
        case .close:
            context.close(promise: nil)
        case .fatal(let error, let callId):
            fail(context: context, error, callId: callId)
        case .call(let call, let retryCount):
            if let inlineHandler {
                do {
                    if let message = try inlineHandler(call) {
                        context.write(wrapOutboundOut(HadoopRPCResponse.success(call, retryCount: retryCount, message, logger: logger)), promise: nil)
                        return
                    }
                } catch {
                    context.write(wrapOutboundOut(HadoopRPCResponse.failure(call, retryCount: retryCount, error)), promise: nil)
                    return
                }
            }
            start(call, retryCount: retryCount, channel: context.channel)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    private func start(_ call: HadoopRPCCall, retryCount: Int32, channel: any Channel) {
        let admitted = inFlight.withLockedValue { count in
            guard count < HadoopRPC.maximumInFlightCallsPerConnection else { return false }
            count += 1
            return true
        }
        guard admitted else {
            channel.writeAndFlush(HadoopRPCResponse.error(
                callId: call.callId, clientId: call.clientId, retryCount: retryCount,
                javaClassName: RemoteExceptionClass.retriable.javaClassName, message: "too many calls in flight on this connection",
                detail: .errorApplication), promise: nil)
            return
        }
        let handler = self.handler
        let inFlight = self.inFlight
        let logger = self.logger
        Task {
            let response: ByteBuffer
            do {
                response = HadoopRPCResponse.success(call, retryCount: retryCount, try await handler(call), logger: logger)
            } catch {
                response = HadoopRPCResponse.failure(call, retryCount: retryCount, error)
            }
            inFlight.withLockedValue { $0 -= 1 }
            channel.writeAndFlush(response, promise: nil)
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: HadoopRPCFatalError, callId: Int32) {
        logger.info("closing Hadoop RPC connection from \(String(describing: context.remoteAddress)): \(error)")
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(HadoopRPCResponse.fatal(callId: callId, error))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HadoopRPCFatalError {
            fail(context: context, error, callId: HadoopRPC.connectionFailureCallId)
        } else {
            logger.debug("Hadoop RPC connection error from \(String(describing: context.remoteAddress)): \(error)")
            context.close(promise: nil)
        }
    }
}
