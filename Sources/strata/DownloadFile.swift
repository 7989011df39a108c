import CLinux
import Glibc
import NIOPosix
import StrataCore
import Synchronization

/// The local file a `get` writes: pieces arrive from several tasks in any order and are written
/// at their offsets by I/O threads, so the tasks go on decoding while the disk works.
///
/// Pieces of a large file at page-aligned offsets and of whole pages are written with direct
/// I/O (`O_DIRECT`, from a few staging buffers): they go to the disk without passing through the
/// page cache, so a download of gigabytes neither takes fresh memory for the cache (which a
/// virtual machine whose host reclaims idle memory makes costly) nor pushes the machine's
/// working set out. Other pieces (a file's short tail, blocks that end off a page boundary, files
/// on file systems without direct I/O, small files) go through the page cache as usual.
final class DownloadFile: @unchecked Sendable {
    let path: String
    private let buffered: Int32
    private let direct: Int32?

    /// Files smaller than this are written through the page cache only.
    static let directMinimumBytes: UInt64 = 8 * 1024 * 1024
    /// Direct I/O needs offsets, lengths and memory on this boundary.
    static let directAlignment = 4096

    /// Threads that wait on the disk for every download of this process.
    private static let writers: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
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

    /// Writes `bytes` at `offset` on an I/O thread; returns when they are written.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws {
        let (path, buffered) = (self.path, self.buffered)
        let alignment = Self.directAlignment
        guard let direct, offset % UInt64(alignment) == 0, bytes.count % alignment == 0 else {
            let piece = Piece(bytes: bytes)
            try await Self.writers.runIfActive { try LocalFile.write(piece.bytes, at: offset, descriptor: buffered, path: path) }
            return
        }
        // The disk reads the bytes from a page-aligned buffer of this file's own, never from the
        // caller's: on a virtual machine, memory the disk has just read from is slow to write
        // again, and the caller's buffers are written by every decode.
        var staging = stagingBuffers.withLock { $0.popLast() } ?? StagingBuffer(count: max(bytes.count, Self.stagingBytes))
        if staging.count < bytes.count { staging = StagingBuffer(count: bytes.count) }
        defer { stagingBuffers.withLock { [staging] in $0.append(staging) } }
        staging.bytes.copyMemory(from: bytes)
        let piece = Piece(bytes: UnsafeRawBufferPointer(rebasing: staging.bytes[0..<bytes.count]))
        try await Self.writers.runIfActive {
            // A file system may still refuse a direct write (EINVAL): the page cache takes it.
            if (try? LocalFile.write(piece.bytes, at: offset, descriptor: direct, path: path)) != nil { return }
            try LocalFile.write(piece.bytes, at: offset, descriptor: buffered, path: path)
        }
    }

    static let stagingBytes = 256 * 1024
    private let stagingBuffers = Mutex<[StagingBuffer]>([])

    private final class StagingBuffer: @unchecked Sendable {
        let bytes: UnsafeMutableRawBufferPointer
        var count: Int { bytes.count }
        init(count: Int) { bytes = .allocate(byteCount: count, alignment: DownloadFile.directAlignment) }
        deinit { bytes.deallocate() }
    }

    /// Bytes lent to an I/O thread while their owner waits for the write.
    private struct Piece: @unchecked Sendable {
        var bytes: UnsafeRawBufferPointer
    }
}
