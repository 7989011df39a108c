import Foundation
import StrataCore
import StrataTestKit
@testable import StrataWire
import SwiftProtobuf
import Synchronization
import Testing

@testable import StrataNameNode

/// The name node's whole-namespace work goes a chunk per hold of its lock: full block reports
/// and forgetting a dead node's replicas. Reads are answered between chunks.
@Suite struct NameNodeScanTests {
    let shell = NameNodeShellTests()

    func handle<Response: SwiftProtobuf.Message>(
        _ nameNode: NameNode, _ method: String, _ request: some SwiftProtobuf.Message, clientName: String = "writer",
        as: Response.Type = Response.self
    ) async throws -> Response {
        try #require(try await nameNode.handle(try shell.call(method, request, clientName: clientName)) as? Response)
    }

    func received(_ block: Strata_Wire_ExtendedBlock, node: String, finalized: Bool = true) -> Strata_Wire_IncrementalBlockReportRequest {
        var report = Strata_Wire_IncrementalBlockReportRequest()
        report.nodeID = node
        var replica = Strata_Wire_ReportedBlock()
        replica.block = block
        replica.state = finalized ? .finalized : .beingWritten
        replica.storedBytes = block.numBytes / 2
        report.received = [replica]
        return report
    }

    /// Data nodes n0, n1, n2; directories /a/b/c, /a/d, /e/f; closed files of one or two blocks
    /// with one to three of their three replicas reported, an empty file and a file being written.
    func populate(_ nameNode: NameNode) async throws {
        for node in ["n0", "n1", "n2"] { try shell.register(nameNode, node: node) }
        for directory in ["/a/b/c", "/a/d", "/e/f"] {
            var mkdirs = Strata_Wire_MkdirsRequest()
            mkdirs.path = directory
            mkdirs.permission = 0o755
            mkdirs.createParent = true
            let _: Strata_Wire_BoolResponse = try await handle(nameNode, "mkdirs", mkdirs)
        }
        let files: [(path: String, blocks: Int, replicas: Int, close: Bool)] = [
            ("/a/one", 1, 3, true), ("/a/b/two", 2, 2, true), ("/a/b/c/three", 1, 1, true), ("/e/f/four", 1, 3, true),
            ("/a/d/empty", 0, 0, true), ("/e/open", 1, 1, false),
        ]
        for file in files {
            var create = Strata_Wire_CreateRequest()
            create.path = file.path
            create.permission = 0o644
            create.replication = 3
            let _: Strata_Wire_CreateResponse = try await handle(nameNode, "create", create)
            var previous: Strata_Wire_ExtendedBlock?
            for _ in 0..<file.blocks {
                var add = Strata_Wire_AddBlockRequest()
                add.path = file.path
                if let previous { add.previous = previous }
                let located = try await handle(nameNode, "addBlock", add, as: Strata_Wire_AddBlockResponse.self).block
                var block = located.block
                block.numBytes = 1_000
                for target in located.locations.prefix(file.replicas) {
                    let _: Strata_Wire_Empty = try await handle(nameNode, "blockReceivedAndDeleted", received(block, node: target.nodeID, finalized: file.close))
                }
                previous = block
            }
            guard file.close else { continue }
            var complete = Strata_Wire_CompleteRequest()
            complete.path = file.path
            if let previous { complete.last = previous }
            let completed = try await handle(nameNode, "complete", complete, as: Strata_Wire_BoolResponse.self)
            #expect(completed.result)
        }
    }

