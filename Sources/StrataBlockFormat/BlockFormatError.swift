/// A block file or frame that cannot be trusted. Readers throw this instead of ever returning
/// bytes whose checksums do not match; it names the block, the frame and the file offset so an
/// operator (or the name node) knows exactly which replica is bad and where.
public struct BlockFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case badMagic = "bad magic"
        case unsupportedVersion = "unsupported format version"
        case headerChecksumMismatch = "block header checksum mismatch"
        case invalidHeader = "invalid block header"
        case wrongBlock = "wrong block"
        case frameHeaderChecksumMismatch = "frame header checksum mismatch"
        case invalidFrameHeader = "invalid frame header"
        case storedChecksumMismatch = "stored bytes checksum mismatch"
        case rawChecksumMismatch = "raw bytes checksum mismatch"
        case decompressionFailed = "decompression failed"
        case truncated = "truncated"
        case trailerChecksumMismatch = "trailer checksum mismatch"
        case indexChecksumMismatch = "frame index checksum mismatch"
        case invalidTrailer = "invalid trailer"
        case invalidArgument = "invalid argument"
        case invalidState = "invalid state"
        case io = "I/O error"
    }

    public var kind: Kind
    public var detail: String
    public var path: String?
    public var blockId: UInt64?
    public var frameIndex: Int?
    public var fileOffset: UInt64?

    public init(
        _ kind: Kind, _ detail: String, path: String? = nil, blockId: UInt64? = nil,
        frameIndex: Int? = nil, fileOffset: UInt64? = nil
    ) {
        self.kind = kind
        self.detail = detail
        self.path = path
        self.blockId = blockId
        self.frameIndex = frameIndex
        self.fileOffset = fileOffset
    }

    /// True when the bytes on disk are damaged (as opposed to a bad argument or an I/O failure).
    public var isCorruption: Bool {
        switch kind {
        case .invalidArgument, .invalidState, .io: false
        default: true
        }
    }

    /// The same error with missing location fields filled in.
    func located(path: String? = nil, blockId: UInt64? = nil, frameIndex: Int? = nil, fileOffset: UInt64? = nil) -> BlockFormatError {
        var copy = self
        copy.path = copy.path ?? path
        copy.blockId = copy.blockId ?? blockId
        copy.frameIndex = copy.frameIndex ?? frameIndex
        copy.fileOffset = copy.fileOffset ?? fileOffset
        return copy
    }

    public var description: String {
        var location: [String] = []
        if let blockId { location.append("block \(blockId)") }
        if let frameIndex { location.append("frame \(frameIndex)") }
        if let fileOffset { location.append("at byte \(fileOffset)") }
        if let path { location.append("of \(path)") }
        let prefix = location.isEmpty ? "" : location.joined(separator: " ") + ": "
        return "\(prefix)\(kind.rawValue): \(detail)"
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
