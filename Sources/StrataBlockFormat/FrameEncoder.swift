import StrataCore

/// How frames are encoded.
public struct FrameEncoderOptions: Sendable, Equatable {
    /// The codec to try; `.raw` stores every frame uncompressed.
    public var codec: FrameCodec
    /// zstd compression level (1 is the fastest standard level).
    public var zstdLevel: Int32
    /// Store a frame compressed only when zstd saves at least this fraction of its raw bytes.
    /// Incompressible data is then stored raw, so it costs nothing to decode.
    public var minimumSavings: Double

    public init(
        codec: FrameCodec = .zstd, zstdLevel: Int32 = Limits.defaultZstdLevel,
        minimumSavings: Double = Limits.defaultMinimumCompressionSavings
    ) {
        precondition(minimumSavings >= 0 && minimumSavings < 1, "minimum savings must be in [0, 1)")
        self.codec = codec
        self.zstdLevel = zstdLevel
        self.minimumSavings = minimumSavings
    }
}

/// Encodes raw bytes into frames (header + payload). Owns a zstd compression context, so one
/// encoder serves one thread at a time (it may move between threads); make one per concurrent task.
public final class FrameEncoder: @unchecked Sendable {
    public let options: FrameEncoderOptions
    private let compressor: ZstdCompressor

    public init(options: FrameEncoderOptions = FrameEncoderOptions()) {
        self.options = options
        self.compressor = ZstdCompressor(level: options.zstdLevel)
    }

    /// Room an output buffer needs to encode `rawLength` bytes whatever the data.
    public static func maximumFrameLength(rawLength: Int) -> Int {
        FrameHeader.encodedSize + max(rawLength, ZstdCompressor.bound(rawLength))
    }

    /// Encodes `raw` (1 byte up to the block's frame size) as one frame at the start of `output`,
    /// which must hold at least `maximumFrameLength(rawLength: raw.count)` bytes. Returns the
    /// header; the frame occupies `header.frameLength` bytes of `output`. With `tryCompression`
    /// false the frame is stored raw without trying the codec (a writer that has seen its data
    /// not compress).
    public func encode(_ raw: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, tryCompression: Bool = true) -> FrameHeader {
        precondition(raw.count > 0 && raw.count <= Limits.maximumRawFrameSizeBytes, "frame raw length out of range")
        precondition(output.count >= Self.maximumFrameLength(rawLength: raw.count), "output buffer too small")
        let payload = UnsafeMutableRawBufferPointer(rebasing: output[FrameHeader.encodedSize...])
        let rawChecksum = CRC32C.checksum(raw)
        var header = FrameHeader(
            rawLength: UInt32(raw.count), storedLength: UInt32(raw.count), codec: .raw,
            storedChecksum: rawChecksum, rawChecksum: rawChecksum)
        if options.codec == .zstd && tryCompression {
            let compressedLength = compressor.compress(raw, into: payload)
            let worthIt = Double(compressedLength) <= Double(raw.count) * (1 - options.minimumSavings)
            if worthIt {
                header.codec = .zstd
                header.storedLength = UInt32(compressedLength)
                header.storedChecksum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: payload[0..<compressedLength]))
            }
        }
        if header.codec == .raw {
            payload.copyMemory(from: raw)
        }
        header.encode(into: output)
        return header
    }

    /// Encodes `raw` as one frame into a new array holding exactly the frame's bytes.
    public func encode(_ raw: UnsafeRawBufferPointer) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: Self.maximumFrameLength(rawLength: raw.count))
        let header = frame.withUnsafeMutableBytes { encode(raw, into: $0) }
        frame.removeLast(frame.count - header.frameLength)
        return frame
    }

    public func encode(_ raw: [UInt8]) -> [UInt8] {
        raw.withUnsafeBytes { encode($0) }
    }
}
