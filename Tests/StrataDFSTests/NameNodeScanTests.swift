import Foundation
import StrataCore
import StrataTestKit
@testable import StrataWire
import SwiftProtobuf
import Synchronization
import Testing

@testable import StrataNameNode

/// The name node's whole-namespace work goes a chunk per hold of its lock: full block reports,
/// forgetting a dead node's replicas, fsck and content summaries. Reads are answered between
/// chunks, and the chunk size changes no answer.
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

    @Test func fsckAndContentSummariesInChunksOfOneInodeAnswerAsInOneChunk() async throws {
        var answers: [(Strata_Wire_FsckReport, [Strata_Wire_ContentSummary])] = []
        for chunk in [1, 5000] {
            let (nameNode, directory) = try shell.makeNameNode(clock: ManualClock()) { $0.subtreeChunkInodes = chunk }
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await populate(nameNode)
            var fsck = Strata_Wire_FsckRequest()
            fsck.path = "/"
            fsck.listFiles = true
            let report = try await handle(nameNode, "fsck", fsck, as: Strata_Wire_FsckReport.self)
            var summaries: [Strata_Wire_ContentSummary] = []
            for path in ["/", "/a", "/a/b/two"] {
                var request = Strata_Wire_PathRequest()
                request.path = path
                // Not answered on the event loop any more: it walks a subtree.
                #expect(try nameNode.handleInline(try shell.call("getContentSummary", request)) == nil)
                summaries.append(try await handle(nameNode, "getContentSummary", request))
            }
            answers.append((report, summaries))
            await nameNode.shutdown()
        }
        let (report, summaries) = answers[0]
        #expect(report == answers[1].0)
        #expect(summaries == answers[1].1)
        #expect(report.totalFiles == 6)
        #expect(report.totalDirectories == 7)
        #expect(report.openFiles == 1)
        #expect(report.totalBlocks == 5)
        #expect(report.minReplicatedBlocks == 5)
        #expect(report.underReplicatedBlocks == 3)
        #expect(report.missingBlocks == 0 && report.healthy)
        #expect(report.totalSize == 5_000)
        #expect(report.problemFiles.map(\.path) == ["/a/b/c/three", "/a/b/two", "/a/d/empty", "/a/one", "/e/f/four", "/e/open"])
        #expect(summaries[0].fileCount == 6 && summaries[0].directoryCount == 7 && summaries[0].length == 5_000)
        #expect(summaries[1].fileCount == 4 && summaries[1].directoryCount == 4)
        #expect(summaries[2].fileCount == 1 && summaries[2].directoryCount == 0 && summaries[2].storedBytes == 2 * 2 * 500)
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
