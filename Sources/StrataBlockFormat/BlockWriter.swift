import StrataCore

/// What a finished block file holds.
public struct BlockSummary: Sendable, Equatable {
    public var blockId: UInt64
    public var generationStamp: UInt64
    /// Bytes the block decodes to.
    public var rawLength: UInt64
    /// Bytes the block file takes on disk (header, frames and trailer).
    public var storedLength: UInt64
    public var frameCount: Int
}

/// Writes one block file: raw bytes in, frames out, then a trailer.
///
/// Every frame but the last covers exactly `rawFrameSize` raw bytes, so a reader maps an offset to
/// a frame by division. `flush()` makes a partial last frame visible on disk (HDFS `hflush`);
/// when more bytes arrive that frame is rewritten in place, never followed by another frame.
/// Frames compressed elsewhere (by the writer or the first data node of a pipeline) are stored
/// as they are with `appendEncodedFrame`, after their checksums are verified.
public final class BlockWriter {
    public private(set) var header: BlockHeader
    public let path: String
    private let file: LocalFile
    private let encoder: FrameEncoder
    private lazy var decoder = FrameDecoder()
    private var fullFrameOffsets: [UInt64] = []
    /// Where the frame after the last full frame starts.
    private var tailOffset: UInt64
    /// The end of everything written so far, to cut stale bytes when a shorter frame replaces a longer one.
    private var writtenEnd: UInt64
    private var tail: Tail = .empty
    private var scratch: [UInt8]
    private var isClosed = false

    /// What follows the last full frame.
    private enum Tail {
        case empty
        /// Raw bytes not yet making a full frame; `onDisk` when a partial frame holding exactly
        /// them is written at `tailOffset`.
        case raw(bytes: [UInt8], onDisk: Bool)
        /// A partial frame received already encoded, written at `tailOffset`.
        case encoded(rawLength: Int, frameLength: Int)
    }

    /// Creates a new block file at `path` (which must not exist) and writes its header.
    public init(
        creating path: String, blockId: UInt64, generationStamp: UInt64,
        rawFrameSizeBytes: Int = Limits.defaultRawFrameSizeBytes,
        options: FrameEncoderOptions = FrameEncoderOptions()
    ) throws(BlockFormatError) {
        guard rawFrameSizeBytes >= Limits.minimumRawFrameSizeBytes && rawFrameSizeBytes <= Limits.maximumRawFrameSizeBytes else {
            throw BlockFormatError(
                .invalidArgument,
                "raw frame size \(rawFrameSizeBytes) outside \(Limits.minimumRawFrameSizeBytes)...\(Limits.maximumRawFrameSizeBytes)")
        }
        self.header = BlockHeader(
            blockId: blockId, generationStamp: generationStamp, rawFrameSizeBytes: rawFrameSizeBytes,
            codec: options.codec, zstdLevel: options.zstdLevel)
        self.path = path
        self.file = try ioCall(path) { () throws(SystemCallError) in try LocalFile(path: path, mode: .createExclusive) }
        self.encoder = FrameEncoder(options: options)
        self.scratch = [UInt8](repeating: 0, count: FrameEncoder.maximumFrameLength(rawLength: rawFrameSizeBytes))
        self.tailOffset = UInt64(BlockHeader.encodedSize)
        self.writtenEnd = tailOffset
        let headerBytes = header.encoded()
        try ioCall(path) { () throws(SystemCallError) in try file.write(headerBytes, at: 0) }
    }

