import Foundation
import StrataClient

#if canImport(Glibc)
import Glibc
#endif

/// A task's standard input: a pipe the agent fills with the task's split while the task runs, so
/// the task starts at once and no copy of the split is written to disk.
///
/// A positioned DFS read (`DFSClient.readPositioned(_:offset:length:into:progress:)`) decodes
/// packets on the client's codec threads, several at once, and they finish out of order. As a
/// `PositionedSink`, the pipe hands each packet's job a buffer of its own (a slab), so a packet
/// is decoded straight into memory that then waits, without another copy, until the bytes
/// before it have gone into the pipe. Slabs come from a budget of `windowBytes` per task: a job
/// waits for one asynchronously (no thread is held), which is the backpressure that keeps a
/// task that reads slowly from having its whole split decoded into memory.
///
/// The write end is non-blocking and written by a dedicated thread per task, which waits in
/// `poll` for the pipe to have room or for `cancel`. A full pipe therefore never holds Swift's
/// cooperative pool, an event loop or a codec thread (all shared with the agent's other tasks
/// and its heartbeats), and a task that stops reading holds up only its own writer. The writer
/// ends the stream when it has written everything (`finish`), when the task has closed its end
/// (EPIPE: `head -1`, or a task that exited or was killed), or on `cancel`; it then closes the
/// write end, and later jobs of the read fail, which ends the read.
final class TaskInputPipe: PositionedSink, @unchecked Sendable {
    /// Decoded bytes waiting for the pipe (and buffers of packets being decoded), at most, per
    /// task. It is a multiple of the DFS client's packets (1 MiB read from a local replica,
    /// 4 MiB over the network) and of the packets it decodes ahead, so reading runs on while the
    /// writer waits for the task. It is exceeded only when the writer would otherwise wait
    /// forever: every slab holds bytes after a gap, and the packet that fills the gap waits for
    /// a slab (the client decodes a bounded number of packets ahead, which bounds the excess).
    static let windowBytes = 32 * 1024 * 1024

    /// The pipe's capacity asked of the kernel (`F_SETPIPE_SZ`; 1 MiB is the unprivileged
    /// maximum): fewer wake-ups of the writer and the task than the default 64 KiB.
    static let pipeCapacityBytes: Int32 = 1024 * 1024

    /// Linux's `F_SETPIPE_SZ` (not exported to Swift by Glibc).
    static let setPipeSizeCommand: Int32 = 1031

    /// Slabs are at least this large, so most can be reused for any packet.
    static let minimumSlabBytes = 1024 * 1024

    /// How the stream ended.
    enum Ending: Sendable, Equatable {
        /// Every byte up to `finish(at:)` went into the pipe.
        case complete
        /// The task closed its end (it exited, was killed, or stopped reading and closed stdin).
        case readerGone
        /// The agent stopped the stream (`cancel`).
        case cancelled
        /// Writing failed otherwise (errno).
        case failed(Int32)
    }

    /// Thrown into a read whose stream has ended.
    struct Ended: Error, CustomStringConvertible {
        var ending: Ending
        var description: String { "the task's standard input was closed (\(ending))" }
    }

    /// Memory a packet is decoded into, referenced by the job decoding it and by the pieces it
    /// holds until they are written.
    final class Slab: @unchecked Sendable {
        let bytes: UnsafeMutableRawBufferPointer
        /// Guarded by the pipe's lock.
        var references = 0
        init(count: Int) { bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64) }
        deinit { bytes.deallocate() }

