import NIOCore
import SwiftProtobuf

/// One packet of block data as HDFS frames it (`PacketReceiver`, `PacketHeader`):
///
///     u32 payload length   4 + checksum bytes + data bytes (it counts itself, not what follows it up to the header)
///     u16 header length
///     PacketHeaderProto    offsetInBlock, seqno, lastPacketInBlock, dataLen (fixed-width fields)
///     checksums            one per chunk of the data, big-endian
///     data
///
/// All integers big-endian.
public struct HadoopPacket: Sendable {
    public var header: Hadoop_Hdfs_PacketHeaderProto
    public var checksums: ByteBuffer
    public var data: ByteBuffer

    public init(header: Hadoop_Hdfs_PacketHeaderProto, checksums: ByteBuffer, data: ByteBuffer) {
        self.header = header
        self.checksums = checksums
        self.data = data
    }

    public init(offsetInBlock: Int64, sequenceNumber: Int64, last: Bool, sync: Bool = false, checksums: ByteBuffer, data: ByteBuffer) {
        var header = Hadoop_Hdfs_PacketHeaderProto()
        header.offsetInBlock = offsetInBlock
        header.seqno = sequenceNumber
        header.lastPacketInBlock = last
        header.dataLen = Int32(data.readableBytes)
        if sync { header.syncBlock = true }
        self.init(header: header, checksums: checksums, data: data)
    }

    /// Appends the packet's wire form to `buffer`.
    public func write(to buffer: inout ByteBuffer) throws {
        let headerBytes: [UInt8] = try header.serializedBytes(partial: true)
        buffer.reserveCapacity(minimumWritableBytes: 6 + headerBytes.count + checksums.readableBytes + data.readableBytes)
        buffer.writeInteger(UInt32(4 + checksums.readableBytes + data.readableBytes))
        buffer.writeInteger(UInt16(headerBytes.count))
        buffer.writeBytes(headerBytes)
        var checksums = self.checksums
        var data = self.data
        buffer.writeBuffer(&checksums)
        buffer.writeBuffer(&data)
    }

    /// The packet's wire form as its lengths, header and checksums, then its data as it is
    /// (not copied): what a sender writes one after the other.
    public func wireBuffers() throws -> [ByteBuffer] {
        let headerBytes: [UInt8] = try header.serializedBytes(partial: true)
        var prefix = ByteBuffer()
        prefix.reserveCapacity(6 + headerBytes.count + checksums.readableBytes)
        prefix.writeInteger(UInt32(4 + checksums.readableBytes + data.readableBytes))
        prefix.writeInteger(UInt16(headerBytes.count))
        prefix.writeBytes(headerBytes)
        var checksums = self.checksums
        prefix.writeBuffer(&checksums)
        return [prefix, data]
    }

    public func encoded() throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try write(to: &buffer)
        return buffer
    }

    /// Reads one packet from `buffer`: nil if it does not hold the whole packet yet (nothing
    /// consumed); throws on lengths out of bounds or a header that is not a PacketHeaderProto.
    public static func read(from buffer: inout ByteBuffer, maximumBytes: Int = HadoopDataTransfer.maximumPacketBytes) throws -> HadoopPacket? {
        guard let payloadLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let headerLength = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt16.self)
        else { return nil }
        guard payloadLength >= 4, Int(payloadLength) + Int(headerLength) <= maximumBytes else {
            throw HadoopTransferError("packet payload of \(payloadLength) bytes outside 4...\(maximumBytes)")
        }
        guard headerLength > 0, Int(headerLength) <= HadoopDataTransfer.maximumPacketHeaderBytes else {
            throw HadoopTransferError("packet header of \(headerLength) bytes outside 1...\(HadoopDataTransfer.maximumPacketHeaderBytes)")
        }
        let total = 6 + Int(headerLength) + Int(payloadLength) - 4
        guard buffer.readableBytes >= total else {
            buffer.reserveCapacity(minimumWritableBytes: total - buffer.readableBytes)
            return nil
        }
        buffer.moveReaderIndex(forwardBy: 6)
        let headerBytes = buffer.readSlice(length: Int(headerLength))!
        var payload = buffer.readSlice(length: Int(payloadLength) - 4)!
        let header: Hadoop_Hdfs_PacketHeaderProto
        do {
            header = try HadoopDataTransfer.decode(Hadoop_Hdfs_PacketHeaderProto.self, from: headerBytes)
        } catch {
            throw HadoopTransferError("packet header is not a PacketHeaderProto: \(error)")
        }
        let dataLength = Int(header.dataLen)
        guard dataLength >= 0, dataLength <= payload.readableBytes else {
            throw HadoopTransferError("packet says it holds \(header.dataLen) data bytes in a payload of \(payload.readableBytes)")
        }
        let checksums = payload.readSlice(length: payload.readableBytes - dataLength)!
        return HadoopPacket(header: header, checksums: checksums, data: payload)
    }
}
