import Foundation
import Logging
import NIOCore
import StrataCore
import StrataTestKit
@testable import StrataWire
import SwiftProtobuf
import Synchronization
import Testing

@testable import StrataNameNode

/// The name node as a shell around its decisions: a manual clock drives its monitors (no sleeps),
/// and a stalled journal never holds up the reads answered on the event loops.
@Suite struct NameNodeShellTests {
    static let superuser = "strata"

    func makeNameNode(
        clock: any StrataCore.Clock, _ configure: (inout NameNodeConfiguration) -> Void = { _ in }
    ) throws -> (NameNode, String) {
        let directory = temporaryDirectory()
        var configuration = NameNodeConfiguration(directory: directory, superuser: Self.superuser)
        configuration.rpcPort = 0
        configure(&configuration)
        var logger = Logger(label: "strata-test")
        logger.logLevel = .warning
        return (try NameNode(configuration: configuration, logger: logger, clock: clock), directory)
    }

    func call(_ method: String, _ request: some SwiftProtobuf.Message, clientName: String = "") throws -> RPCCall {
        var header = Strata_Wire_RequestHeader()
        header.method = method
        header.user = Self.superuser
        header.clientName = clientName
        return RPCCall(header: header, body: try request.serializedBuffer(), remoteAddress: nil)
    }

    func register(_ nameNode: NameNode, node nodeId: String) throws {
        var request = Strata_Wire_RegisterRequest()
        request.node.nodeID = nodeId
        request.node.ipAddress = "127.0.0.1"
        request.node.hostname = "127.0.0.1"
        request.node.transferPort = 9866
        request.node.capacity = 1 << 40
        request.node.remaining = 1 << 39
        _ = try nameNode.registerDatanode(request)
    }

    func heartbeat(_ nameNode: NameNode, node nodeId: String) {
        var request = Strata_Wire_HeartbeatRequest()
        request.nodeID = nodeId
        request.capacity = 1 << 40
        request.remaining = 1 << 39
        _ = nameNode.heartbeat(request)
    }

    func writer(of path: String, in nameNode: NameNode) -> String? {
        nameNode.state.withLock { $0.namespace.writer(of: path) }
    }

    @Test func aWallClockStepOfAnHourEitherWayChangesNoLeaseAndNoNodesLiveness() async throws {
        let clock = ManualClock()
        let (nameNode, directory) = try makeNameNode(clock: clock) {
            $0.blockManager.heartbeatTimeoutMs = 30_000
            $0.leases.softLimitMs = 60_000
            $0.leases.hardLimitMs = 120_000
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try register(nameNode, node: "n0")
        var create = Strata_Wire_CreateRequest()
        create.path = "/open-file"
        create.permission = 0o644
        create.replication = 1
        _ = try await nameNode.handle(try call("create", create, clientName: "writer-1"))
        await nameNode.leaseMonitorPass()
        #expect(writer(of: "/open-file", in: nameNode) == "writer-1")

        // NTP or a resumed VM steps the wall clock an hour forward, then two hours back: no
        // time passes on the monotonic line, so nothing expires.
        for step: Int64 in [3_600_000, -7_200_000] {
            clock.stepWallClock(byMilliseconds: step)
            await nameNode.monitorPass()
            await nameNode.leaseMonitorPass()
            #expect(nameNode.statistics.liveDataNodes == 1)
            #expect(writer(of: "/open-file", in: nameNode) == "writer-1")
        }

        // Time passing does: a node silent past the heartbeat timeout is dead, one that
        // heartbeats is not, and a writer silent past the hard limit loses its file.
        clock.advance(milliseconds: 20_000)
        heartbeat(nameNode, node: "n0")
        clock.advance(milliseconds: 20_000)
        await nameNode.monitorPass()
        #expect(nameNode.statistics.liveDataNodes == 1)
        clock.advance(milliseconds: 10_001)
        await nameNode.monitorPass()
        #expect(nameNode.statistics.deadDataNodes == 1)
        await nameNode.leaseMonitorPass()
        #expect(writer(of: "/open-file", in: nameNode) == "writer-1")
        clock.advance(milliseconds: 70_000)
        await nameNode.leaseMonitorPass()
        #expect(writer(of: "/open-file", in: nameNode) == nil)
        await nameNode.shutdown()
    }

    @Test func readsAnswerWithin100msWhileTheJournalsDiskIsStalledAndWritesWait() async throws {
        let (nameNode, directory) = try makeNameNode(clock: SystemClock()) { $0.journalMaximumQueuedRecords = 4 }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var mkdir = Strata_Wire_MkdirsRequest()
        mkdir.path = "/readable"
        mkdir.permission = 0o755
        _ = try await nameNode.handle(try call("mkdirs", mkdir))

        // Every commit from now on waits until the test lets it go, as on a disk that hangs.
        let gate = Gate()
        nameNode.journal.setCommitHookForTesting { gate.passWhenOpen() }
        let base = nameNode.journal.lastSubmittedTransactionId
        let writes = 12
        let finishedWrites = Counter()
        let writers = (0..<writes).map { index in
            Task {
                var request = Strata_Wire_MkdirsRequest()
                request.path = "/stalled/\(index)"
                request.permission = 0o755
                request.createParent = true
                _ = try await nameNode.handle(try call("mkdirs", request))
                finishedWrites.add()
            }
        }
        // The queue fills (its bound is 4 edits); the other writes wait for room.
        #expect(try await eventually(timeoutSeconds: 30) {
            nameNode.journal.lastSubmittedTransactionId - base >= 4 && gate.waiting
        })

