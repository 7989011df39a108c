import CZlib
import NIOCore
import StrataBlockFormat

/// HDFS's per-chunk checksums (`DataChecksum`): a CRC of every `bytesPerChecksum` bytes of block
/// data (the last chunk may be shorter), each 4 bytes big-endian. CRC32C with ISA-L, CRC32 (the
/// gzip polynomial) with zlib; NULL means none.
public struct HadoopChunkChecksum: Sendable, Equatable {
    public var type: Hadoop_Hdfs_ChecksumTypeProto
    public var bytesPerChecksum: Int

    public init(type: Hadoop_Hdfs_ChecksumTypeProto, bytesPerChecksum: Int) {
        self.type = type
        self.bytesPerChecksum = bytesPerChecksum
    }

    /// What Strata's data nodes compute for reads: CRC32C per 512 bytes.
    public static let crc32c512 = HadoopChunkChecksum(type: .checksumCrc32C, bytesPerChecksum: HadoopDataTransfer.bytesPerChecksum)
    /// No checksums (a read with `sendChecksums` false), in chunks of the same size.
    public static let none512 = HadoopChunkChecksum(type: .checksumNull, bytesPerChecksum: HadoopDataTransfer.bytesPerChecksum)

    /// Validates a writer's requested checksum.
    public init(requested: Hadoop_Hdfs_ChecksumProto) throws {
        guard requested.bytesPerChecksum > 0, Int(requested.bytesPerChecksum) <= HadoopDataTransfer.maximumBytesPerChecksum else {
            throw HadoopTransferError(
                "bytesPerChecksum \(requested.bytesPerChecksum) outside 1...\(HadoopDataTransfer.maximumBytesPerChecksum)")
        }
        self.init(type: requested.type, bytesPerChecksum: Int(requested.bytesPerChecksum))
    }

    public var proto: Hadoop_Hdfs_ChecksumProto {
        var proto = Hadoop_Hdfs_ChecksumProto()
        proto.type = type
        proto.bytesPerChecksum = UInt32(bytesPerChecksum)
        return proto
    }

    /// Bytes of one chunk's checksum.
    public var checksumSize: Int { type == .checksumNull ? 0 : 4 }

    /// Chunks covering `dataLength` bytes.
    public func chunkCount(_ dataLength: Int) -> Int { (dataLength + bytesPerChecksum - 1) / bytesPerChecksum }

    /// The checksum of one chunk.
    public func checksum(_ chunk: UnsafeRawBufferPointer) -> UInt32 {
        switch type {
        case .checksumCrc32C:
            return CRC32C.checksum(chunk)
        case .checksumCrc32:
            guard let base = chunk.baseAddress, chunk.count > 0 else { return 0 }
            return UInt32(truncatingIfNeeded: crc32(0, base.assumingMemoryBound(to: Bytef.self), uInt(chunk.count)))
        case .checksumNull:
            return 0
        }
    }

    /// Appends the checksums of `data`'s chunks to `output`.
    public func writeChecksums(of data: UnsafeRawBufferPointer, to output: inout ByteBuffer) {
        guard checksumSize > 0 else { return }
        var start = 0
        while start < data.count {
            let end = min(data.count, start + bytesPerChecksum)
            output.writeInteger(checksum(UnsafeRawBufferPointer(rebasing: data[start..<end])))
            start = end
        }
    }

    /// Checks `data` against the `checksums` a writer sent: nil if they hold, else a message
    /// naming the first chunk that does not.
    public func verify(data: ByteBuffer, checksums: ByteBuffer, offsetInBlock: Int64) -> String? {
        let expectedLength = chunkCount(data.readableBytes) * checksumSize
        guard checksums.readableBytes == expectedLength else {
            return "packet at offset \(offsetInBlock) carries \(checksums.readableBytes) checksum bytes for \(data.readableBytes) data bytes, expected \(expectedLength)"
        }
        guard checksumSize > 0 else { return nil }
        return data.withUnsafeReadableBytes { bytes -> String? in
            var start = 0
            var index = checksums.readerIndex
            while start < bytes.count {
                let end = min(bytes.count, start + bytesPerChecksum)
                let expected = checksums.getInteger(at: index, as: UInt32.self)!
                let actual = checksum(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                if actual != expected {
                    return "Checksum error: chunk at offset \(offsetInBlock + Int64(start)) of \(end - start) bytes has \(type) "
                        + "0x\(String(actual, radix: 16)), the writer sent 0x\(String(expected, radix: 16))"
                }
                start = end
                index += 4
            }
            return nil
        }
    }
}
