import Foundation
import StrataCompute
import Testing

@testable import StrataAgent

/// The pipe a task's split streams through: pieces handed over out of order reach the task in
/// order, a task that stops reading ends the stream, and no descriptor is left open.
@Suite(.timeLimit(.minutes(2)))
struct TaskInputPipeTests {
    /// Bytes 0..<count of a recognisable pattern (lines, so a reader can check order too).
    static func pattern(_ count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        var line = 0
        while bytes.count < count {
            bytes += Array("line \(line)\n".utf8)
            line += 1
        }
        return Array(bytes.prefix(count))
    }

    /// Hands `bytes` to the pipe as positioned jobs of `pieceBytes`, in a shuffled order and
    /// several at once, starting at file offset `base`; then finishes the stream. Returns
    /// without error when the stream ended early (the reader went away).
    static func feed(_ pipe: TaskInputPipe, _ bytes: [UInt8], base: UInt64, pieceBytes: Int, seed: UInt64) async throws {
        pipe.begin(at: base)
        var generator = SeededGenerator(seed: seed)
        let offsets = Array(stride(from: 0, to: bytes.count, by: pieceBytes)).shuffled(using: &generator)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for offset in offsets {
                group.addTask {
                    let count = min(pieceBytes, bytes.count - offset)
                    try await pipe.perform(bufferSize: count) { buffer, write in
                        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + count])) }
                        try write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), base + UInt64(offset))
                    }
                }
            }
            try await group.waitForAll()
        }
        pipe.finish(at: base + UInt64(bytes.count))
    }

    /// Reads a descriptor to its end on a thread of its own.
    static func readToEnd(_ descriptor: Int32) async -> [UInt8] {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var output: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                    if count < 0, errno == EINTR { continue }
                    if count <= 0 { break }
                    output += buffer[0..<count]
                }
                close(descriptor)
                continuation.resume(returning: output)
            }
        }
    }

    /// The pipes a task input pipe opened (its own and its writer's wake-up pipe), as
    /// `/proc/self/fd` names them; read before anything is closed.
    static func pipeNames(_ pipe: TaskInputPipe) -> Set<String> {
        Set([pipe.writeDescriptor, pipe.wakeDescriptors.0].map { descriptor in
            var status = stat()
            fstat(descriptor, &status)
            return "pipe:[\(status.st_ino)]"
        })
    }

    /// Which of `names` this process still has open (by any descriptor). Other tests running
    /// meanwhile open pipes of their own, so the check is by the pipes' identities, not a count.
    static func stillOpen(_ names: Set<String>) -> Set<String> {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }).intersection(names)
    }

    @Test func piecesHandedOverOutOfOrderComeOutInOrderPastTheWindow() async throws {
        // Three windows' worth, in pieces of 1 MiB: the budget makes jobs wait for the reader.
        let bytes = Self.pattern(3 * TaskInputPipe.windowBytes + 12345)
        let pipe = try TaskInputPipe()
        let names = Self.pipeNames(pipe)
        let reader = fcntl(pipe.readDescriptor, F_DUPFD_CLOEXEC, 3)
        pipe.closeReadEnd()
        async let received = Self.readToEnd(reader)
        try await Self.feed(pipe, bytes, base: 1000, pieceBytes: 1 << 20, seed: 42)
        let output = await received
        await pipe.waitUntilClosed()
        #expect(output.count == bytes.count)
        #expect(output == bytes)
        #expect(pipe.endingNow == .complete)
        #expect(Self.stillOpen(names).isEmpty)
    }

    @Test func aReaderThatGoesAwayEndsTheStreamAndLaterJobsFail() async throws {
        let bytes = Self.pattern(2 * TaskInputPipe.windowBytes)
        let pipe = try TaskInputPipe()
        let names = Self.pipeNames(pipe)
        let reader = fcntl(pipe.readDescriptor, F_DUPFD_CLOEXEC, 3)
        pipe.closeReadEnd()
        // The reader takes one buffer's worth and closes its end, as `head -1` does.
        var first = [UInt8](repeating: 0, count: 100)
        let feeding = Task { try await Self.feed(pipe, bytes, base: 0, pieceBytes: 1 << 20, seed: 7) }
        let count = first.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
        close(reader)
        #expect(count > 0)
        await #expect(throws: TaskInputPipe.Ended.self) { try await feeding.value }
        await pipe.waitUntilClosed()
        #expect(pipe.endingNow == .readerGone)
        #expect(Self.stillOpen(names).isEmpty)
    }

    @Test func cancelStopsAWriterWaitingOnAFullPipe() async throws {
        let pipe = try TaskInputPipe()
        let names = Self.pipeNames(pipe)
        // Nobody reads: the writer fills the pipe and waits in poll. More than the pipe and the
        // pipe's window hold together, so the feeding cannot finish either.
        let total = TaskInputPipe.windowBytes + 16 << 20
        let feeding = Task { try await Self.feed(pipe, Self.pattern(total), base: 0, pieceBytes: 1 << 20, seed: 3) }
        // Until the pipe is full (the bytes waiting in it reach its capacity): the writer is
        // then blocked on it.
        let capacity = fcntl(pipe.readDescriptor, 1032)  // F_GETPIPE_SZ
        try #require(capacity > 0)
        let deadline = ContinuousClock.now + .seconds(30)
        var waiting: Int32 = 0
        while ioctl(pipe.readDescriptor, UInt(FIONREAD), &waiting) == 0, waiting < capacity {
            try #require(ContinuousClock.now < deadline, "the pipe holds \(waiting) of \(capacity) bytes")
            try await Task.sleep(for: .milliseconds(1))
        }
        pipe.cancel()
        await pipe.waitUntilClosed()
        await #expect(throws: TaskInputPipe.Ended.self) { try await feeding.value }
        pipe.closeReadEnd()
        #expect(pipe.endingNow == .cancelled)
        #expect(Self.stillOpen(names).isEmpty)
    }
}

