import CLinux
import Glibc

/// An error from the operating system, with the call and path that failed.
public struct SystemCallError: Error, CustomStringConvertible, Sendable, Equatable {
    public var call: String
    public var path: String
    public var errorNumber: Int32

    public init(call: String, path: String, errorNumber: Int32) {
        self.call = call
        self.path = path
        self.errorNumber = errorNumber
    }

    public var description: String {
        "\(call) \(path): \(String(cString: strerror(errorNumber)))"
    }
}

/// A local file opened by descriptor, with positional reads and writes. Block files, journals and
/// temporary files on data nodes go through this type so every system call error carries the path.
///
/// Not thread-safe for concurrent writes; positional reads may be issued from several threads.
public final class LocalFile: @unchecked Sendable {
    public let path: String
    public let descriptor: Int32
    private var isClosed = false

    public enum Mode: Sendable {
        case readOnly
        case readWrite
        /// Create a new file; fails if one exists at the path.
        case createExclusive
        /// Create the file or truncate an existing one.
        case createOrTruncate
    }

    public init(path: String, mode: Mode, permissions: mode_t = 0o644) throws(SystemCallError) {
        let flags: Int32
        switch mode {
        case .readOnly: flags = O_RDONLY
        case .readWrite: flags = O_RDWR
        case .createExclusive: flags = O_RDWR | O_CREAT | O_EXCL
        case .createOrTruncate: flags = O_RDWR | O_CREAT | O_TRUNC
        }
        let fd = open(path, flags | O_CLOEXEC, permissions)
        if fd < 0 { throw SystemCallError(call: "open", path: path, errorNumber: errno) }
        self.path = path
        self.descriptor = fd
    }

    deinit {
        if !isClosed { _ = Glibc.close(descriptor) }
    }

    public func close() throws(SystemCallError) {
        guard !isClosed else { return }
        isClosed = true
        if Glibc.close(descriptor) != 0 {
            throw SystemCallError(call: "close", path: path, errorNumber: errno)
        }
    }

    /// The file's current size in bytes.
    public func size() throws(SystemCallError) -> UInt64 {
        var info = stat()
        if fstat(descriptor, &info) != 0 {
            throw SystemCallError(call: "fstat", path: path, errorNumber: errno)
        }
        return UInt64(info.st_size)
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read (fewer only at end
    /// of file).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SystemCallError) -> Int {
        var done = 0
        while done < buffer.count {
            let result = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if result < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "pread", path: path, errorNumber: errno)
            }
            if result == 0 { break }
            done += result
        }
        return done
    }

    /// Reads exactly `count` bytes at `offset`, or fewer at end of file.
    public func read(count: Int, at offset: UInt64) throws(SystemCallError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = try bytes.withMutableBytes { (buffer) throws(SystemCallError) -> Int in
            try read(into: buffer, at: offset)
        }
        if got < count { bytes.removeLast(count - got) }
        return bytes
    }

    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(SystemCallError) {
        try Self.write(bytes, at: offset, descriptor: descriptor, path: path)
    }

    /// Writes all of `bytes` at `offset` of an open descriptor (`pwrite` until done); `path`
    /// names the file in errors.
    public static func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, descriptor: Int32, path: String) throws(SystemCallError) {
        var done = 0
        while done < bytes.count {
            let result = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if result < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "pwrite", path: path, errorNumber: errno)
            }
            done += result
        }
    }

    public func write(_ bytes: [UInt8], at offset: UInt64) throws(SystemCallError) {
        try bytes.withBytes { (buffer) throws(SystemCallError) in try write(buffer, at: offset) }
    }

    /// Cuts or extends the file to `size` bytes.
    public func truncate(to size: UInt64) throws(SystemCallError) {
        if ftruncate(descriptor, off_t(size)) != 0 {
            throw SystemCallError(call: "ftruncate", path: path, errorNumber: errno)
        }
    }

    /// Makes the file's data durable (fdatasync): after this returns, a crash keeps what was written.
    public func synchronize() throws(SystemCallError) {
        if fdatasync(descriptor) != 0 {
            throw SystemCallError(call: "fdatasync", path: path, errorNumber: errno)
        }
    }

    /// Starts writing the file's dirty pages to disk without waiting (Linux `sync_file_range`), so
    /// a later `synchronize` has little left to wait for (HDFS `dfs.datanode.sync.behind.writes`).
    public func startWriteback() {
        _ = strata_start_writeback(descriptor)
    }

    /// Makes a directory entry durable (fsync of the directory), needed after create or rename.
    public static func synchronizeDirectory(_ path: String) throws(SystemCallError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SystemCallError(call: "open", path: path, errorNumber: errno) }
        defer { _ = Glibc.close(fd) }
        if fsync(fd) != 0 { throw SystemCallError(call: "fsync", path: path, errorNumber: errno) }
    }
}
