import NIOCore

/// What a data node reads on a Hadoop data transfer connection.
public enum HadoopTransferInbound: Sendable {
    /// An operation and its message's bytes.
    case request(HadoopDataTransfer.Op, ByteBuffer)
    /// A packet of block data (after OP_WRITE_BLOCK).
    case packet(HadoopPacket)
    /// The client's varint-delimited `ClientReadStatusProto` after a read.
    case readStatus(ByteBuffer)
    /// The stream broke the protocol (wrong version, unknown op, a length over its bound, a
    /// packet that does not parse); nothing more is read from it.
    case malformed(HadoopTransferError)
}

/// Splits a Hadoop data transfer byte stream into requests, packets and read statuses.
///
/// A connection carries operations one after another (Hadoop clients keep connections to data
/// nodes for further reads): after OP_READ_BLOCK comes the client's read status, then the next
/// operation; after OP_WRITE_BLOCK, packets until the connection closes; after any other, the
/// next operation.
public struct HadoopTransferDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = HadoopTransferInbound

    enum State: Sendable {
        case request
        case opMessage(HadoopDataTransfer.Op)
        case packets
        case readStatus
        case failed
    }

    private var state = State.request

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        do {
            guard let message = try next(&buffer) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(message))
            return .continue
        } catch let error as HadoopTransferError {
            state = .failed
            buffer.moveReaderIndex(to: buffer.writerIndex)
            context.fireChannelRead(wrapInboundOut(.malformed(error)))
            return .needMoreData
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial message at the end of the stream is dropped: the peer went away mid-message.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// The next message in `buffer`, or nil until it has all arrived.
    mutating func next(_ buffer: inout ByteBuffer) throws -> HadoopTransferInbound? {
        switch state {
        case .failed:
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        case .request:
            guard let version = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                let opByte = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt8.self)
            else { return nil }
            guard version == HadoopDataTransfer.version else {
                throw HadoopTransferError("Version Mismatch (Expected: \(HadoopDataTransfer.version), Received: \(version))")
            }
            guard let op = HadoopDataTransfer.Op(rawValue: opByte) else {
                throw HadoopTransferError("Unknown op \(opByte) in data stream")
            }
            buffer.moveReaderIndex(forwardBy: 3)
            state = .opMessage(op)
            return try next(&buffer)
        case .opMessage(let op):
            guard let message = try HadoopDataTransfer.readDelimited(from: &buffer, maximumBytes: HadoopDataTransfer.maximumOpMessageBytes)
            else { return nil }
            switch op {
            case .writeBlock: state = .packets
            case .readBlock: state = .readStatus
            default: state = .request
            }
            return .request(op, message)
        case .packets:
            guard let packet = try HadoopPacket.read(from: &buffer) else { return nil }
            return .packet(packet)
        case .readStatus:
            guard let message = try HadoopDataTransfer.readDelimited(from: &buffer, maximumBytes: HadoopDataTransfer.maximumOpMessageBytes)
            else { return nil }
            state = .request
            return .readStatus(message)
        }
    }
}
