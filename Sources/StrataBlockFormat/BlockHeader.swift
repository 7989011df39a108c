import StrataCore

/// The fixed 32-byte header at the start of every block file (all integers little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `SBLK` |
/// | 4 | 2 | format version (1) |
/// | 6 | 1 | codec the writer tries for each frame (0 raw, 1 zstd) |
/// | 7 | 1 | zstd level (signed) |
/// | 8 | 4 | raw frame size in bytes |
/// | 12 | 8 | block id |
/// | 20 | 8 | generation stamp |
/// | 28 | 4 | CRC32C of bytes 0..<28 |
public struct BlockHeader: Equatable, Sendable {
    public static let magic: [UInt8] = Array("SBLK".utf8)
    public static let currentFormatVersion: UInt16 = 1
    public static let encodedSize = 32

    public var formatVersion: UInt16
    public var codec: FrameCodec
    public var zstdLevel: Int8
    public var rawFrameSizeBytes: UInt32
    public var blockId: UInt64
    public var generationStamp: UInt64

    public init(
        blockId: UInt64, generationStamp: UInt64, rawFrameSizeBytes: Int = Limits.defaultRawFrameSizeBytes,
        codec: FrameCodec = .zstd, zstdLevel: Int32 = Limits.defaultZstdLevel
    ) {
        precondition(
            rawFrameSizeBytes >= Limits.minimumRawFrameSizeBytes && rawFrameSizeBytes <= Limits.maximumRawFrameSizeBytes,
            "raw frame size out of range")
        self.formatVersion = Self.currentFormatVersion
        self.codec = codec
        self.zstdLevel = Int8(clamping: zstdLevel)
        self.rawFrameSizeBytes = UInt32(rawFrameSizeBytes)
        self.blockId = blockId
        self.generationStamp = generationStamp
    }

    public var rawFrameSize: Int { Int(rawFrameSizeBytes) }

    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.encodedSize)
        bytes.withUnsafeMutableBytes { out in
            for (index, byte) in Self.magic.enumerated() { out[index] = byte }
            out.storeLittleEndian(formatVersion, at: 4)
            out[6] = codec.rawValue
            out.storeLittleEndian(zstdLevel, at: 7)
            out.storeLittleEndian(rawFrameSizeBytes, at: 8)
            out.storeLittleEndian(blockId, at: 12)
            out.storeLittleEndian(generationStamp, at: 20)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0..<28]))
            out.storeLittleEndian(crc, at: 28)
        }
        return bytes
    }

    /// Decodes and checks a header. Errors carry no path; the caller adds it.
    public static func decode(_ bytes: [UInt8]) throws(BlockFormatError) -> BlockHeader {
        guard bytes.count >= encodedSize else {
            throw BlockFormatError(.truncated, "file has \(bytes.count) bytes, a block header needs \(encodedSize)", fileOffset: 0)
        }
        return try bytes.withBytes { (raw) throws(BlockFormatError) -> BlockHeader in
            guard Array(raw[0..<4]) == magic else {
                throw BlockFormatError(.badMagic, "expected \"SBLK\", found \(Array(raw[0..<4]))", fileOffset: 0)
            }
            let storedCRC = raw.loadLittleEndian(at: 28, as: UInt32.self)
            let actualCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<28]))
            let version = raw.loadLittleEndian(at: 4, as: UInt16.self)
            guard storedCRC == actualCRC else {
                throw BlockFormatError(
                    .headerChecksumMismatch, "stored \(hex(storedCRC)), computed \(hex(actualCRC))", fileOffset: 0)
            }
            guard version == currentFormatVersion else {
                throw BlockFormatError(
                    .unsupportedVersion, "version \(version); this build reads version \(currentFormatVersion)",
                    fileOffset: 4)
            }
            guard let codec = FrameCodec(rawValue: raw[6]) else {
                throw BlockFormatError(.invalidHeader, "unknown codec \(raw[6])", fileOffset: 6)
            }
            let frameSize = raw.loadLittleEndian(at: 8, as: UInt32.self)
            guard frameSize >= Limits.minimumRawFrameSizeBytes && frameSize <= Limits.maximumRawFrameSizeBytes else {
                throw BlockFormatError(.invalidHeader, "raw frame size \(frameSize) out of range", fileOffset: 8)
            }
            var header = BlockHeader(
                blockId: raw.loadLittleEndian(at: 12, as: UInt64.self),
                generationStamp: raw.loadLittleEndian(at: 20, as: UInt64.self),
                rawFrameSizeBytes: Int(frameSize), codec: codec)
            header.zstdLevel = raw.loadLittleEndian(at: 7, as: Int8.self)
            return header
        }
    }
}
