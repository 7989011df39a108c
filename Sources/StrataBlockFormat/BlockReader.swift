import StrataCore

/// What one frame of a block file is, as found by `BlockReader.verifyFrames()`.
public struct FrameReport: Sendable, Equatable {
    public var index: Int
    /// Where the frame (its header) starts in the file.
    public var fileOffset: UInt64
    /// The raw offset of the frame's first byte within the block.
    public var rawOffset: UInt64
    /// Raw bytes the frame should decode to.
    public var rawLength: Int
    /// Bytes the frame takes in the file, header included.
    public var frameLength: Int
    /// Known when the frame header could be decoded.
    public var codec: FrameCodec?
    /// nil when the frame verified completely.
    public var error: BlockFormatError?
}

/// Reads a block file: any raw byte range, decoding only the frames it touches, and verifying
/// every checksum of every frame it decodes. Never returns bytes that failed a check.
///
/// A reader keeps one decoded frame cached for small sequential reads; it is not thread-safe, so
/// make one per concurrent reader (opening costs two or three small reads).
public final class BlockReader {
    public let path: String
    public let header: BlockHeader
    /// Bytes the block decodes to.
    public let rawLength: UInt64
    /// File offset of every frame, in order.
    public let frameOffsets: [UInt64]
    /// Where the last frame ends (where the trailer starts, for a finished block).
    public let framesEnd: UInt64
    /// True when the block has a trailer (its writer finished it).
    public let isFinished: Bool

    private let file: LocalFile
    private let decoder = FrameDecoder()
    private var storedFrame: [UInt8] = []
    private var cachedFrameIndex: Int?
    private var cachedFrame: [UInt8] = []

    /// Opens a finished block file: header, trailer and frame index are read and checked.
    public convenience init(path: String, expectedBlockId: UInt64? = nil) throws(BlockFormatError) {
        try self.init(path: path, expectedBlockId: expectedBlockId, allowUnfinished: false)
    }

    /// Opens a block file that may still be being written (or whose writer died): when it has no
    /// trailer, its frames are found by walking their headers, and the block is the frames that
    /// are whole. Bytes after the last whole frame are ignored.
    public convenience init(unfinishedPath path: String, expectedBlockId: UInt64? = nil) throws(BlockFormatError) {
        try self.init(path: path, expectedBlockId: expectedBlockId, allowUnfinished: true)
    }

    private init(path: String, expectedBlockId: UInt64?, allowUnfinished: Bool) throws(BlockFormatError) {
        self.path = path
        let file = try ioCall(path) { () throws(SystemCallError) in try LocalFile(path: path, mode: .readOnly) }
        self.file = file
        let fileSize = try ioCall(path) { () throws(SystemCallError) in try file.size() }
        let headerBytes = try ioCall(path) { () throws(SystemCallError) in try file.read(count: BlockHeader.encodedSize, at: 0) }
        do throws(BlockFormatError) {
            self.header = try BlockHeader.decode(headerBytes)
        } catch {
            throw error.located(path: path, blockId: expectedBlockId)
        }
        if let expectedBlockId, expectedBlockId != header.blockId {
            throw BlockFormatError(
                .wrongBlock, "file holds block \(header.blockId)", path: path, blockId: expectedBlockId, fileOffset: 12)
        }
        let layout: (rawLength: UInt64, offsets: [UInt64], framesEnd: UInt64, finished: Bool)
        do throws(BlockFormatError) {
            let finished = try Self.readTrailer(file: file, fileSize: fileSize, header: header)
            layout = (finished.rawLength, finished.offsets, finished.framesEnd, true)
        } catch where allowUnfinished && error.kind == .truncated {
            let scanned = try Self.scanFrames(file: file, fileSize: fileSize, header: header)
            layout = (scanned.rawLength, scanned.offsets, scanned.framesEnd, false)
        } catch {
            throw error.located(path: path, blockId: header.blockId)
        }
        self.rawLength = layout.rawLength
        self.frameOffsets = layout.offsets
        self.framesEnd = layout.framesEnd
        self.isFinished = layout.finished
    }

    public var frameCount: Int { frameOffsets.count }
    public var rawFrameSize: Int { header.rawFrameSize }

    /// Raw bytes frame `index` holds: the frame size, except for a shorter last frame.
    public func rawLength(ofFrame index: Int) -> Int {
        precondition(index >= 0 && index < frameCount)
        let start = UInt64(index) * UInt64(rawFrameSize)
        return Int(min(UInt64(rawFrameSize), rawLength - start))
    }

    /// File bytes frame `index` takes, header included.
    public func frameLength(ofFrame index: Int) -> Int {
        let end = index + 1 < frameCount ? frameOffsets[index + 1] : framesEnd
        return Int(end - frameOffsets[index])
    }

    /// Reads `length` raw bytes at `offset`; the range must lie within the block.
    public func read(offset: UInt64, length: Int) throws(BlockFormatError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        try bytes.withMutableBytes { (out) throws(BlockFormatError) in try read(offset: offset, into: out) }
        return bytes
    }

