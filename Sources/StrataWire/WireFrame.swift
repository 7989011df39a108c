import NIOCore
import StrataCore

/// One message on a Strata connection: a protobuf header saying what it is, and a body (a
/// protobuf message, or block data that is passed along without copying).
///
/// On the wire: `u32 frame length`, `u32 header length`, header, body (big-endian lengths;
/// frame length counts everything after itself).
public struct WireFrame: Sendable {
    public var header: ByteBuffer
    public var body: ByteBuffer

    public init(header: ByteBuffer, body: ByteBuffer) {
        self.header = header
        self.body = body
    }
}

/// The 6 bytes a client sends first: which protocol, and its version.
public enum WirePreamble: Sendable {
    case rpc
    case transfer

    public static let version: UInt8 = 1

    public var magic: [UInt8] {
        switch self {
        case .rpc: Array("STRT".utf8)
        case .transfer: Array("STDT".utf8)
        }
    }

    public var bytes: [UInt8] { magic + [Self.version, 0] }
}

/// A connection broke the protocol: it is closed, and this says why (for the log).
public struct WireProtocolError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "protocol error: \(message)" }
}

/// Splits a byte stream into `WireFrame`s, enforcing the size bounds. On the accepting side it
/// first checks the connection's preamble.
public struct WireFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = WireFrame

    private var expectedPreamble: [UInt8]?
    private let maximumFrameBytes: Int

    /// Most room reserved ahead for a frame still arriving: a block transfer packet of
    /// incompressible data and its frame headers.
    static let maximumReservationBytes = Limits.packetRawBytes + 64 * 1024

    public init(expecting preamble: WirePreamble? = nil, maximumFrameBytes: Int = Limits.maximumWireFrameBytes) {
        self.expectedPreamble = preamble?.bytes
        self.maximumFrameBytes = maximumFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let preamble = expectedPreamble {
            guard let received = buffer.readBytes(length: preamble.count) else { return .needMoreData }
            guard received[0..<4] == preamble[0..<4] else {
                throw WireProtocolError("connection did not start with the Strata preamble")
            }
            guard received[4] == WirePreamble.version else {
                throw WireProtocolError("unsupported protocol version \(received[4]); this node speaks \(WirePreamble.version)")
            }
            expectedPreamble = nil
        }
        guard let frameLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard frameLength >= 4, Int(frameLength) <= maximumFrameBytes else {
            throw WireProtocolError("frame of \(frameLength) bytes outside 4...\(maximumFrameBytes)")
        }
        guard buffer.readableBytes >= 4 + Int(frameLength) else {
            // Room for the rest of the frame at once (up to a bound, so a length alone cannot
            // claim much): the reads that follow are appended without the buffer growing, and
            // being copied, step by step.
            let missing = 4 + Int(frameLength) - buffer.readableBytes
            buffer.reserveCapacity(minimumWritableBytes: min(missing, Self.maximumReservationBytes))
            return .needMoreData
        }
        let headerLength = Int(buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self)!)
        guard headerLength <= Limits.maximumWireHeaderBytes, headerLength <= Int(frameLength) - 4 else {
            throw WireProtocolError("header of \(headerLength) bytes does not fit its frame")
        }
        buffer.moveReaderIndex(forwardBy: 8)
        let header = buffer.readSlice(length: headerLength)!
        let body = buffer.readSlice(length: Int(frameLength) - 4 - headerLength)!
        context.fireChannelRead(wrapInboundOut(WireFrame(header: header, body: body)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at end of stream is dropped: the peer went away mid-message.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Writes `WireFrame`s with their length prefixes; on the connecting side, the preamble first.
public final class WireFrameEncoder: MessageToByteEncoder, @unchecked Sendable {
    public typealias OutboundIn = WireFrame

    private var preamble: [UInt8]?

    /// `preamble`: sent before the first frame (the connecting side of a connection).
    public init(preamble: WirePreamble? = nil) {
        self.preamble = preamble?.bytes
    }

    public func encode(data: WireFrame, out: inout ByteBuffer) throws {
        if let preamble {
            out.writeBytes(preamble)
            self.preamble = nil
        }
        let frameLength = 4 + data.header.readableBytes + data.body.readableBytes
        out.reserveCapacity(out.writerIndex + 4 + frameLength)
        out.writeInteger(UInt32(frameLength))
        out.writeInteger(UInt32(data.header.readableBytes))
        var header = data.header
        var body = data.body
        out.writeBuffer(&header)
        out.writeBuffer(&body)
    }
}