    /// Reopens a finished block file to append to it (HDFS `append`): the trailer is removed, a
    /// partial last frame is decoded so new bytes extend it, and the header takes the new
    /// generation stamp. The file is durable in its reopened state when this returns.
    public init(
        reopening path: String, newGenerationStamp: UInt64, options: FrameEncoderOptions = FrameEncoderOptions()
    ) throws(BlockFormatError) {
        let reader = try BlockReader(path: path)
        var header = reader.header
        header.generationStamp = newGenerationStamp
        header.codec = options.codec
        header.zstdLevel = Int8(clamping: options.zstdLevel)
        self.header = header
        self.path = path
        self.file = try ioCall(path) { () throws(SystemCallError) in try LocalFile(path: path, mode: .readWrite) }
        self.encoder = FrameEncoder(options: options)
        self.scratch = [UInt8](repeating: 0, count: FrameEncoder.maximumFrameLength(rawLength: header.rawFrameSize))
        let frameSize = UInt64(header.rawFrameSize)
        var offsets = reader.frameOffsets
        let framesEnd = reader.framesEnd
        if reader.rawLength % frameSize != 0, let lastOffset = offsets.last {
            let lastRaw = try reader.read(offset: reader.rawLength - reader.rawLength % frameSize, length: Int(reader.rawLength % frameSize))
            offsets.removeLast()
            tail = .raw(bytes: lastRaw, onDisk: true)
            self.tailOffset = lastOffset
        } else {
            self.tailOffset = framesEnd
        }
        self.fullFrameOffsets = offsets
        self.writtenEnd = framesEnd
        let headerBytes = header.encoded()
        try ioCall(path) { () throws(SystemCallError) in
            try file.truncate(to: framesEnd)
            try file.write(headerBytes, at: 0)
            try file.synchronize()
        }
    }

    /// Reopens a block file, finished or not, cut to its first `rawLength` raw bytes, under a new
    /// generation stamp (pipeline and lease recovery). A cut inside a frame keeps that frame's
    /// first bytes as pending raw bytes: `finish` or `flush` writes them as a partial frame; with
    /// a cut on a frame boundary, encoded frames can follow at once. The file is durable in its
    /// cut state when this returns.
    public init(
        recovering path: String, newGenerationStamp: UInt64, rawLength: UInt64, options: FrameEncoderOptions = FrameEncoderOptions()
    ) throws(BlockFormatError) {
        let reader = try BlockReader(unfinishedPath: path)
        guard rawLength <= reader.rawLength else {
            throw BlockFormatError(
                .invalidArgument, "cannot cut to \(rawLength) bytes: the replica holds \(reader.rawLength)", path: path,
                blockId: reader.header.blockId)
        }
        var header = reader.header
        header.generationStamp = newGenerationStamp
        header.codec = options.codec
        header.zstdLevel = Int8(clamping: options.zstdLevel)
        self.header = header
        self.path = path
        self.file = try ioCall(path) { () throws(SystemCallError) in try LocalFile(path: path, mode: .readWrite) }
        self.encoder = FrameEncoder(options: options)
        self.scratch = [UInt8](repeating: 0, count: FrameEncoder.maximumFrameLength(rawLength: header.rawFrameSize))
        let frameSize = UInt64(header.rawFrameSize)
        let wholeFrames = Int(rawLength / frameSize)
        let remainder = Int(rawLength % frameSize)
        let offsets = reader.frameOffsets
        let end = wholeFrames < offsets.count ? offsets[wholeFrames] : reader.framesEnd
        if remainder > 0 {
            tail = .raw(bytes: try reader.read(offset: rawLength - UInt64(remainder), length: remainder), onDisk: false)
        }
        self.fullFrameOffsets = Array(offsets.prefix(wholeFrames))
        self.tailOffset = end
        self.writtenEnd = end
        let headerBytes = header.encoded()
        try ioCall(path) { () throws(SystemCallError) in
            try file.truncate(to: end)
            try file.write(headerBytes, at: 0)
            try file.synchronize()
        }
    }

    deinit {
        if !isClosed { try? file.close() }
    }

    public var rawFrameSize: Int { header.rawFrameSize }

    /// Raw bytes written so far.
    public var rawLength: UInt64 {
        UInt64(fullFrameOffsets.count) * UInt64(rawFrameSize) + UInt64(tailRawLength)
    }

    private var tailRawLength: Int {
        switch tail {
        case .empty: 0
        case .raw(let bytes, _): bytes.count
        case .encoded(let rawLength, _): rawLength
        }
    }