    /// Fills `output` with the raw bytes at `offset`; the range must lie within the block.
    public func read(offset: UInt64, into output: UnsafeMutableRawBufferPointer) throws(BlockFormatError) {
        guard offset <= rawLength, UInt64(output.count) <= rawLength - offset else {
            throw BlockFormatError(
                .invalidArgument, "range \(offset)+\(output.count) outside the block's \(rawLength) bytes",
                path: path, blockId: header.blockId)
        }
        let frameSize = UInt64(rawFrameSize)
        var done = 0
        while done < output.count {
            let position = offset + UInt64(done)
            let index = Int(position / frameSize)
            let within = Int(position % frameSize)
            let frameRaw = rawLength(ofFrame: index)
            let take = min(frameRaw - within, output.count - done)
            let destination = UnsafeMutableRawBufferPointer(rebasing: output[done..<(done + take)])
            if within == 0 && take == frameRaw && cachedFrameIndex != index {
                // A whole frame: decode straight into the caller's buffer.
                try decodeFrame(index, into: destination)
            } else {
                try cacheFrame(index)
                cachedFrame.withUnsafeBytes { cached in
                    destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: cached[within..<(within + take)]))
                }
            }
            done += take
        }
    }

    /// The stored bytes of frame `index` (header and payload), with the header and the stored
    /// checksum verified: what a data node sends to a Strata client or to another replica.
    public func storedFrame(_ index: Int) throws(BlockFormatError) -> [UInt8] {
        try loadStoredFrame(index)
        return storedFrame
    }

    /// The stored bytes of frames `range` (headers and payloads, back to back) with one read, for
    /// a caller that verifies and decodes them itself. Reads with `pread` and touches no other
    /// state, so several threads may call it at once.
    public func storedFrames(_ range: Range<Int>) throws(BlockFormatError) -> [UInt8] {
        precondition(range.lowerBound >= 0 && range.upperBound <= frameCount && !range.isEmpty)
        let start = frameOffsets[range.lowerBound]
        let end = range.upperBound < frameCount ? frameOffsets[range.upperBound] : framesEnd
        let bytes = try ioCall(path) { () throws(SystemCallError) in try file.read(count: Int(end - start), at: start) }
        guard UInt64(bytes.count) == end - start else {
            throw BlockFormatError(.truncated, "file ends inside frame \(range)", path: path, blockId: header.blockId)
        }
        return bytes
    }

    /// Decodes every frame, checking all checksums, and reports each (continuing past bad ones).
    public func verifyFrames() -> [FrameReport] {
        (0..<frameCount).map { index in
            var report = FrameReport(
                index: index, fileOffset: frameOffsets[index], rawOffset: UInt64(index) * UInt64(rawFrameSize),
                rawLength: rawLength(ofFrame: index), frameLength: frameLength(ofFrame: index))
            cachedFrameIndex = nil
            do throws(BlockFormatError) {
                try cacheFrame(index)
            } catch {
                report.error = error
            }
            report.codec = try? storedFrame.withBytes { (bytes) throws(BlockFormatError) in try FrameHeader.decode(bytes).codec }
            return report
        }
    }

    // MARK: - Internals

    private func cacheFrame(_ index: Int) throws(BlockFormatError) {
        if cachedFrameIndex == index { return }
        cachedFrameIndex = nil
        let frameRaw = rawLength(ofFrame: index)
        if cachedFrame.count < frameRaw {
            cachedFrame = [UInt8](repeating: 0, count: rawFrameSize)
        }
        try cachedFrame.withMutableBytes { (out) throws(BlockFormatError) in
            try decodeFrame(index, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<frameRaw]))
        }
        cachedFrameIndex = index
    }

    private func decodeFrame(_ index: Int, into output: UnsafeMutableRawBufferPointer) throws(BlockFormatError) {
        try loadStoredFrame(index)
        do throws(BlockFormatError) {
            try storedFrame.withBytes { (frame) throws(BlockFormatError) in
                try decoder.decode(frame: frame, maximumRawLength: output.count, into: output)
            }
        } catch {
            throw error.located(path: path, blockId: header.blockId, frameIndex: index, fileOffset: frameOffsets[index])
        }
    }

    /// Reads frame `index` into `storedFrame` and checks its header, lengths and stored checksum.
    private func loadStoredFrame(_ index: Int) throws(BlockFormatError) {
        precondition(index >= 0 && index < frameCount)
        let offset = frameOffsets[index]
        let length = frameLength(ofFrame: index)
        let expectedRaw = rawLength(ofFrame: index)
        storedFrame = try ioCall(path) { () throws(SystemCallError) in try file.read(count: length, at: offset) }
        do throws(BlockFormatError) {
            if storedFrame.count < length {
                throw BlockFormatError(.truncated, "file ends inside the frame")
            }
            let frameHeader = try storedFrame.withBytes { (frame) throws(BlockFormatError) -> FrameHeader in
                try FrameDecoder.verifyStored(frame: frame, maximumRawLength: rawFrameSize)
            }
            if Int(frameHeader.rawLength) != expectedRaw {
                throw BlockFormatError(
                    .invalidFrameHeader, "frame holds \(frameHeader.rawLength) raw bytes, the block layout needs \(expectedRaw)")
            }
        } catch {
            throw error.located(path: path, blockId: header.blockId, frameIndex: index, fileOffset: offset)
        }
    }

    private static func readTrailer(
        file: LocalFile, fileSize: UInt64, header: BlockHeader
    ) throws(BlockFormatError) -> (rawLength: UInt64, offsets: [UInt64], framesEnd: UInt64) {
        let minimumSize = UInt64(BlockHeader.encodedSize + BlockTrailer.tailSize)
        guard fileSize >= minimumSize else {
            throw BlockFormatError(.truncated, "file has \(fileSize) bytes, a finished block has at least \(minimumSize)")
        }
        let tailOffset = fileSize - UInt64(BlockTrailer.tailSize)
        let tailBytes = try ioCall(file.path) { () throws(SystemCallError) in try file.read(count: BlockTrailer.tailSize, at: tailOffset) }
        let tail = try BlockTrailer.decodeTail(tailBytes, fileOffset: tailOffset)
        let frameSize = UInt64(header.rawFrameSize)
        guard tail.rawLength <= Limits.maximumBlockSizeBytes else {
            throw BlockFormatError(.invalidTrailer, "raw length \(tail.rawLength) over the block limit", fileOffset: tailOffset)
        }
        let expectedFrames = (tail.rawLength + frameSize - 1) / frameSize
        guard UInt64(tail.frameCount) == expectedFrames else {
            throw BlockFormatError(
                .invalidTrailer, "\(tail.frameCount) frames cannot hold \(tail.rawLength) bytes in frames of \(frameSize)",
                fileOffset: tailOffset)
        }
        let indexSize = UInt64(tail.frameCount) * 8
        guard indexSize <= tailOffset - UInt64(BlockHeader.encodedSize) else {
            throw BlockFormatError(.invalidTrailer, "frame index larger than the file", fileOffset: tailOffset)
        }
        let indexOffset = tailOffset - indexSize
        let indexBytes = try ioCall(file.path) { () throws(SystemCallError) in try file.read(count: Int(indexSize), at: indexOffset) }
        let offsets = try BlockTrailer.decodeIndex(indexBytes, expectedChecksum: tail.indexChecksum, fileOffset: indexOffset)
        // The frames must tile the space between header and index, each at least a header and a byte.
        let smallestFrame = UInt64(FrameHeader.encodedSize + 1)
        var previous: UInt64?
        for (index, offset) in offsets.enumerated() {
            let inOrder = previous.map { offset >= $0 + smallestFrame } ?? (offset == UInt64(BlockHeader.encodedSize))
            guard inOrder else {
                throw BlockFormatError(
                    .invalidTrailer, "frame \(index) offset \(offset) out of order", fileOffset: indexOffset + UInt64(index) * 8)
            }
            previous = offset
        }
        let framesFit = previous.map { indexOffset >= $0 + smallestFrame } ?? (indexOffset == UInt64(BlockHeader.encodedSize))
        guard framesFit else {
            throw BlockFormatError(.invalidTrailer, "frames do not end where the index starts", fileOffset: indexOffset)
        }
        return (tail.rawLength, offsets, indexOffset)
    }

    private static func scanFrames(
        file: LocalFile, fileSize: UInt64, header: BlockHeader
    ) throws(BlockFormatError) -> (rawLength: UInt64, offsets: [UInt64], framesEnd: UInt64) {
        var offsets: [UInt64] = []
        var position = UInt64(BlockHeader.encodedSize)
        var rawLength: UInt64 = 0
        while position + UInt64(FrameHeader.encodedSize) <= fileSize {
            let headerBytes = try ioCall(file.path) { () throws(SystemCallError) in
                try file.read(count: FrameHeader.encodedSize, at: position)
            }
            guard let frameHeader = try? headerBytes.withBytes({ (bytes) throws(BlockFormatError) in try FrameHeader.decode(bytes) }),
                  frameHeader.rawLength > 0, frameHeader.rawLength <= header.rawFrameSizeBytes,
                  position + UInt64(frameHeader.frameLength) <= fileSize
            else { break }
            // Only the last frame may be short; a short frame followed by more is where valid data ends.
            if rawLength % UInt64(header.rawFrameSize) != 0 { break }
            offsets.append(position)
            rawLength += UInt64(frameHeader.rawLength)
            position += UInt64(frameHeader.frameLength)
            guard rawLength <= Limits.maximumBlockSizeBytes else { break }
        }
        return (rawLength, offsets, position)
    }
}
