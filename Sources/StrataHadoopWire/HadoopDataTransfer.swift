import NIOCore
import StrataBlockFormat
import SwiftProtobuf

/// Constants and bounds of Hadoop's DataTransferProtocol (hadoop-hdfs-client
/// `DataTransferProtocol`, `Op`, `PacketReceiver`) as Strata's data nodes serve it.
///
/// A request is the 2-byte big-endian protocol version, an op byte and the op's message,
/// varint-delimited. Block data then flows in packets (see `HadoopPacket`); the answers are
/// varint-delimited `BlockOpResponseProto`s and `PipelineAckProto`s.
public enum HadoopDataTransfer {
    /// `DataTransferProtocol.DATA_TRANSFER_VERSION`, what Hadoop 2 and 3 clients send.
    public static let version: UInt16 = 28
    /// The first byte of every Hadoop data transfer connection (the version's high byte): what the
    /// transfer port recognises it by, so that any version reaches the handler and is answered
    /// with a clear mismatch rather than a silently closed connection.
    public static let magic: [UInt8] = [0]

    /// The seqno of a heartbeat packet: the writer is idle but alive.
    public static let heartbeatSequenceNumber: Int64 = -1

    /// Largest op message accepted (an op names a block, a client and at most a few targets).
    public static let maximumOpMessageBytes = 64 * 1024
    /// Largest packet accepted, as Hadoop's `PacketReceiver.MAX_PACKET_SIZE`.
    public static let maximumPacketBytes = 16 * 1024 * 1024
    /// Largest packet header accepted (a header is 25 to 27 bytes).
    public static let maximumPacketHeaderBytes = 1024
    /// Largest bytesPerChecksum a writer may ask for.
    public static let maximumBytesPerChecksum = 1024 * 1024
    /// Data bytes in each packet a data node sends for a read (Hadoop's data nodes send 64 KiB).
    public static let readPacketDataBytes = 64 * 1024
    /// Chunk size of the checksums Strata reports for reads and block checksums (HDFS's
    /// `dfs.bytes-per-checksum` default): the chunk of the block checksums, so both agree.
    public static let bytesPerChecksum = BlockChecksumDigest.bytesPerCRC

    /// The operations (`org.apache.hadoop.hdfs.protocol.datatransfer.Op`).
    public enum Op: UInt8, Sendable, CaseIterable {
        case writeBlock = 80
        case readBlock = 81
        case readMetadata = 82
        case replaceBlock = 83
        case copyBlock = 84
        case blockChecksum = 85
        case transferBlock = 86
        case requestShortCircuitFds = 87
        case releaseShortCircuitFds = 88
        case requestShortCircuitShm = 89
        case blockGroupChecksum = 90
        case custom = 127
    }

    /// Writes `message` varint-delimited (protobuf's `writeDelimitedTo`).
    public static func writeDelimited(_ message: some SwiftProtobuf.Message, to buffer: inout ByteBuffer) throws {
        let bytes: [UInt8] = try message.serializedBytes(partial: true)
        Varint.write(UInt64(bytes.count), to: &buffer)
        buffer.writeBytes(bytes)
    }

    /// `message` varint-delimited, in a buffer of its own.
    public static func delimited(_ message: some SwiftProtobuf.Message) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try writeDelimited(message, to: &buffer)
        return buffer
    }

    /// Reads one varint-delimited message's bytes: nil if the buffer does not hold it all yet
    /// (nothing consumed); throws if its length is over `maximumBytes`.
    public static func readDelimited(from buffer: inout ByteBuffer, maximumBytes: Int) throws -> ByteBuffer? {
        let start = buffer.readerIndex
        guard let length = Varint.read(from: &buffer) else {
            if buffer.readableBytes >= 10 { throw HadoopTransferError("a message length is not a valid varint") }
            return nil
        }
        guard length <= UInt64(maximumBytes) else {
            throw HadoopTransferError("message of \(length) bytes is over the limit of \(maximumBytes)")
        }
        guard let slice = buffer.readSlice(length: Int(length)) else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        return slice
    }

    /// Decodes a message from a buffer's readable bytes, tolerating missing required fields
    /// (as Hadoop's data nodes give them defaults).
    public static func decode<Message: SwiftProtobuf.Message>(_ type: Message.Type, from buffer: ByteBuffer) throws(HadoopTransferError) -> Message {
        do {
            return try Message(bufferBytes: buffer)
        } catch {
            throw HadoopTransferError("cannot decode \(Message.protoMessageName): \(error)")
        }
    }
}

/// A Hadoop data transfer broke the protocol; the message says how (for the peer and the log).
public struct HadoopTransferError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
