import Dispatch
import Foundation
import StrataBlockFormat
import StrataCore

/// Turns the raw bytes of a Hadoop block write, packet by packet, into Strata frames.
///
/// Hadoop packets (about 64 KiB) are smaller than frames (256 KiB by default) and land anywhere
/// in them, yet every acknowledged packet must be on disk at every node of the pipeline. So
/// after each packet (or batch of packets) the frame being filled is written as a partial
/// frame, which the next frames replace (as `BlockWriter.appendEncodedFrame` allows). A partial
/// frame is stored uncompressed; a frame is compressed once, when it is full or the block ends,
/// so each byte is compressed once however the packets fall. The frames a batch of packets
/// completes are compressed in parallel: a writer that outpaces one core gets them all.
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
    /// Frames completed since the last `encodeBatch`, raw.
    private var completed: [[UInt8]] = []
    /// `fullFrames` when the batch being added began.
    private var batchFirstFrame: Int?
    /// One encoder per thread that compresses a batch's frames (each holds a zstd context).
    private let encoders: [FrameEncoder]
    private var encoder: FrameEncoder { encoders[0] }

    /// `pending`: the raw bytes of a partial frame the replica already holds after `fullFrames`
    /// whole frames (an append or a recovery resumes inside a frame).
    init(rawFrameSize: Int, fullFrames: Int, pending: [UInt8], options: FrameEncoderOptions) {
        precondition(pending.count < rawFrameSize)
        self.rawFrameSize = rawFrameSize
        self.fullFrames = fullFrames
        self.frame = [UInt8](repeating: 0, count: rawFrameSize)
        self.filled = pending.count
        self.frame.replaceSubrange(0..<pending.count, with: pending)
        self.encoders = (0..<max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))).map { _ in FrameEncoder(options: options) }
    }

    /// Raw bytes of the block so far.
    var rawLength: UInt64 { UInt64(fullFrames) * UInt64(rawFrameSize) + UInt64(filled) }

    /// Adds one packet's data. The frames it completes are kept raw until `encodeBatch`, which
    /// compresses them all at once.
    func append(_ data: UnsafeRawBufferPointer) {
        if batchFirstFrame == nil { batchFirstFrame = fullFrames }
        var input = data
        while !input.isEmpty {
            let take = min(rawFrameSize - filled, input.count)
            frame.withUnsafeMutableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: bytes[filled..<(filled + take)]).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: input[0..<take]))
            }
            filled += take
            unsaved = true
            if filled == rawFrameSize {
                completed.append(frame)
                frame = [UInt8](repeating: 0, count: rawFrameSize)
                fullFrames += 1
                filled = 0
                unsaved = false
            }
            input = UnsafeRawBufferPointer(rebasing: input[take...])
        }
    }

    /// The frames to store for the packets appended since the last call: the index of the
    /// first (it replaces the partial frame the replica holds, if it holds one) and the frames,
    /// encoded: each frame the packets completed, compressed on several threads at once when
    /// there are several, then (when `partial()`, asked once those are compressed) the partial
    /// frame after them, if any. With `last`, the partial frame is the block's last frame and is
    /// compressed.
    func encodeBatch(last: Bool, partial: () -> Bool = { true }) -> (firstFrame: Int, frames: [[UInt8]]) {
        let firstFrame = batchFirstFrame ?? fullFrames
        batchFirstFrame = nil
        let raw = completed
        completed = []
        var frames = [[UInt8]](repeating: [], count: raw.count)
        let lanes = min(raw.count, encoders.count)
        if lanes <= 1 {
            for index in raw.indices { frames[index] = raw[index].withUnsafeBytes { encoders[0].encode($0) } }
        } else {
            let encoders = self.encoders
            frames.withUnsafeMutableBufferPointer { output in
                let output = UncheckedSendable(output)
                DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                    for index in stride(from: lane, to: raw.count, by: lanes) {
                        output.value[index] = raw[index].withUnsafeBytes { encoders[lane].encode($0) }
                    }
                }
            }
        }
        if filled > 0 && (last || (unsaved && partial())) {
            frames.append(encodePartial(compress: last))
        }
        return (firstFrame, frames)
    }

    /// Raw bytes in frames that were encoded whole, and whether the frame being filled was
    /// stored after them (nothing was added to it since).
    var storedThrough: (fullFramesEnd: UInt64, partialStored: Bool) {
        (UInt64(fullFrames) * UInt64(rawFrameSize), !unsaved)
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

/// The output of `encodeBatch`'s parallel loop: each lane writes only its own elements.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
