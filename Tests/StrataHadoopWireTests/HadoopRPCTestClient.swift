import Foundation
import NIOCore
import NIOPosix
import SwiftProtobuf
import Testing

@testable import StrataHadoopWire

/// A Hadoop RPC client written from the protocol's definition, for tests: it sends exactly the
/// bytes a test asks for and reads answers packet by packet.
final class HadoopRPCTestClient {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var pending = ByteBuffer()
    private var nextCallId: Int32 = 0
    let clientId: Data

    private init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, clientId: Data) {
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.clientId = clientId
    }

    /// Connects to `port`, runs `body` and closes. `user` nil: no connection header or context
    /// is sent (the test sends its own bytes). `clientId`: the RPC client id (random when nil);
    /// a client that reconnects keeps its id.
    static func with<Result: Sendable>(
        port: Int, user: String? = "strata", clientId: Data? = nil, _ body: (HadoopRPCTestClient) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let client = HadoopRPCTestClient(
                inbound: inbound, outbound: outbound, clientId: clientId ?? Data((0..<16).map { _ in UInt8.random(in: 0...255) }))
            if let user { try await client.open(user: user) }
            return try await body(client)
        }
    }

    /// The connection header (`hrpc`, version 9, service class 0, auth none) and the context.
    func open(user: String, version: UInt8 = 9, authProtocol: UInt8 = 0) async throws {
        try await send(HadoopRPC.magic + [version, 0, authProtocol])
        var context = Hadoop_Common_IpcConnectionContextProto()
        context.userInfo.effectiveUser = user
        context.protocol = HadoopRPC.clientProtocolName
        try await send(packet([delimited(rpcHeader(callId: HadoopRPC.connectionContextCallId)), delimited(context)]))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    func rpcHeader(callId: Int32, retryCount: Int32 = 0) -> Hadoop_Common_RpcRequestHeaderProto {
        var header = Hadoop_Common_RpcRequestHeaderProto()
        header.rpcKind = .rpcProtocolBuffer
        header.rpcOp = .rpcFinalPacket
        header.callID = callId
        header.clientID = clientId
        header.retryCount = retryCount
        return header
    }

    /// The bytes of one call's packet.
    func callPacket(
        callId: Int32, method: String, _ request: some SwiftProtobuf.Message,
        protocolName: String = HadoopRPC.clientProtocolName, retryCount: Int32 = 0
    ) throws -> [UInt8] {
        var header = Hadoop_Common_RequestHeaderProto()
        header.methodName = method
        header.declaringClassProtocolName = protocolName
        header.clientProtocolVersion = 1
        return packet([delimited(rpcHeader(callId: callId, retryCount: retryCount)), delimited(header), delimited(request)])
    }

    /// Sends a call; returns its call id.
    @discardableResult
    func start(_ method: String, _ request: some SwiftProtobuf.Message, protocolName: String = HadoopRPC.clientProtocolName)
        async throws -> Int32
    {
        let callId = nextCallId
        nextCallId += 1
        try await send(try callPacket(callId: callId, method: method, request, protocolName: protocolName))
        return callId
    }

    /// The next answer: its header and, on success, the response message's bytes; nil once
    /// the server closed the connection.
    func readResponse() async throws -> (header: Hadoop_Common_RpcResponseHeaderProto, body: ByteBuffer)? {
        while true {
            if let length = pending.getInteger(at: pending.readerIndex, as: UInt32.self),
                pending.readableBytes >= 4 + Int(length)
            {
                pending.moveReaderIndex(forwardBy: 4)
                var packet = pending.readSlice(length: Int(length))!
                let headerBytes = try #require(Varint.readDelimited(from: &packet))
                let header = try Hadoop_Common_RpcResponseHeaderProto(serializedBytes: Array(buffer: headerBytes))
                let body = packet.readableBytes > 0 ? try #require(Varint.readDelimited(from: &packet)) : ByteBuffer()
                return (header, body)
            }
            guard var next = try await inbound.next() else { return nil }
            pending.writeBuffer(&next)
        }
    }

    /// Calls `method` and decodes its response; an error answer throws `RemoteError`.
    func call<Response: SwiftProtobuf.Message>(_ method: String, _ request: some SwiftProtobuf.Message, as: Response.Type)
        async throws -> Response
    {
        let callId = try await start(method, request)
        let answer = try #require(try await readResponse(), "connection closed instead of answering \(method)")
        #expect(Int32(bitPattern: answer.header.callID) == callId)
        guard answer.header.status == .success else {
            throw RemoteError(className: answer.header.exceptionClassName, message: answer.header.errorMsg)
        }
        return try Response(serializedBytes: Array(buffer: answer.body))
    }

    /// Calls `method` with the given call id and retry count, as a client does that calls again
    /// after losing the answer; an error answer throws `RemoteError`.
    func call<Response: SwiftProtobuf.Message>(
        _ method: String, _ request: some SwiftProtobuf.Message, callId: Int32, retryCount: Int32, as: Response.Type
    ) async throws -> Response {
        try await send(try callPacket(callId: callId, method: method, request, retryCount: retryCount))
        let answer = try #require(try await readResponse(), "connection closed instead of answering \(method)")
        #expect(Int32(bitPattern: answer.header.callID) == callId)
        #expect(answer.header.retryCount == retryCount, "the answer carries the call's retry count")
        guard answer.header.status == .success else {
            throw RemoteError(className: answer.header.exceptionClassName, message: answer.header.errorMsg)
        }
        return try Response(serializedBytes: Array(buffer: answer.body))
    }

    struct RemoteError: Error {
        var className: String
        var message: String
    }

    func packet(_ parts: [[UInt8]]) -> [UInt8] {
        let body = parts.flatMap { $0 }
        return withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init) + body
    }

    func delimited(_ message: some SwiftProtobuf.Message) -> [UInt8] {
        let bytes: [UInt8] = try! message.serializedBytes(partial: true)
        var buffer = ByteBuffer()
        Varint.write(UInt64(bytes.count), to: &buffer)
        return Array(buffer: buffer) + bytes
    }
}