    /// A full report of 5,000 replicas in chunks of ten: reads are answered while it is under way,
    /// and the report ends as one processed at once would.
    @Test func readsAreAnsweredBetweenTheChunksOfAFullBlockReport() async throws {
        let (nameNode, directory) = try shell.makeNameNode(clock: SystemClock()) { $0.scanChunkBlockIds = 10 }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try shell.register(nameNode, node: "n0")
        var report = Strata_Wire_BlockReportRequest()
        report.nodeID = "n0"
        // Replicas of blocks the namespace does not have: each one is to be deleted.
        report.blocks = (0..<5_000).map { offset in
            var replica = Strata_Wire_ReportedBlock()
            replica.block.blockID = Namespace.firstBlockId + 1_000_000 + UInt64(offset)
            replica.block.generationStamp = 1
            replica.block.numBytes = 10
            return replica
        }
        var info = Strata_Wire_PathRequest()
        info.path = "/"
        let read = try shell.call("getFileInfo", info)

        // The reader runs as the event loops run reads (`handleInline`), on a thread of its own.
        let reportDone = Atomic<Bool>(false)
        let readerStarted = Atomic<Bool>(false)
        let answeredDuringReport = Mutex(0)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            readerStarted.store(true, ordering: .releasing)
            while !reportDone.load(ordering: .acquiring) {
                // Part of the report processed, part not: the lock is free between its chunks.
                let partial = { () -> Bool in
                    nameNode.state.withLock { state in
                        let queued = state.blockManager.nodes[0].pendingInvalidations.count
                        return queued > 0 && queued < 5_000 && state.blockManager.blockReportsInProgress[0] != nil
                    }
                }
                guard partial() else { continue }
                let answered = (try? nameNode.handleInline(read)) as? Strata_Wire_GetFileInfoResponse
                if answered?.status.path == "/" && partial() { answeredDuringReport.withLock { $0 += 1 } }
            }
            finished.signal()
        }
        while !readerStarted.load(ordering: .acquiring) { await Task.yield() }
        let _: Strata_Wire_Empty = try await handle(nameNode, "blockReport", report)
        reportDone.store(true, ordering: .releasing)
        #expect(finished.wait(timeout: .now() + 30) == .success)

        #expect(answeredDuringReport.withLock { $0 } > 0, "no read was answered while the report was under way")
        let (queued, received, inProgress) = nameNode.state.withLock { state in
            (state.blockManager.nodes[0].pendingInvalidations.count, state.blockManager.nodes[0].blockReportReceived,
             state.blockManager.blockReportsInProgress.isEmpty)
        }
        #expect(queued == 5_000)
        #expect(received && inProgress)
        await nameNode.shutdown()
    }

    /// A node that stops sending heartbeats is dead at the next monitor pass, which forgets its
    /// replicas (one block id per hold here) before it schedules their copies.
    @Test func theMonitorForgetsADeadNodesReplicas() async throws {
        let clock = ManualClock()
        let (nameNode, directory) = try shell.makeNameNode(clock: clock) {
            $0.scanChunkBlockIds = 1
            $0.blockManager.heartbeatTimeoutMs = 30_000
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await populate(nameNode)
        let held = { (node: String) in
            nameNode.state.withLock { state -> Int in
                let index = state.blockManager.index(ofNode: node)!
                return state.blockManager.replicas.filter { state.blockManager.replicaNodes($0.key, $0.value).contains(index) }.count
            }
        }
        #expect(held("n0") > 0)
        clock.advance(milliseconds: 20_000)
        shell.heartbeat(nameNode, node: "n1")
        shell.heartbeat(nameNode, node: "n2")
        clock.advance(milliseconds: 15_000)
        await nameNode.monitorPass()
        #expect(nameNode.statistics.deadDataNodes == 1)
        #expect(held("n0") == 0)
        #expect(nameNode.state.withLock { !$0.blockManager.hasDeadReplicasToForget && $0.blockManager.nodes[0].blockCount == 0 })
        var fsck = Strata_Wire_FsckRequest()
        fsck.path = "/"
        let report = try await handle(nameNode, "fsck", fsck, as: Strata_Wire_FsckReport.self)
        #expect(report.deadDatanodes == 1 && report.liveDatanodes == 2)
        await nameNode.shutdown()
    }
}