    /// Appends raw bytes, writing a frame each time a frame's worth has gathered.
    public func append(_ bytes: UnsafeRawBufferPointer) throws(BlockFormatError) {
        try checkOpen()
        guard rawLength + UInt64(bytes.count) <= Limits.maximumBlockSizeBytes else {
            throw BlockFormatError(.invalidArgument, "block would exceed \(Limits.maximumBlockSizeBytes) bytes", path: path, blockId: header.blockId)
        }
        var pending = try takePendingRawBytes()
        var input = bytes
        // Top up a partial frame first.
        if !pending.isEmpty {
            let take = min(rawFrameSize - pending.count, input.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<take]))
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            if pending.count == rawFrameSize {
                try pending.withBytes { (frame) throws(BlockFormatError) in try writeFullFrame(raw: frame) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        // Whole frames straight from the caller's buffer, without copying.
        while input.count >= rawFrameSize {
            try writeFullFrame(raw: UnsafeRawBufferPointer(rebasing: input[0..<rawFrameSize]))
            input = UnsafeRawBufferPointer(rebasing: input[rawFrameSize...])
        }
        pending.append(contentsOf: input)
        tail = pending.isEmpty ? .empty : .raw(bytes: pending, onDisk: false)
    }

    public func append(_ bytes: [UInt8]) throws(BlockFormatError) {
        try bytes.withBytes { (buffer) throws(BlockFormatError) in try append(buffer) }
    }

    /// Stores a frame encoded elsewhere, after verifying its header and stored checksum. A frame
    /// shorter than the frame size is a partial last frame; the next frame appended replaces it
    /// (it must hold at least as many raw bytes).
    public func appendEncodedFrame(_ frame: UnsafeRawBufferPointer) throws(BlockFormatError) {
        try checkOpen()
        let frameHeader: FrameHeader
        do throws(BlockFormatError) {
            frameHeader = try FrameDecoder.verifyStored(frame: frame, maximumRawLength: rawFrameSize)
        } catch {
            throw error.located(path: path, blockId: header.blockId, frameIndex: fullFrameOffsets.count)
        }
        let rawLength = Int(frameHeader.rawLength)
        switch tail {
        case .raw(_, onDisk: false):
            throw BlockFormatError(
                .invalidState, "encoded frame appended while raw bytes are pending", path: path, blockId: header.blockId)
        case .raw(let bytes, onDisk: true) where rawLength < bytes.count:
            throw BlockFormatError(.invalidArgument, "replacement frame holds fewer bytes than the partial frame it replaces", path: path, blockId: header.blockId)
        case .encoded(let partialRaw, _) where rawLength < partialRaw:
            throw BlockFormatError(.invalidArgument, "replacement frame holds fewer bytes than the partial frame it replaces", path: path, blockId: header.blockId)
        default:
            break
        }
        guard self.rawLength - UInt64(tailRawLength) + UInt64(rawLength) <= Limits.maximumBlockSizeBytes else {
            throw BlockFormatError(.invalidArgument, "block would exceed \(Limits.maximumBlockSizeBytes) bytes", path: path, blockId: header.blockId)
        }
        try writeFrameBytes(frame, at: tailOffset)
        if rawLength == rawFrameSize {
            fullFrameOffsets.append(tailOffset)
            tailOffset += UInt64(frame.count)
            tail = .empty
        } else {
            tail = .encoded(rawLength: rawLength, frameLength: frame.count)
        }
    }

    /// Writes pending bytes as a partial frame so readers of the file see them (HDFS `hflush`).
    public func flush() throws(BlockFormatError) {
        try checkOpen()
        guard case .raw(let bytes, onDisk: false) = tail else { return }
        let frameHeader = bytes.withUnsafeBytes { raw in
            scratch.withUnsafeMutableBytes { encoder.encode(raw, into: $0) }
        }
        try scratch.withBytes { (out) throws(BlockFormatError) in
            try writeFrameBytes(UnsafeRawBufferPointer(rebasing: out[0..<frameHeader.frameLength]), at: tailOffset)
        }
        tail = .raw(bytes: bytes, onDisk: true)
    }

    /// Flushes and makes everything written so far durable (HDFS `hsync`).
    public func synchronize() throws(BlockFormatError) {
        try flush()
        try ioCall(path) { () throws(SystemCallError) in try file.synchronize() }
    }

    /// Starts writing what has been written so far to disk in the background (see
    /// `LocalFile.startWriteback`): the durable `finish` then waits only for the tail.
    public func startWriteback() {
        guard !isClosed else { return }
        file.startWriteback()
    }

    /// Writes the last frame and the trailer, makes the file durable and closes it.
    @discardableResult
    public func finish() throws(BlockFormatError) -> BlockSummary {
        try flush()
        var offsets = fullFrameOffsets
        var framesEnd = tailOffset
        switch tail {
        case .empty: break
        case .raw(_, _):
            offsets.append(tailOffset)
            framesEnd = writtenEnd
        case .encoded(_, let frameLength):
            offsets.append(tailOffset)
            framesEnd = tailOffset + UInt64(frameLength)
        }
        let trailer = BlockTrailer(rawLength: rawLength, frameOffsets: offsets).encoded()
        let fileLength = framesEnd + UInt64(trailer.count)
        try ioCall(path) { () throws(SystemCallError) in
            try file.write(trailer, at: framesEnd)
            try file.truncate(to: fileLength)
            try file.synchronize()
            try file.close()
        }
        isClosed = true
        return BlockSummary(
            blockId: header.blockId, generationStamp: header.generationStamp, rawLength: rawLength,
            storedLength: fileLength, frameCount: offsets.count)
    }

    /// Closes the file without finishing it (it stays an unfinished block on disk).
    public func abandon() {
        guard !isClosed else { return }
        isClosed = true
        try? file.close()
    }

    // MARK: - Internals

    private func checkOpen() throws(BlockFormatError) {
        if isClosed {
            throw BlockFormatError(.invalidState, "block writer is closed", path: path, blockId: header.blockId)
        }
    }

    /// The raw bytes after the last full frame, decoding a partial frame received encoded.
    private func takePendingRawBytes() throws(BlockFormatError) -> [UInt8] {
        switch tail {
        case .empty:
            return []
        case .raw(let bytes, _):
            tail = .empty
            return bytes
        case .encoded(_, let frameLength):
            let frame = try ioCall(path) { () throws(SystemCallError) in try file.read(count: frameLength, at: tailOffset) }
            do throws(BlockFormatError) {
                let raw = try decoder.decode(frame: frame, maximumRawLength: rawFrameSize)
                tail = .empty
                return raw
            } catch {
                throw error.located(path: path, blockId: header.blockId, frameIndex: fullFrameOffsets.count, fileOffset: tailOffset)
            }
        }
    }

    private func writeFullFrame(raw: UnsafeRawBufferPointer) throws(BlockFormatError) {
        let frameHeader = scratch.withUnsafeMutableBytes { encoder.encode(raw, into: $0) }
        try scratch.withBytes { (out) throws(BlockFormatError) in
            try writeFrameBytes(UnsafeRawBufferPointer(rebasing: out[0..<frameHeader.frameLength]), at: tailOffset)
        }
        fullFrameOffsets.append(tailOffset)
        tailOffset += UInt64(frameHeader.frameLength)
    }

    private func writeFrameBytes(_ frame: UnsafeRawBufferPointer, at offset: UInt64) throws(BlockFormatError) {
        let end = offset + UInt64(frame.count)
        let previousEnd = writtenEnd
        try ioCall(path) { () throws(SystemCallError) in
            try file.write(frame, at: offset)
            // A shorter frame replacing a longer partial one must not leave its old bytes behind.
            if end < previousEnd { try file.truncate(to: end) }
        }
        writtenEnd = end
    }
}

/// Runs a system call, turning its error into a block format I/O error.
@inline(__always)
func ioCall<T>(_ path: String, _ body: () throws(SystemCallError) -> T) throws(BlockFormatError) -> T {
    do throws(SystemCallError) {
        return try body()
    } catch {
        throw BlockFormatError(.io, error.description, path: path)
    }
}