/// The pipe as a task's stdin, for a process and for a runc container.
@Suite(.enabled(if: ExecutorFixture.canRun, "needs root and cgroups"), .timeLimit(.minutes(2)))
struct TaskInputPipeExecutorTests {
    func run(_ fixture: ExecutorFixture, _ taskId: String, _ arguments: [String], bytes: [UInt8], container: ContainerSpec?) async throws
        -> (TaskOutcome, String, TaskInputPipe.Ending?)
    {
        let sandbox = try fixture.sandbox(taskId)
        let pipe = try TaskInputPipe()
        let names = TaskInputPipeTests.pipeNames(pipe)
        let task: RunningTask
        do {
            task = try await fixture.executor.launch(
                TaskLaunch(
                    taskId: taskId, arguments: arguments, user: "nobody", sandbox: sandbox, standardInputDescriptor: pipe.readDescriptor,
                    resources: Resources(cpus: 0.1, memMB: 64), container: container))
        } catch {
            pipe.closeReadEnd()
            pipe.cancel()
            await pipe.waitUntilClosed()
            throw error
        }
        pipe.closeReadEnd()
        async let feeding: Void = TaskInputPipeTests.feed(pipe, bytes, base: 0, pieceBytes: 256 << 10, seed: 11)
        let outcome = await task.wait()
        pipe.cancel()
        _ = try? await feeding
        await pipe.waitUntilClosed()
        #expect(TaskInputPipeTests.stillOpen(names).isEmpty)
        return (outcome, fixture.read("\(sandbox)/stdout"), pipe.endingNow)
    }

    @Test func aProcessReadsTheWholeStreamAndHeadOneEndsItEarly() async throws {
        try await withExecutorFixture { fixture in
            let bytes = TaskInputPipeTests.pattern(20 << 20)
            let whole = try await run(fixture, "streamed-wc", ["wc", "-c"], bytes: bytes, container: nil)
            #expect(whole.0.state == .finished)
            #expect(whole.1.trimmingCharacters(in: .whitespacesAndNewlines) == String(bytes.count))
            #expect(whole.2 == .complete)
            let head = try await run(fixture, "streamed-head", ["head", "-1"], bytes: bytes, container: nil)
            #expect(head.0.state == .finished)
            #expect(head.1 == "line 0\n")
            #expect(head.2 == .readerGone || head.2 == .cancelled)
        }
    }

    @Test(.enabled(if: ExecutorFixture.canRunContainers, "needs runc and busybox"))
    func aRuncContainerReadsItsSplitFromThePipe() async throws {
        try await withExecutorFixture { fixture in
            let bytes = TaskInputPipeTests.pattern(12 << 20)
            let root = ContainerSpec(rootFilesystem: try fixture.busyboxRootFilesystem())
            let whole = try await run(fixture, "streamed-boxed", ["sh", "-c", "cat > /mnt/sandbox/copy"], bytes: bytes, container: root)
            #expect(whole.0.state == .finished, "\(whole.0.message)")
            #expect(whole.2 == .complete)
            let copy = FileManager.default.contents(atPath: "\(fixture.directory)/streamed-boxed/copy").map { [UInt8]($0) }
            #expect(copy == bytes)
            let head = try await run(fixture, "streamed-boxed-head", ["head", "-1"], bytes: bytes, container: root)
            #expect(head.0.state == .finished, "\(head.0.message)")
            #expect(head.1 == "line 0\n")
        }
    }
}

/// A small deterministic generator (SplitMix64), so a shuffled order can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE5_E4B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