        func contains(_ piece: UnsafeRawBufferPointer) -> Bool {
            guard let base = bytes.baseAddress, let start = piece.baseAddress else { return false }
            return start >= UnsafeRawPointer(base) && start + piece.count <= UnsafeRawPointer(base) + bytes.count
        }
    }

    /// Decoded bytes of the file at `offset`, waiting for the pipe.
    struct Piece {
        var offset: UInt64
        var bytes: UnsafeRawBufferPointer
        var slab: Slab
        var end: UInt64 { offset + UInt64(bytes.count) }
    }

    /// The read end, for the task; -1 once `closeReadEnd` has closed it.
    private(set) var readDescriptor: Int32
    let writeDescriptor: Int32
    /// A pipe that wakes the writer from `poll` on `cancel` (read end, write end).
    let wakeDescriptors: (Int32, Int32)

    // Guarded by `condition`.
    private let condition = NSCondition()
    /// The file offset of the next byte to go into the pipe.
    private var next: UInt64 = 0
    /// Where the stream ends, once known.
    private var end: UInt64?
    private var pieces: [Piece] = []
    private var freeSlabs: [Slab] = []
    /// Bytes of slabs out of `freeSlabs` (held by jobs, pieces or the writer).
    private var heldBytes = 0
    private var runningJobs = 0
    private var writing = false
    private var waiters: [(id: UInt64, size: Int, continuation: CheckedContinuation<Slab, any Error>)] = []
    private var nextWaiterId: UInt64 = 0
    private var ending: Ending?
    private var received: UInt64 = 0
    private var closed = false
    private var closedWaiters: [CheckedContinuation<Void, Never>] = []

    /// Makes the pipe and starts its writer thread. The read end is blocking (the task reads it
    /// as any stdin) and close-on-exec (only the task gets it, as its descriptor 0).
    init() throws {
        var descriptors: [Int32] = [-1, -1]
        guard ChildProcess.makePipe(&descriptors) else {
            throw AgentError(message: "cannot make a pipe for the task's input: \(String(cString: strerror(errno)))")
        }
        var wake: [Int32] = [-1, -1]
        guard ChildProcess.makePipe(&wake), Self.setNonBlocking(wake[0]), Self.setNonBlocking(wake[1]), Self.setNonBlocking(descriptors[1]) else {
            let problem = String(cString: strerror(errno))
            for descriptor in descriptors + wake where descriptor >= 0 { close(descriptor) }
            throw AgentError(message: "cannot set up the task's input pipe: \(problem)")
        }
        // A smaller pipe only costs wake-ups.
        _ = fcntl(descriptors[1], Self.setPipeSizeCommand, Self.pipeCapacityBytes)
        readDescriptor = descriptors[0]
        writeDescriptor = descriptors[1]
        wakeDescriptors = (wake[0], wake[1])
        let thread = Thread { [self] in writeLoop() }
        thread.name = "strata-task-input"
        thread.start()
    }

    private static func setNonBlocking(_ descriptor: Int32) -> Bool {
        fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) == 0
    }

    /// `condition`'s lock around `body` (callable from async code: `body` does not suspend).
    private func locked<Value>(_ body: () throws -> Value) rethrows -> Value {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    deinit {
        if readDescriptor >= 0 { close(readDescriptor) }
    }

    /// Closes the agent's copy of the read end, once the task has its own: while the agent holds
    /// one, a task that has gone away would leave the writer waiting on a full pipe.
    func closeReadEnd() {
        condition.lock()
        defer { condition.unlock() }
        if readDescriptor >= 0 {
            close(readDescriptor)
            readDescriptor = -1
        }
    }

    /// Sets the file offset of the stream's first byte; call before the read starts.
    func begin(at offset: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        next = offset
    }

    /// The stream ends at file offset `offset`: once the bytes before it are in the pipe, the
    /// writer closes it and the task reads end of file.
    func finish(at offset: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        end = offset
        condition.signal()
    }

    /// Adds bytes at a file offset (the line read on past the split's end), copied.
    func append(_ bytes: [UInt8], at offset: UInt64) throws {
        guard !bytes.isEmpty else { return }
        let slab = Slab(count: bytes.count)
        bytes.withUnsafeBytes { slab.bytes.copyMemory(from: $0) }
        condition.lock()
        defer { condition.unlock() }
        heldBytes += slab.bytes.count
        slab.references += 1
        defer { release(slab) }
        try accept(UnsafeRawBufferPointer(rebasing: slab.bytes[0..<bytes.count]), at: offset, in: slab)
    }

    /// Stops the stream (idempotent): the writer stops, closes the pipe and frees the pieces.
    func cancel() {
        condition.lock()
        defer { condition.unlock() }
        setEnding(.cancelled)
        // Under the lock: the writer closes the wake pipe under it too.
        if !closed {
            var one: UInt8 = 1
            _ = write(wakeDescriptors.1, &one, 1)
        }
    }

    /// How the stream ended, or nil while it runs.
    var endingNow: Ending? {
        condition.lock()
        defer { condition.unlock() }
        return ending
    }

    /// Decoded bytes the read handed over (those already written or past the start counted once).
    var receivedBytes: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return received
    }

    /// Returns once the writer has stopped and closed the write end.
    func waitUntilClosed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            defer { condition.unlock() }
            if closed {
                continuation.resume()
            } else {
                closedWaiters.append(continuation)
            }
        }
    }

    // MARK: - PositionedSink

    /// Runs the job on a codec thread with a slab from the budget. Once the stream has ended the
    /// job still runs, with a slab outside the budget: its first write throws `Ended`, which the
    /// client passes up as the sink's error and which ends the read (an error thrown here, before
    /// the job, would have the client try another replica instead).
    func perform(bufferSize: Int, _ job: @escaping PositionedJob) async throws {
        let slab = try await acquire(bufferSize)
        defer {
            locked {
                runningJobs -= 1
                release(slab)
                grantWaiters()
            }
        }
        try await DFSClient.onCodecThread {
            try job(slab.bytes) { bytes, offset in
                try self.locked { try self.accept(bytes, at: offset, in: slab) }
            }
        }
    }

    private func acquire(_ size: Int) async throws -> Slab {
        let id = locked {
            defer { nextWaiterId += 1 }
            return nextWaiterId
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Slab, any Error>) in
                condition.lock()
                defer { condition.unlock() }
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else if ending != nil {
                    runningJobs += 1
                    continuation.resume(returning: takeSlab(size))
                } else {
                    waiters.append((id, size, continuation))
                    grantWaiters()
                }
            }
        } onCancel: {
            // A read that failed over to another replica cancels its jobs and waits for them.
            condition.lock()
            defer { condition.unlock() }
            if let index = waiters.firstIndex(where: { $0.id == id }) {
                waiters.remove(at: index).continuation.resume(throwing: CancellationError())
            }
        }
    }

    // MARK: - Under the lock

    /// Keeps a piece of the file for the writer. Bytes already written are dropped (a read that
    /// fails over to another replica may hand the same bytes over again).
    private func accept(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, in slab: Slab) throws {
        if let ending { throw Ended(ending: ending) }
        let pieceEnd = offset + UInt64(bytes.count)
        guard pieceEnd > next, !bytes.isEmpty else { return }
        var piece: Piece
        if slab.contains(bytes) {
            piece = Piece(offset: offset, bytes: bytes, slab: slab)
            slab.references += 1
        } else {
            // Not decoded into the slab (a sink's contract allows it): kept as a copy.
            let copy = Slab(count: bytes.count)
            copy.bytes.copyMemory(from: bytes)
            heldBytes += copy.bytes.count
            copy.references = 1
            piece = Piece(offset: offset, bytes: UnsafeRawBufferPointer(rebasing: copy.bytes[0..<bytes.count]), slab: copy)
        }
        if piece.offset < next {
            let skip = Int(next - piece.offset)
            piece.bytes = UnsafeRawBufferPointer(rebasing: piece.bytes[skip...])
            piece.offset = next
        }
        received += UInt64(piece.bytes.count)
        pieces.append(piece)
        condition.signal()
    }

    private func takeSlab(_ size: Int) -> Slab {
        let slab: Slab
        if let index = freeSlabs.firstIndex(where: { $0.bytes.count >= size }) {
            slab = freeSlabs.remove(at: index)
        } else {
            // Free slabs too small for this packet give their memory back first.
            let count = max(size, Self.minimumSlabBytes)
            var freeBytes = freeSlabs.reduce(0) { $0 + $1.bytes.count }
            while !freeSlabs.isEmpty, heldBytes + freeBytes + count > Self.windowBytes {
                freeBytes -= freeSlabs.removeFirst().bytes.count
            }
            slab = Slab(count: count)
        }
        heldBytes += slab.bytes.count
        slab.references = 1
        return slab
    }

    private func release(_ slab: Slab) {
        slab.references -= 1
        guard slab.references == 0 else { return }
        heldBytes -= slab.bytes.count
        let freeBytes = freeSlabs.reduce(0) { $0 + $1.bytes.count }
        if ending == nil, heldBytes + freeBytes + slab.bytes.count <= Self.windowBytes {
            freeSlabs.append(slab)
        }
    }

    /// Whether the writer has nothing it can write now.
    private var writerStarved: Bool {
        !writing && !pieces.contains { $0.offset <= next && next < $0.end }
    }

    /// Hands slabs to waiting jobs, in the order they asked, while the budget allows; or one
    /// past it when nothing else can make progress.
    private func grantWaiters() {
        while let first = waiters.first {
            let fits = heldBytes + max(first.size, Self.minimumSlabBytes) <= Self.windowBytes
            guard fits || (runningJobs == 0 && writerStarved) else { return }
            waiters.removeFirst()
            runningJobs += 1
            first.continuation.resume(returning: takeSlab(first.size))
        }
    }

    private func setEnding(_ reason: Ending) {
        guard ending == nil else { return }
        ending = reason
        // Waiting jobs run (and stop at their first write); see `perform`.
        for waiter in waiters {
            runningJobs += 1
            waiter.continuation.resume(returning: takeSlab(waiter.size))
        }
        waiters = []
        freeSlabs = []
        condition.signal()
    }

    // MARK: - The writer thread

    private func writeLoop() {
        // A write to a pipe nobody reads raises SIGPIPE in the writing thread; blocked here, the
        // write fails with EPIPE instead, whatever the process does with the signal.
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &blocked, nil)

        condition.lock()
        while ending == nil {
            let written = pieces.filter { $0.end <= next }
            if !written.isEmpty {
                pieces.removeAll { $0.end <= next }
                for piece in written { release(piece.slab) }
            }
            if let index = pieces.firstIndex(where: { $0.offset <= next && next < $0.end }) {
                let piece = pieces.remove(at: index)
                let bytes = UnsafeRawBufferPointer(rebasing: piece.bytes[Int(next - piece.offset)...])
                writing = true
                condition.unlock()
                let (written, failure) = writeAll(bytes)
                condition.lock()
                writing = false
                next += UInt64(written)
                release(piece.slab)
                if let failure { setEnding(failure) }
                grantWaiters()
            } else if let end, next >= end {
                setEnding(.complete)
            } else {
                grantWaiters()
                condition.wait()
            }
        }
        for piece in pieces { release(piece.slab) }
        pieces = []
        close(writeDescriptor)
        close(wakeDescriptors.0)
        close(wakeDescriptors.1)
        closed = true
        let waiting = closedWaiters
        closedWaiters = []
        condition.unlock()
        for waiter in waiting { waiter.resume() }
    }

    /// Writes all of `bytes`, waiting in `poll` while the pipe is full; returns what was written
    /// and why it stopped short.
    private func writeAll(_ bytes: UnsafeRawBufferPointer) -> (Int, Ending?) {
        var written = 0
        while written < bytes.count {
            let count = write(writeDescriptor, bytes.baseAddress! + written, bytes.count - written)
            if count > 0 {
                written += count
                continue
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN:
                var descriptors = [
                    pollfd(fd: writeDescriptor, events: Int16(POLLOUT), revents: 0),
                    pollfd(fd: wakeDescriptors.0, events: Int16(POLLIN), revents: 0),
                ]
                _ = poll(&descriptors, 2, -1)
                // POLLERR on the write end (no reader) shows as EPIPE on the next write.
                if descriptors[1].revents != 0 { return (written, .cancelled) }
            case EPIPE:
                return (written, .readerGone)
            default:
                return (written, .failed(errno))
            }
        }
        return (written, nil)
    }
}
