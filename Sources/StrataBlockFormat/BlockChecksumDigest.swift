/// HDFS's checksum of one block (`MD5MD5CRC32CastagnoliFileChecksum`'s per-block part, what a data
/// node answers OP_BLOCK_CHECKSUM with): the CRC32C of every 512-byte chunk of the block's raw
/// bytes (the last chunk may be shorter), each written as 4 bytes big-endian, and the MD5 of
/// those CRCs. Fed the raw bytes in order.
public struct BlockChecksumDigest: Sendable {
    public static let bytesPerCRC = 512

    private var md5 = MD5()
    private var crc: UInt32 = 0
    private var chunkFill = 0
    /// CRCs taken so far (HDFS's `crcPerBlock` for a whole block).
    public private(set) var crcCount: UInt64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var start = 0
        while start < bytes.count {
            let take = min(Self.bytesPerCRC - chunkFill, bytes.count - start)
            crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + take)]), continuing: crc)
            chunkFill += take
            start += take
            if chunkFill == Self.bytesPerCRC { endChunk() }
        }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    private mutating func endChunk() {
        md5.update([UInt8(truncatingIfNeeded: crc >> 24), UInt8(truncatingIfNeeded: crc >> 16), UInt8(truncatingIfNeeded: crc >> 8), UInt8(truncatingIfNeeded: crc)])
        crcCount += 1
        crc = 0
        chunkFill = 0
    }

    /// The block's MD5 (16 bytes), counting a last partial chunk.
    public mutating func finish() -> [UInt8] {
        if chunkFill > 0 { endChunk() }
        return md5.finish()
    }
}
