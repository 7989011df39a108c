import NIOCore

/// What a Hadoop RPC connection's byte stream holds: the connection header once, then packets.
public enum HadoopRPCInbound: Sendable {
    case connectionHeader(version: UInt8, serviceClass: UInt8, authProtocol: UInt8)
    /// One request packet, without its 4-byte length.
    case packet(ByteBuffer)
}

/// Splits a Hadoop RPC byte stream: the 7-byte connection header (`hrpc`, version, service
/// class, auth protocol), then packets of a big-endian u32 length and that many bytes. A length
/// over `HadoopRPC.maximumPacketBytes` is a fatal error for the connection.
public struct HadoopRPCFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = HadoopRPCInbound

    private var headerSeen = false
    private let maximumPacketBytes: Int

    public init(maximumPacketBytes: Int = HadoopRPC.maximumPacketBytes) {
        self.maximumPacketBytes = maximumPacketBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if !headerSeen {
            guard let header = buffer.readBytes(length: HadoopRPC.connectionHeaderBytes) else { return .needMoreData }
            headerSeen = true
            guard Array(header[0..<4]) == HadoopRPC.magic else {
                throw HadoopRPCFatalError(.fatalInvalidRpcHeader, "the connection did not start with hrpc")
            }
            context.fireChannelRead(wrapInboundOut(.connectionHeader(version: header[4], serviceClass: header[5], authProtocol: header[6])))
            return .continue
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maximumPacketBytes else {
            throw HadoopRPCFatalError(
                .fatalInvalidRpcHeader,
                "Requested data length \(length) is longer than maximum configured RPC length \(maximumPacketBytes)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else {
            buffer.reserveCapacity(minimumWritableBytes: min(4 + Int(length) - buffer.readableBytes, 1024 * 1024))
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(.packet(buffer.readSlice(length: Int(length))!)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial packet at end of stream is dropped: the client went away mid-call.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