        // Reads run as the event loops run them (`handleInline`), on a thread of their own so
        // that a read stuck behind the lock shows as a failed bound, not a hung test.
        let info = try call("getFileInfo", { var request = Strata_Wire_PathRequest(); request.path = "/readable"; return request }())
        let listing = try call("getListing", { var request = Strata_Wire_GetListingRequest(); request.path = "/"; return request }())
        let slowest = Mutex<Duration?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var worst = Duration.zero
            for _ in 0..<20 {
                for read in [info, listing] {
                    let started = ContinuousClock.now
                    _ = try? nameNode.handleInline(read)
                    worst = max(worst, ContinuousClock.now - started)
                }
            }
            slowest.withLock { $0 = worst }
            done.signal()
        }
        let answered = done.wait(timeout: .now() + 5) == .success
        #expect(answered, "reads were held up behind the stalled journal")
        let worst = slowest.withLock { $0 }
        #expect(worst.map { $0 < .milliseconds(100) } == true, "slowest read took \(String(describing: worst))")
        #expect(finishedWrites.value == 0, "a write was acknowledged before the journal made it durable")

        gate.open()
        for writer in writers { try await writer.value }
        #expect(finishedWrites.value == writes)
        if !answered { _ = done.wait(timeout: .now() + 30) }
        let listed = try nameNode.handleInline(try call("getListing", {
            var request = Strata_Wire_GetListingRequest()
            request.path = "/stalled"
            return request
        }())) as? Strata_Wire_GetListingResponse
        #expect(listed?.entries.count == writes)
        await nameNode.shutdown()
    }
}

/// A gate commits pass through once it is open; `waiting` says whether one is held at it.
final class Gate: Sendable {
    private let condition = NSCondition()
    private let state = Mutex<(open: Bool, waiting: Int)>((false, 0))

    var waiting: Bool { state.withLock { $0.waiting > 0 } }

    func passWhenOpen() {
        condition.lock()
        defer { condition.unlock() }
        state.withLock { $0.waiting += 1 }
        while !state.withLock({ $0.open }) { condition.wait() }
        state.withLock { $0.waiting -= 1 }
    }

    func open() {
        condition.lock()
        state.withLock { $0.open = true }
        condition.broadcast()
        condition.unlock()
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func add() { count.withLock { $0 += 1 } }
}
