/// The fixed 24-byte header before every frame's payload (all integers little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | raw length (bytes the frame decodes to) |
/// | 4 | 4 | stored length (payload bytes that follow the header) |
/// | 8 | 1 | codec (0 raw, 1 zstd) |
/// | 9 | 3 | reserved, zero |
/// | 12 | 4 | CRC32C of the stored payload |
/// | 16 | 4 | CRC32C of the raw bytes |
/// | 20 | 4 | CRC32C of bytes 0..<20 of this header |
///
/// The header's own checksum means a damaged length is caught before it is used to size a read.
public struct FrameHeader: Equatable, Sendable {
    public static let encodedSize = 24

    public var rawLength: UInt32
    public var storedLength: UInt32
    public var codec: FrameCodec
    public var storedChecksum: UInt32
    public var rawChecksum: UInt32

    public init(rawLength: UInt32, storedLength: UInt32, codec: FrameCodec, storedChecksum: UInt32, rawChecksum: UInt32) {
        self.rawLength = rawLength
        self.storedLength = storedLength
        self.codec = codec
        self.storedChecksum = storedChecksum
        self.rawChecksum = rawChecksum
    }

    /// Bytes the whole frame (header and payload) takes.
    public var frameLength: Int { Self.encodedSize + Int(storedLength) }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.encodedSize)
        out.storeLittleEndian(rawLength, at: 0)
        out.storeLittleEndian(storedLength, at: 4)
        out[8] = codec.rawValue
        out[9] = 0
        out[10] = 0
        out[11] = 0
        out.storeLittleEndian(storedChecksum, at: 12)
        out.storeLittleEndian(rawChecksum, at: 16)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0..<20]))
        out.storeLittleEndian(crc, at: 20)
    }

    /// Decodes and checks a frame header. Errors carry no location; the caller adds it.
    public static func decode(_ raw: UnsafeRawBufferPointer) throws(BlockFormatError) -> FrameHeader {
        guard raw.count >= encodedSize else {
            throw BlockFormatError(.truncated, "frame header needs \(encodedSize) bytes, found \(raw.count)")
        }
        let storedCRC = raw.loadLittleEndian(at: 20, as: UInt32.self)
        let actualCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<20]))
        guard storedCRC == actualCRC else {
            throw BlockFormatError(
                .frameHeaderChecksumMismatch, "stored \(hex(storedCRC)), computed \(hex(actualCRC))")
        }
        guard let codec = FrameCodec(rawValue: raw[8]) else {
            throw BlockFormatError(.invalidFrameHeader, "unknown codec \(raw[8])")
        }
        guard raw[9] == 0 && raw[10] == 0 && raw[11] == 0 else {
            throw BlockFormatError(.invalidFrameHeader, "reserved bytes are not zero")
        }
        return FrameHeader(
            rawLength: raw.loadLittleEndian(at: 0, as: UInt32.self),
            storedLength: raw.loadLittleEndian(at: 4, as: UInt32.self),
            codec: codec,
            storedChecksum: raw.loadLittleEndian(at: 12, as: UInt32.self),
            rawChecksum: raw.loadLittleEndian(at: 16, as: UInt32.self))
    }
}
