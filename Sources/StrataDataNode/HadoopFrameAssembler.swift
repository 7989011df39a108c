import StrataBlockFormat
import StrataCore

/// Turns the raw bytes of a Hadoop block write, packet by packet, into Strata frames.
///
/// Hadoop packets (about 64 KiB) are smaller than frames (256 KiB by default) and land anywhere
/// in them, yet every acknowledged packet must be on disk at every node of the pipeline. So
/// after each packet (or batch of packets) the frame being filled is written as a partial
/// frame, which the next frames replace (as `BlockWriter.appendEncodedFrame` allows). A partial
/// frame is stored uncompressed; a frame is compressed once, when it is full or the block ends,
/// so each byte is compressed once however the packets fall.
///
/// Used by one task at a time (it may move between threads).
final class HadoopFrameAssembler: @unchecked Sendable {
    let rawFrameSize: Int
    /// Frames completed before the one being filled.
    private(set) var fullFrames: Int
    /// The frame being filled: its first `filled` bytes.
    private var frame: [UInt8]
    private var filled: Int
    /// Bytes were added to the frame being filled since it was last encoded as a partial frame.
    private var unsaved = false
    private let encoder: FrameEncoder

    /// `pending`: the raw bytes of a partial frame the replica already holds after `fullFrames`
    /// whole frames (an append or a recovery resumes inside a frame).
    init(rawFrameSize: Int, fullFrames: Int, pending: [UInt8], options: FrameEncoderOptions) {
        precondition(pending.count < rawFrameSize)
        self.rawFrameSize = rawFrameSize
        self.fullFrames = fullFrames
        self.frame = [UInt8](repeating: 0, count: rawFrameSize)
        self.filled = pending.count
        self.frame.replaceSubrange(0..<pending.count, with: pending)
        self.encoder = FrameEncoder(options: options)
    }

    /// Raw bytes of the block so far.
    var rawLength: UInt64 { UInt64(fullFrames) * UInt64(rawFrameSize) + UInt64(filled) }

    /// Adds one packet's data. Returns the index of the first frame to store and the frames,
    /// encoded: each frame the data completed, then (with `partial`) the partial frame after them,
    /// if any. The first replaces the partial frame the replica holds, if it holds one. With
    /// `last`, the partial frame is the block's last frame and is compressed.
    func add(_ data: UnsafeRawBufferPointer, last: Bool, partial: Bool = true) -> (firstFrame: Int, frames: [[UInt8]]) {
        let firstFrame = fullFrames
        var frames: [[UInt8]] = []
        var input = data
        while !input.isEmpty {
            let take = min(rawFrameSize - filled, input.count)
            if filled == 0 && take == rawFrameSize {
                // A whole frame straight from the packet.
                frames.append(encoder.encode(UnsafeRawBufferPointer(rebasing: input[0..<take])))
                fullFrames += 1
            } else {
                frame.withUnsafeMutableBytes { bytes in
                    UnsafeMutableRawBufferPointer(rebasing: bytes[filled..<(filled + take)]).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: input[0..<take]))
                }
                filled += take
                unsaved = true
                if filled == rawFrameSize {
                    frames.append(frame.withUnsafeBytes { encoder.encode($0) })
                    fullFrames += 1
                    filled = 0
                    unsaved = false
                }
            }
            input = UnsafeRawBufferPointer(rebasing: input[take...])
        }
        if filled > 0 && (last || (partial && unsaved)) {
            frames.append(encodePartial(compress: last))
        }
        return (firstFrame, frames)
    }

    /// The partial frame being filled, encoded (uncompressed), to store again: after a recovery
    /// cut the replica at the frame's start. Nil when no frame is partly filled.
    func partialFrame() -> (firstFrame: Int, frames: [[UInt8]])? {
        guard filled > 0 else { return nil }
        return (fullFrames, [encodePartial(compress: false)])
    }

    private func encodePartial(compress: Bool) -> [UInt8] {
        unsaved = false
        var encoded = [UInt8](repeating: 0, count: FrameEncoder.maximumFrameLength(rawLength: filled))
        let header = frame.withUnsafeBytes { raw in
            encoded.withUnsafeMutableBytes { encoder.encode(UnsafeRawBufferPointer(rebasing: raw[0..<filled]), into: $0, tryCompression: compress) }
        }
        encoded.removeLast(encoded.count - header.frameLength)
        return encoded
    }
}
