import StrataBlockFormat
import Synchronization

/// Frame encoders and decoders for concurrent tasks: each owns a zstd context, so a task takes
/// one, uses it, and gives it back. Encoding and decoding the frames of a packet in parallel is
/// how a Strata client uses every core.
final class CodecPool: @unchecked Sendable {
    private let encoders = Mutex<[FrameEncoder]>([])
    private let decoders = Mutex<[FrameDecoder]>([])
    private let scratch = Mutex<[[UInt8]]>([])
    let options: FrameEncoderOptions

    init(options: FrameEncoderOptions = FrameEncoderOptions()) {
        self.options = options
    }

    func withEncoder<Result>(_ body: (FrameEncoder) throws -> Result) rethrows -> Result {
        let encoder = encoders.withLock { $0.popLast() } ?? FrameEncoder(options: options)
        defer { encoders.withLock { $0.append(encoder) } }
        return try body(encoder)
    }

    /// A buffer of at least `size` bytes for the length of `body`, reused across calls (decoding
    /// into it needs no allocation and keeps it in cache).
    func withScratch<Result>(_ size: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Result) rethrows -> Result {
        var buffer = scratch.withLock { $0.popLast() } ?? []
        if buffer.count < size { buffer = [UInt8](repeating: 0, count: size) }
        defer { scratch.withLock { $0.append(buffer) } }
        return try buffer.withUnsafeMutableBytes { try body($0) }
    }

    func withDecoder<Result>(_ body: (FrameDecoder) throws -> Result) rethrows -> Result {
        let decoder = decoders.withLock { $0.popLast() } ?? FrameDecoder()
        defer { decoders.withLock { $0.append(decoder) } }
        return try body(decoder)
    }

    /// Encodes `raw` into frames of `frameSize` raw bytes (the last may be short), in parallel.
    func encodeFrames(_ raw: [UInt8], frameSize: Int) async -> [[UInt8]] {
        let count = (raw.count + frameSize - 1) / frameSize
        if count <= 1 {
            return count == 0 ? [] : [raw.withUnsafeBytes { bytes in withEncoder { $0.encode(bytes) } }]
        }
        return await withTaskGroup(of: (Int, [UInt8]).self) { group in
            for index in 0..<count {
                group.addTask {
                    let start = index * frameSize
                    let end = min(raw.count, start + frameSize)
                    let frame = raw.withUnsafeBytes { bytes in
                        self.withEncoder { $0.encode(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
                    }
                    return (index, frame)
                }
            }
            var frames = [[UInt8]](repeating: [], count: count)
            for await (index, frame) in group { frames[index] = frame }
            return frames
        }
    }
}
