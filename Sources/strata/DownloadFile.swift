import CLinux
import Glibc
import NIOPosix
import StrataCore
import StrataClient

/// The local file a `get` writes: a few I/O threads each decode packets of frames into a buffer
/// of their own and write the bytes at their offsets, so while one thread waits on the disk
/// another decodes.
///
/// Pieces of a large file at page-aligned offsets and of whole pages are written with direct
/// I/O (`O_DIRECT`, from the threads' page-aligned buffers): they go to the disk without passing
/// through the page cache, so a download of gigabytes neither takes fresh memory for the cache
/// (which a virtual machine whose host reclaims idle memory makes costly) nor pushes the
/// machine's working set out. Other pieces (a file's short tail, blocks that end off a page
/// boundary, files on file systems without direct I/O, small files) go through the page cache
/// as usual.
final class DownloadFile: PositionedSink, @unchecked Sendable {
    let path: String
    private let buffered: Int32
    private let direct: Int32?

    /// Files smaller than this are written through the page cache only.
    static let directMinimumBytes: UInt64 = 8 * 1024 * 1024
    /// Direct I/O needs offsets, lengths and memory on this boundary.
    static let directAlignment = 4096

    /// Threads that decode and write for every download of this process: more than the cores,
    /// since each also waits on the disk.
    private static let writers: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 6)
        pool.start()
        return pool
    }()

    /// Creates (or truncates) the file and reserves `length` bytes for it.
    init(path: String, length: UInt64) throws(SystemCallError) {
        self.path = path
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SystemCallError(call: "open", path: path, errorNumber: errno) }
        buffered = descriptor
        // Reserving the file's blocks up front spares every write the allocation work.
        if length > 0 { _ = posix_fallocate(descriptor, 0, off_t(length)) }
        if length >= Self.directMinimumBytes {
            // File systems without direct I/O (tmpfs) refuse the flag: those files stay buffered.
            let second = open(path, O_WRONLY | O_CLOEXEC | strata_o_direct())
            direct = second >= 0 ? second : nil
        } else {
            direct = nil
        }
    }

    deinit { close() }

    private var closed = false

    /// Closes the file. Like `hdfs dfs -get`, nothing is forced to disk here: buffered pieces stay
    /// in the page cache until the system writes them back.
    func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(buffered)
        if let direct { _ = Glibc.close(direct) }
    }

    /// Runs a read's job on an I/O thread with a buffer of that thread's own to decode into
    /// (reused, so it stays in the processor's cache); the same thread writes what the job
    /// hands over, so a packet costs one thread switch, not one per frame.
    func perform(bufferSize: Int, _ job: @escaping PositionedJob) async throws {
        try await Self.writers.runIfActive {
            let buffers: ThreadBuffers
            if let current = Self.threadBuffers.currentValue, current.scratch.count >= bufferSize {
                buffers = current
            } else {
                buffers = ThreadBuffers(count: max(bufferSize, Self.stagingBytes))
                Self.threadBuffers.currentValue = buffers
            }
            try job(buffers.scratch.bytes) { bytes, offset in try self.write(bytes, at: offset, staging: buffers.staging) }
        }
    }

    /// Writes `bytes` at `offset` from the calling thread: whole pages at a page-aligned offset
    /// with direct I/O from `staging`, the rest through the page cache.
    ///
    /// The disk reads from the page-aligned `staging`, filled with non-temporal stores: on a
    /// virtual machine the host reads that memory for the write from another core, and filling
    /// it again with ordinary stores (or decoding into it) first pulls every cache line back,
    /// which made decoding up to three times slower in some runs.
    private func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, staging: StagingBuffer) throws {
        let alignment = Self.directAlignment
        if let direct, offset % UInt64(alignment) == 0, bytes.count % alignment == 0, bytes.count <= staging.count,
            let source = bytes.baseAddress, let target = staging.bytes.baseAddress
        {
            strata_copy_nontemporal(target, source, bytes.count)
            let aligned = UnsafeRawBufferPointer(rebasing: staging.bytes[0..<bytes.count])
            // A file system may still refuse a direct write (EINVAL): the page cache takes it.
            if (try? LocalFile.write(aligned, at: offset, descriptor: direct, path: path)) != nil { return }
        }
        try LocalFile.write(bytes, at: offset, descriptor: buffered, path: path)
    }

    /// A packet's raw bytes: what most jobs decode and write at once.
    static let stagingBytes = 1024 * 1024
    private static let threadBuffers = ThreadSpecificVariable<ThreadBuffers>()

    /// An I/O thread's buffers: one that jobs decode into, one the disk reads direct writes from.
    private final class ThreadBuffers: @unchecked Sendable {
        let scratch: StagingBuffer
        let staging: StagingBuffer
        init(count: Int) {
            scratch = StagingBuffer(count: count)
            staging = StagingBuffer(count: count)
        }
    }

    private final class StagingBuffer: @unchecked Sendable {
        let bytes: UnsafeMutableRawBufferPointer
        var count: Int { bytes.count }
        init(count: Int) { bytes = .allocate(byteCount: count, alignment: DownloadFile.directAlignment) }
        deinit { bytes.deallocate() }
    }
}
