/// The end of a finished block file: the frame index (the file offset of every frame, 8 bytes
/// each) followed by a fixed 24-byte tail (all integers little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | raw length of the block |
/// | 8 | 4 | frame count |
/// | 12 | 4 | CRC32C of the frame index |
/// | 16 | 4 | CRC32C of bytes 0..<16 of this tail |
/// | 20 | 4 | magic `SBLE` |
///
/// The trailer makes a finished block self-describing: a reader maps an offset to its frame
/// with no scan, and a file cut short anywhere (even between two frames) is detected.
public struct BlockTrailer: Equatable, Sendable {
    public static let tailSize = 24
    public static let magic: [UInt8] = Array("SBLE".utf8)

    public var rawLength: UInt64
    public var frameOffsets: [UInt64]

    public init(rawLength: UInt64, frameOffsets: [UInt64]) {
        self.rawLength = rawLength
        self.frameOffsets = frameOffsets
    }

    public var encodedSize: Int { frameOffsets.count * 8 + Self.tailSize }

    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: encodedSize)
        bytes.withUnsafeMutableBytes { out in
            for (index, offset) in frameOffsets.enumerated() {
                out.storeLittleEndian(offset, at: index * 8)
            }
            let indexEnd = frameOffsets.count * 8
            let indexCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0..<indexEnd]))
            out.storeLittleEndian(rawLength, at: indexEnd)
            out.storeLittleEndian(UInt32(frameOffsets.count), at: indexEnd + 8)
            out.storeLittleEndian(indexCRC, at: indexEnd + 12)
            let tailCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[indexEnd..<(indexEnd + 16)]))
            out.storeLittleEndian(tailCRC, at: indexEnd + 16)
            for (index, byte) in Self.magic.enumerated() { out[indexEnd + 20 + index] = byte }
        }
        return bytes
    }

    /// The fields of a tail: raw length, frame count and index checksum.
    struct Tail {
        var rawLength: UInt64
        var frameCount: Int
        var indexChecksum: UInt32
    }

    static func decodeTail(_ bytes: [UInt8], fileOffset: UInt64) throws(BlockFormatError) -> Tail {
        precondition(bytes.count == tailSize)
        return try bytes.withBytes { (raw) throws(BlockFormatError) -> Tail in
            guard Array(raw[20..<24]) == magic else {
                throw BlockFormatError(
                    .truncated, "no block trailer at the end of the file (an unfinished or cut-short block)",
                    fileOffset: fileOffset + 20)
            }
            let stored = raw.loadLittleEndian(at: 16, as: UInt32.self)
            let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<16]))
            guard stored == actual else {
                throw BlockFormatError(
                    .trailerChecksumMismatch, "stored \(hex(stored)), computed \(hex(actual))", fileOffset: fileOffset)
            }
            return Tail(
                rawLength: raw.loadLittleEndian(at: 0, as: UInt64.self),
                frameCount: Int(raw.loadLittleEndian(at: 8, as: UInt32.self)),
                indexChecksum: raw.loadLittleEndian(at: 12, as: UInt32.self))
        }
    }

    static func decodeIndex(_ bytes: [UInt8], expectedChecksum: UInt32, fileOffset: UInt64) throws(BlockFormatError) -> [UInt64] {
        let actual = CRC32C.checksum(bytes)
        guard actual == expectedChecksum else {
            throw BlockFormatError(
                .indexChecksumMismatch, "stored \(hex(expectedChecksum)), computed \(hex(actual))", fileOffset: fileOffset)
        }
        return bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / 8)).map { raw.loadLittleEndian(at: $0 * 8, as: UInt64.self) }
        }
    }
}
