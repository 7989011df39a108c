/// Verifies and decodes frames. Owns a zstd decompression context, so one decoder serves one
/// thread at a time.
///
/// Every decode checks, in order: the frame header's checksum, that the lengths are possible,
/// the CRC32C of the stored payload (before decompressing), and the CRC32C of the raw bytes
/// (after). No bytes reach a caller unless all of these hold.
public final class FrameDecoder: @unchecked Sendable {
    private let decompressor = ZstdDecompressor()

    public init() {}

    /// Checks a whole frame (header and payload) without decompressing it: header checksum,
    /// lengths, and the CRC32C of the stored payload. This is what a data node does before it
    /// stores a frame that another node compressed.
    @discardableResult
    public static func verifyStored(
        frame: UnsafeRawBufferPointer, maximumRawLength: Int
    ) throws(BlockFormatError) -> FrameHeader {
        let header = try FrameHeader.decode(frame)
        if header.rawLength == 0 || Int(header.rawLength) > maximumRawLength {
            throw BlockFormatError(
                .invalidFrameHeader, "raw length \(header.rawLength) outside 1...\(maximumRawLength)")
        }
        switch header.codec {
        case .raw:
            if header.storedLength != header.rawLength || header.storedChecksum != header.rawChecksum {
                throw BlockFormatError(.invalidFrameHeader, "raw frame whose stored and raw fields differ")
            }
        case .zstd:
            if Int(header.storedLength) > ZstdCompressor.bound(Int(header.rawLength)) || header.storedLength == 0 {
                throw BlockFormatError(
                    .invalidFrameHeader, "stored length \(header.storedLength) impossible for raw length \(header.rawLength)")
            }
        }
        let available = frame.count - FrameHeader.encodedSize
        if available < Int(header.storedLength) {
            throw BlockFormatError(
                .truncated, "frame payload has \(available) of \(header.storedLength) bytes")
        }
        if available > Int(header.storedLength) {
            throw BlockFormatError(
                .invalidFrameHeader, "frame is followed by \(available - Int(header.storedLength)) unexpected bytes")
        }
        let payload = UnsafeRawBufferPointer(rebasing: frame[FrameHeader.encodedSize...])
        let actual = CRC32C.checksum(payload)
        if actual != header.storedChecksum {
            throw BlockFormatError(
                .storedChecksumMismatch, "header says \(hex(header.storedChecksum)), payload has \(hex(actual))")
        }
        return header
    }

    /// Verifies `frame` and writes its raw bytes to the start of `output` (which must hold
    /// `header.rawLength` bytes; `maximumRawLength` bounds what a damaged header may ask for).
    @discardableResult
    public func decode(
        frame: UnsafeRawBufferPointer, maximumRawLength: Int, into output: UnsafeMutableRawBufferPointer
    ) throws(BlockFormatError) -> FrameHeader {
        let header = try Self.verifyStored(frame: frame, maximumRawLength: maximumRawLength)
        let rawLength = Int(header.rawLength)
        precondition(output.count >= rawLength, "output buffer smaller than the frame's raw length")
        let payload = UnsafeRawBufferPointer(rebasing: frame[FrameHeader.encodedSize...])
        switch header.codec {
        case .raw:
            // Stored and raw bytes are the same bytes, and their checksum was just verified.
            output.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: rawLength)
        case .zstd:
            let destination = UnsafeMutableRawBufferPointer(rebasing: output[0..<rawLength])
            let produced: Int
            switch decompressor.decompress(payload, into: destination) {
            case .success(let count): produced = count
            case .failure(let error): throw BlockFormatError(.decompressionFailed, error.message)
            }
            if produced != rawLength {
                throw BlockFormatError(.decompressionFailed, "decoded \(produced) bytes, header says \(rawLength)")
            }
            let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: output[0..<rawLength]))
            if actual != header.rawChecksum {
                throw BlockFormatError(
                    .rawChecksumMismatch, "header says \(hex(header.rawChecksum)), decoded bytes have \(hex(actual))")
            }
        }
        return header
    }

    /// Verifies and decodes `frame` into a new array.
    public func decode(frame: [UInt8], maximumRawLength: Int) throws(BlockFormatError) -> [UInt8] {
        try frame.withBytes { (frameBytes) throws(BlockFormatError) -> [UInt8] in
            // Size the output from the header alone; `decode` below does every check.
            let header = try FrameHeader.decode(frameBytes)
            let rawLength = min(Int(header.rawLength), maximumRawLength)
            var output = [UInt8](repeating: 0, count: rawLength)
            try output.withMutableBytes { (out) throws(BlockFormatError) in
                try decode(frame: frameBytes, maximumRawLength: maximumRawLength, into: out)
            }
            return output
        }
    }
}
