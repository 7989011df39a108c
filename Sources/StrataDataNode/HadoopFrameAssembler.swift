import StrataBlockFormat
import StrataCore

/// Turns the raw bytes of a Hadoop block write, packet by packet, into Strata frames.
///
/// Hadoop packets (about 64 KiB) are smaller than frames (256 KiB by default) and land anywhere
/// in them, yet every acknowledged packet must be on disk at every node of the pipeline. So
/// after each packet the frame being filled is written as a partial frame, which the next
/// packet's frames replace (as `BlockWriter.appendEncodedFrame` allows). A partial frame is
/// stored uncompressed; a frame is compressed once, when it is full or the block ends, so each
/// byte is compressed once however the packets fall.
///
/// Used by one task at a time (it may move between threads).
final class HadoopFrameAssembler: @unchecked Sendable {
    let rawFrameSize: Int
    /// Frames completed before the one being filled.
    private(set) var fullFrames: Int
    /// The raw bytes of the frame being filled.
    private var pending: [UInt8]
    private let encoder: FrameEncoder

    /// `pending`: the raw bytes of a partial frame the replica already holds after `fullFrames`
    /// whole frames (an append or a recovery resumes inside a frame).
    init(rawFrameSize: Int, fullFrames: Int, pending: [UInt8], options: FrameEncoderOptions) {
        precondition(pending.count < rawFrameSize)
        self.rawFrameSize = rawFrameSize
        self.fullFrames = fullFrames
        self.pending = pending
        self.pending.reserveCapacity(rawFrameSize)
        self.encoder = FrameEncoder(options: options)
    }

    /// Raw bytes of the block so far.
    var rawLength: UInt64 { UInt64(fullFrames) * UInt64(rawFrameSize) + UInt64(pending.count) }

    /// Adds one packet's data. Returns the index of the first frame to store and the frames,
    /// encoded: each frame the data completed, then the partial frame after them (if any). The
    /// first replaces the partial frame the replica holds, if it holds one. With `last`, the
    /// partial frame is the block's last frame and is compressed.
    func add(_ data: UnsafeRawBufferPointer, last: Bool) -> (firstFrame: Int, frames: [[UInt8]]) {
        let firstFrame = fullFrames
        var frames: [[UInt8]] = []
        var input = data
        while !input.isEmpty {
            let take = min(rawFrameSize - pending.count, input.count)
            if pending.isEmpty && take == rawFrameSize {
                // A whole frame straight from the packet.
                frames.append(encoder.encode(UnsafeRawBufferPointer(rebasing: input[0..<take])))
                fullFrames += 1
            } else {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<take]))
                if pending.count == rawFrameSize {
                    frames.append(encoder.encode(pending))
                    fullFrames += 1
                    pending.removeAll(keepingCapacity: true)
                }
            }
            input = UnsafeRawBufferPointer(rebasing: input[take...])
        }
        if !pending.isEmpty && (last || !data.isEmpty) {
            frames.append(pending.withUnsafeBytes { raw in encodePartial(raw, compress: last) })
        }
        return (firstFrame, frames)
    }

    /// The partial frame being filled, encoded (uncompressed), to store again: after a recovery
    /// cut the replica at the frame's start. Nil when no frame is partly filled.
    func partialFrame() -> (firstFrame: Int, frames: [[UInt8]])? {
        guard !pending.isEmpty else { return nil }
        return (fullFrames, [pending.withUnsafeBytes { raw in encodePartial(raw, compress: false) }])
    }

    private func encodePartial(_ raw: UnsafeRawBufferPointer, compress: Bool) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: FrameEncoder.maximumFrameLength(rawLength: raw.count))
        let header = frame.withUnsafeMutableBytes { encoder.encode(raw, into: $0, tryCompression: compress) }
        frame.removeLast(frame.count - header.frameLength)
        return frame
    }
}
