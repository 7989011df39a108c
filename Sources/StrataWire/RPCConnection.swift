import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import StrataCore
import Synchronization
import SwiftProtobuf

/// The caller could not reach the service, or lost it mid-call.
public struct RPCConnectionError: Error, CustomStringConvertible, Sendable {
    public var address: String
    public var reason: String
    public var description: String { "cannot reach \(address): \(reason)" }
}

/// A client connection to a Strata RPC server. Calls may be issued concurrently; each waits for
/// its own answer.
public final class RPCConnection: Sendable {
    public let address: String
    private let channel: any Channel
    private let nextCallId = Atomic<UInt64>(1)

    private init(address: String, channel: any Channel) {
        self.address = address
        self.channel = channel
    }

    public static func connect(host: String, port: Int, group: any EventLoopGroup) async throws -> RPCConnection {
        let address = "\(host):\(port)"
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WireFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WireFrameEncoder(preamble: .rpc)))
                    try channel.pipeline.syncOperations.addHandler(RPCClientHandler(address: address))
                }
            }
        do {
            let channel = try await bootstrap.connect(host: host, port: port).get()
            return RPCConnection(address: address, channel: channel)
        } catch {
            throw RPCConnectionError(address: address, reason: "\(error)")
        }
    }

    public var isActive: Bool { channel.isActive }

    /// Calls `method` and decodes its answer; a service-side error arrives as `RemoteException`.
    public func call<Response: SwiftProtobuf.Message>(
        _ method: NameNodeMethod, _ request: some SwiftProtobuf.Message, user: String, clientName: String = "",
        as responseType: Response.Type = Response.self, timeout: TimeAmount = .seconds(120)
    ) async throws -> Response {
        try await call(methodName: method.rawValue, request, user: user, clientName: clientName, as: responseType, timeout: timeout)
    }

    /// Calls a method by its wire name, which the server may not know: tests use it to check the
    /// answer to an unknown method.
    func call<Response: SwiftProtobuf.Message>(
        methodName method: String, _ request: some SwiftProtobuf.Message, user: String, clientName: String = "",
        as responseType: Response.Type = Response.self, timeout: TimeAmount = .seconds(120)
    ) async throws -> Response {
        var header = Strata_Wire_RequestHeader()
        header.callID = nextCallId.add(1, ordering: .relaxed).oldValue
        header.method = method
        header.user = user
        header.clientName = clientName
        let frame = WireFrame(header: try header.serializedBuffer(), body: try request.serializedBuffer())
        let promise = channel.eventLoop.makePromise(of: (Strata_Wire_ResponseHeader, ByteBuffer).self)
        let outbound = RPCClientHandler.Outbound(callId: header.callID, frame: frame, promise: promise)
        let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(RPCConnectionError(address: self.address, reason: "no answer to \(method) within \(timeout.nanoseconds / 1_000_000_000) s"))
        }
        channel.writeAndFlush(outbound, promise: nil)
        let (responseHeader, body): (Strata_Wire_ResponseHeader, ByteBuffer)
        do {
            (responseHeader, body) = try await promise.futureResult.get()
        } catch {
            timeoutTask.cancel()
            throw error
        }
        timeoutTask.cancel()
        guard responseHeader.ok else {
            throw RemoteException(RemoteExceptionClass(rawValue: responseHeader.exceptionClass), responseHeader.message)
        }
        return try Response(buffer: body)
    }

    public func close() async {
        try? await channel.close()
    }

}

final class RPCClientHandler: ChannelDuplexHandler {
    typealias InboundIn = WireFrame
    typealias OutboundIn = Outbound
    typealias OutboundOut = WireFrame

    struct Outbound: Sendable {
        var callId: UInt64
        var frame: WireFrame
        var promise: EventLoopPromise<(Strata_Wire_ResponseHeader, ByteBuffer)>
    }

    private let address: String
    private var pending: [UInt64: EventLoopPromise<(Strata_Wire_ResponseHeader, ByteBuffer)>] = [:]
    private var closedReason: String?

    init(address: String) {
        self.address = address
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outbound = unwrapOutboundIn(data)
        if let closedReason {
            outbound.promise.fail(RPCConnectionError(address: address, reason: closedReason))
            promise?.fail(RPCConnectionError(address: address, reason: closedReason))
            return
        }
        pending[outbound.callId] = outbound.promise
        // A call that times out must not stay in the table.
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        outbound.promise.futureResult.whenComplete { _ in handler.value.pending[outbound.callId] = nil }
        context.write(wrapOutboundOut(outbound.frame), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let header = try? Strata_Wire_ResponseHeader(buffer: frame.header) else {
            failAll(context: context, reason: "malformed response header")
            context.close(promise: nil)
            return
        }
        pending.removeValue(forKey: header.callID)?.succeed((header, frame.body))
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(context: context, reason: "connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(context: context, reason: "\(error)")
        context.close(promise: nil)
    }

    private func failAll(context: ChannelHandlerContext, reason: String) {
        closedReason = closedReason ?? reason
        let waiting = pending
        pending = [:]
        for promise in waiting.values {
            promise.fail(RPCConnectionError(address: address, reason: reason))
        }
    }
}
