/// Where a positioned read (`DFSClient.readPositioned`) puts the bytes it decodes, in no
/// particular order.
///
/// The read hands the sink one job per packet of frames; the sink runs it on a thread of its
/// choosing with a buffer of its own, and the job decodes each frame into that buffer and passes
/// the bytes to `write` with their offset in the file. Decoding and writing on the same thread,
/// into and from the same memory, saves a copy and a thread switch per frame; a sink that writes
/// with direct I/O also keeps the disk reading memory that the processor about to write it
/// again has just used (on a virtual machine, memory a direct write issued from another
/// processor has read is several times slower to write again).
public protocol PositionedSink: Sendable {
    /// Runs `job` with a buffer of at least `bufferSize` bytes; returns when it has finished
    /// (rethrowing what it threw). Jobs of one read may run at once.
    func perform(bufferSize: Int, _ job: @escaping PositionedJob) async throws
}

/// A packet's work in a positioned read: decode frames into `buffer`, hand each decoded piece
/// to `write` with the file offset where it belongs.
public typealias PositionedJob = @Sendable (
    _ buffer: UnsafeMutableRawBufferPointer, _ write: (_ bytes: UnsafeRawBufferPointer, _ offset: UInt64) throws -> Void
) throws -> Void

/// A sink that passes every piece to a closure, running the jobs on the client's codec threads.
struct ClosureSink: PositionedSink {
    let write: @Sendable (UInt64, UnsafeRawBufferPointer) throws -> Void
    let codecs: CodecPool

    func perform(bufferSize: Int, _ job: @escaping PositionedJob) async throws {
        let (write, codecs) = (self.write, self.codecs)
        try await CodecPool.onCodecThread {
            try codecs.withScratch(bufferSize) { buffer in
                try job(buffer) { bytes, offset in try write(offset, bytes) }
            }
        }
    }
}

extension DFSClient {
    /// Runs `body` on one of the threads that decode and encode frames for every client in this
    /// process (one per core), off Swift's cooperative pool: a sink of its own runs its jobs
    /// here, as the sink behind `readPositioned(_:offset:length:write:progress:)` does.
    public static func onCodecThread<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await CodecPool.onCodecThread(body)
    }
}
