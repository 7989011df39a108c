import NIOCore
import NIOPosix
import StrataBlockFormat
import Synchronization

/// Frame encoders and decoders for concurrent tasks: each owns a zstd context, so a task takes
/// one, uses it, and gives it back. Encoding and decoding the frames of a packet in parallel is
/// how a Strata client uses every core.
final class CodecPool: @unchecked Sendable {
    private let encoders = Mutex<[FrameEncoder]>([])
    private let decoders = Mutex<[FrameDecoder]>([])
    private let scratch = Mutex<[ScratchBuffer]>([])
    let options: FrameEncoderOptions

    init(options: FrameEncoderOptions = FrameEncoderOptions()) {
        self.options = options
    }

    func withEncoder<Result>(_ body: (FrameEncoder) throws -> Result) rethrows -> Result {
        let encoder = encoders.withLock { $0.popLast() } ?? FrameEncoder(options: options)
        defer { encoders.withLock { $0.append(encoder) } }
        return try body(encoder)
    }

    /// A buffer of at least `size` bytes for the length of `body`, reused across calls (encoding
    /// or decoding into it needs no allocation and keeps it in cache).
    func withScratch<Result>(_ size: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Result) rethrows -> Result {
        let reused = scratch.withLock { $0.popLast() }
        let held = reused.flatMap { $0.count >= size ? $0 : nil } ?? ScratchBuffer(count: size)
        defer { scratch.withLock { if $0.count < Self.keptScratchBuffers { $0.append(held) } } }
        return try body(held.bytes)
    }

    /// Scratch buffers kept for reuse: one per frame being encoded or decoded at once.
    static let keptScratchBuffers = 64

    func withDecoder<Result>(_ body: (FrameDecoder) throws -> Result) rethrows -> Result {
        let decoder = decoders.withLock { $0.popLast() } ?? FrameDecoder()
        defer { decoders.withLock { $0.append(decoder) } }
        return try body(decoder)
    }

    /// Encodes `raw` into frames of `frameSize` raw bytes (the last may be short), in parallel.
    /// With `probing`, only the first frame tries the codec and the others are stored raw.
    func encodeFrames(_ raw: [UInt8], frameSize: Int, probing: Bool = false) async -> [[UInt8]] {
        let count = (raw.count + frameSize - 1) / frameSize
        if count <= 1 {
            return count == 0 ? [] : [raw.withUnsafeBytes { encodeFrame($0, tryCompression: true) }]
        }
        return await withTaskGroup(of: (Int, [UInt8]).self) { group in
            for index in 0..<count {
                group.addTask {
                    let frame = await Self.onCodecThread {
                        let start = index * frameSize
                        let end = min(raw.count, start + frameSize)
                        return raw.withUnsafeBytes { bytes in
                            self.encodeFrame(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), tryCompression: !probing || index == 0)
                        }
                    }
                    return (index, frame)
                }
            }
            var frames = [[UInt8]](repeating: [], count: count)
            for await (index, frame) in group { frames[index] = frame }
            return frames
        }
    }

    /// Threads, one per core, that compress frames for every writer in this process. Compression
    /// runs here rather than on Swift's task threads so that in a process that also serves
    /// (a data node taking a WebHDFS upload) the system shares the cores between compression and
    /// the pipeline's network and disk work; on the task threads, a packet's sixteen frames would
    /// hold both threads and the replicas' acknowledgements would queue behind them.
    static let codecThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: System.coreCount)
        pool.start()
        return pool
    }()

    static func onCodecThread<Value: Sendable>(_ body: @escaping @Sendable () -> Value) async -> Value {
        if let value = try? await codecThreads.runIfActive(body) { return value }
        return body()
    }

    static func onCodecThread<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        do {
            return try await codecThreads.runIfActive(body)
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            return try body()
        }
    }

    /// One frame, encoded into a reused scratch buffer and copied out at its exact length (a
    /// buffer of the worst-case length would be zeroed for every frame).
    private func encodeFrame(_ raw: UnsafeRawBufferPointer, tryCompression: Bool) -> [UInt8] {
        withScratch(FrameEncoder.maximumFrameLength(rawLength: raw.count)) { scratch in
            let header = withEncoder { $0.encode(raw, into: scratch, tryCompression: tryCompression) }
            return Array(UnsafeRawBufferPointer(rebasing: scratch[0..<header.frameLength]))
        }
    }
}

/// Memory for one frame being encoded or decoded, used by one caller at a time; freed when the
/// pool lets it go.
final class ScratchBuffer: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    var count: Int { bytes.count }

    init(count: Int) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
    }

    deinit { bytes.deallocate() }
}

/// A writer's packet buffers: a stream gathers each packet's raw bytes in one and gets it back
/// once the packet is compressed, so a long write does not map, fault in and unmap fresh memory
/// for every packet. They go with the stream.
final class PacketBuffers: Sendable {
    private let free = Mutex<[[UInt8]]>([])
    /// Buffers kept for reuse: the packet being gathered and those compressing ahead.
    static let kept = 4

    /// An empty buffer with room for `capacity` bytes.
    func take(capacity: Int) -> [UInt8] {
        var buffer = free.withLock { $0.popLast() } ?? []
        // Keeps the storage when nothing else holds it (otherwise allocates anew).
        buffer.removeAll(keepingCapacity: true)
        buffer.reserveCapacity(capacity)
        return buffer
    }

    func giveBack(_ buffer: [UInt8]) {
        free.withLock { if $0.count < Self.kept { $0.append(buffer) } }
    }
}

/// Whether a writer's next packet tries the codec on every frame. Data that did not compress
/// (random bytes, files already compressed) seldom starts to, and zstd spends about as long
/// finding that out as it spends compressing: after a packet in which no frame compressed,
/// each packet tries its first frame only, and one that compresses turns every frame back on.
/// Data that turns compressible is stored raw for at most the packets already being encoded
/// when that is seen.
final class CompressionProbe: Sendable {
    private let lastPacketCompressed = Mutex(true)

    /// True when the next packet should try its first frame only.
    var probing: Bool { !lastPacketCompressed.withLock { $0 } }

    /// Records an encoded packet's frames.
    func record(_ frames: [[UInt8]]) {
        let compressed = frames.contains { frame in
            frame.count >= FrameHeader.encodedSize
                && (frame.withUnsafeBytes { try? FrameHeader.decode($0) })?.codec == .zstd
        }
        lastPacketCompressed.withLock { $0 = compressed }
    }
}
