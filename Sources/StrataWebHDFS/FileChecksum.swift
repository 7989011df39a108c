import StrataBlockFormat
import StrataClient
import StrataWire

/// HDFS's default file checksum, `MD5MD5CRC32CastagnoliFileChecksum`: the CRC32C of every
/// 512-byte chunk of raw data (a block's last chunk may be shorter), each written as 4 bytes
/// big-endian; the MD5 of each block's CRCs; the MD5 of those block MD5s in order. The bytes are
/// Hadoop's `write` of the object: `bytesPerCRC` (int, 512), `crcPerBlock` (long: CRCs in the
/// first block when the file has more than one block, else 0) and the 16-byte MD5 — 28 bytes.
/// The algorithm name is `MD5-of-<crcPerBlock>MD5-of-512CRC32C`. Strata keeps its own frame
/// checksums, not HDFS's per-chunk ones, so this reads the file once and computes them.
struct FileChecksum: Sendable, Equatable {
    static let bytesPerCRC = BlockChecksumDigest.bytesPerCRC

    var algorithm: String
    var bytes: [UInt8]

    init(crcPerBlock: UInt64, md5: [UInt8]) {
        algorithm = "MD5-of-\(crcPerBlock)MD5-of-\(Self.bytesPerCRC)CRC32C"
        var bytes: [UInt8] = []
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: Self.bytesPerCRC >> shift)) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: crcPerBlock >> UInt64(shift))) }
        self.bytes = bytes + md5
    }

    /// The CRCs and block MD5 of one block, fed its raw bytes in order (shared with the data
    /// nodes' OP_BLOCK_CHECKSUM, so both give the same block checksums).
    typealias BlockDigest = BlockChecksumDigest

    /// Reads `path` through `client` and computes its checksum; returns it with the bytes read.
    static func compute(path: String, client: DFSClient) async throws -> (FileChecksum, UInt64) {
        var located = try await client.blockLocations(path)
        if located.hasLastBlock { located.blocks.append(located.lastBlock) }
        var fileMD5 = MD5()
        var crcPerBlock: UInt64 = 0
        var total: UInt64 = 0
        for (index, block) in located.blocks.enumerated() where block.block.numBytes > 0 {
            var digest = BlockDigest()
            total += try await client.read(path, offset: block.offset, length: block.block.numBytes) { bytes in
                digest.update(bytes)
            }
            let blockMD5 = digest.finish()
            if index == 0 && located.blocks.count > 1 { crcPerBlock = digest.crcCount }
            fileMD5.update(blockMD5)
        }
        return (FileChecksum(crcPerBlock: crcPerBlock, md5: fileMD5.finish()), total)
    }
}
