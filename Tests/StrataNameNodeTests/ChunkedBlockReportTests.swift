import StrataTestKit
import StrataWire
import Testing

@testable import StrataNameNode

/// Full block reports and dead nodes' replicas as the name node handles them: a chunk per hold of
/// its lock, with other calls between chunks. As pure block manager logic.
@Suite struct ChunkedBlockReportTests {
    let suite = BlockManagerTests()
    /// Block ids as the namespace allocates them (a dead node's sweep walks ids from here).
    let base = Namespace.firstBlockId

    func finalized(_ id: UInt64) -> Strata_Wire_ReportedBlock {
        suite.report(id, stamp: 1, numBytes: BlockManagerTests.blockBytes, finalized: true)
    }

    func deleted(_ id: UInt64) -> Strata_Wire_ExtendedBlock {
        var block = Strata_Wire_ExtendedBlock()
        block.blockID = id
        block.generationStamp = 1
        return block
    }

    /// Nodes holding a block, as the manager records them (live or not, counted or not).
    func holders(_ id: UInt64, _ manager: BlockManager) -> Set<UInt16> {
        manager.replicas[id].map { Set(manager.replicaNodes(id, $0)) } ?? []
    }

    /// Runs a whole report one replica and one block id per step, with `between` after each step.
    func reportInChunksOfOne(
        _ reported: [Strata_Wire_ReportedBlock], node: UInt16, ids: Range<UInt64>, in manager: inout BlockManager,
        record: (UInt64) -> BlockRecordView?, between: (inout BlockManager, Int) -> Void = { _, _ in }
    ) -> BlockManager.BlockReportStatus {
        let ticket = manager.beginBlockReport(node: node)
        var step = 0
        for replica in reported {
            let status = manager.processBlockReportChunk([replica], of: ticket, record: record)
            guard status == .current else { return status }
            step += 1
            between(&manager, step)
        }
        for id in ids {
            let status = manager.sweepBlockReportChunk([id], of: ticket)
            guard status == .current else { return status }
            step += 1
            between(&manager, step)
        }
        return manager.finishBlockReport(ticket)
    }

    @Test func aReportInChunksOfOneEndsAsAReportAtOnceDoes() {
        let known = Set((0..<30).map { base + UInt64($0) })
        let record = { (id: UInt64) in known.contains(id) ? suite.record() : nil }
        let setUp = { () -> BlockManager in
            var (manager, nodes) = suite.makeManager(nodes: 3)
            for offset in 0..<20 { suite.place(base + UInt64(offset), on: [nodes[0], nodes[1]], in: &manager) }
            // A replica to be deleted before the report: it stays gone.
            manager.invalidate(deleted(base + 3), on: nodes[0])
            manager.removeReplica(base + 3, node: nodes[0])
            return manager
        }
        // Node 0 reports half of what it held, three blocks new to it, and one the namespace
        // does not have.
        let reported = (0..<10).map { finalized(base + UInt64($0)) } + (25..<28).map { finalized(base + UInt64($0)) }
            + [finalized(base + 99)]
        var whole = setUp()
        whole.processBlockReport(reported, node: 0, record: record)
        var chunked = setUp()
        #expect(reportInChunksOfOne(reported, node: 0, ids: base..<base + 100, in: &chunked, record: record) == .current)

        for offset in UInt64(0)..<100 {
            #expect(holders(base + offset, chunked) == holders(base + offset, whole), "block \(offset)")
        }
        #expect(holders(base + 3, chunked) == [1])
        #expect(holders(base + 15, chunked) == [1])
        #expect(holders(base + 26, chunked) == [0])
        #expect(chunked.nodes[0].blockCount == whole.nodes[0].blockCount)
        #expect(chunked.nodes[0].blockCount == 12)
        #expect(chunked.nodes[0].pendingInvalidations.map(\.blockID) == whole.nodes[0].pendingInvalidations.map(\.blockID))
        #expect(chunked.nodes[0].blockReportReceived)
    }

    /// Between two chunks of node 0's full report it reports a replica received (not in the
    /// report, made before) and one deleted (listed in a chunk still to come): neither is undone.
    @Test func incrementalReportsBetweenChunksAreNotUndone() {
        var (manager, nodes) = suite.makeManager(nodes: 3)
        for offset in 0..<10 { suite.place(base + UInt64(offset), on: [nodes[0]], in: &manager) }
        // Node 0 restarted: it registers again and sends its full report.
        _ = manager.register(manager.nodes[0].info, now: .milliseconds(10))
        let record = { (_: UInt64) in suite.record() }
        let reported = (0..<10).filter { $0 != 5 }.map { finalized(base + UInt64($0)) }
        let status = reportInChunksOfOne(reported, node: nodes[0], ids: base..<base + 40, in: &manager, record: record) { manager, step in
            guard step == 3 else { return }
            manager.processIncrementalReport(
                received: [finalized(base + 30)], deleted: [deleted(base + 7)], node: nodes[0], record: record)
            #expect(!manager.nodes[0].blockReportReceived)
        }
        #expect(status == .current)
        #expect(manager.locations(of: base + 30) == [nodes[0]], "the replica received during the report was swept away")
        #expect(manager.locations(of: base + 7).isEmpty, "the replica deleted during the report came back")
        #expect(manager.locations(of: base + 5).isEmpty, "a replica the report left out stayed")
        #expect(manager.locations(of: base + 9) == [nodes[0]])
        #expect(manager.nodes[0].blockCount == 9)
        #expect(manager.nodes[0].blockReportReceived)
    }

    /// The replication pass deletes a damaged replica between two chunks, and the node is handed
    /// the deletion before the chunk that lists the replica: it is not brought back as good.
    @Test func aReplicaDeletedBetweenChunksStaysGone() {
        var (manager, nodes) = suite.makeManager(nodes: 4)
        var generator = SeededGenerator(seed: 11)
        let id = base + 1
        suite.place(id, on: [nodes[0], nodes[1], nodes[2], nodes[3]], in: &manager)
        manager.markCorrupt(id, nodeId: "n0")
        let record = { (_: UInt64) in suite.record() }
        let status = reportInChunksOfOne([finalized(base), finalized(id)], node: nodes[0], ids: base..<base + 2, in: &manager, record: record) {
            manager, step in
            guard step == 1 else { return }
            let work = manager.computeReplicationWork(now: .milliseconds(10), blocks: [(id, suite.record(), 3)], using: &generator)
            #expect(work.scheduledDeletions == 1)
            #expect(manager.heartbeat(suite.heartbeat("n0"), now: .milliseconds(20))?.invalidate.map(\.blockID) == [id])
        }
        #expect(status == .current)
        #expect(holders(id, manager) == [nodes[1], nodes[2], nodes[3]])
        #expect(!manager.locations(of: id).contains(nodes[0]))
    }

    @Test func aLaterReportReplacesOneInProgress() {
        var (manager, nodes) = suite.makeManager(nodes: 2)
        let record = { (_: UInt64) in suite.record() }
        let first = manager.beginBlockReport(node: nodes[0])
        #expect(manager.processBlockReportChunk([finalized(base)], of: first, record: record) == .current)
        let second = manager.beginBlockReport(node: nodes[0])
        #expect(manager.processBlockReportChunk([finalized(base + 1)], of: first, record: record) == .replaced)
        #expect(manager.processBlockReportChunk([finalized(base + 2)], of: second, record: record) == .current)
        #expect(manager.sweepBlockReportChunk(base..<base + 3, of: second) == .current)
        #expect(manager.finishBlockReport(first) == .replaced)
        #expect(manager.finishBlockReport(second) == .current)
        // The later report is what the node holds.
        #expect(holders(base, manager).isEmpty && holders(base + 1, manager).isEmpty)
        #expect(holders(base + 2, manager) == [nodes[0]])
    }

    @Test func aReportIsAbandonedWhenItsNodeDiesOrRegistersAgain() {
        var (manager, nodes) = suite.makeManager(nodes: 2) { $0.heartbeatTimeoutMs = 100 }
        let record = { (_: UInt64) in suite.record() }
        let dying = manager.beginBlockReport(node: nodes[0])
        _ = manager.heartbeat(suite.heartbeat("n1"), now: .milliseconds(150))
        #expect(manager.checkHeartbeats(now: .milliseconds(200)) == ["n0"])
        #expect(manager.processBlockReportChunk([finalized(base)], of: dying, record: record) == .abandoned)
        #expect(holders(base, manager).isEmpty)

        let info = manager.nodes[0].info
        _ = manager.register(info, now: .milliseconds(300))
        let reRegistering = manager.beginBlockReport(node: nodes[0])
        _ = manager.register(info, now: .milliseconds(310))
        #expect(manager.sweepBlockReportChunk(base..<base + 1, of: reRegistering) == .abandoned)
        #expect(manager.finishBlockReport(reRegistering) == .abandoned)
        #expect(!manager.nodes[0].blockReportReceived)
    }

    // MARK: - Dead nodes

    @Test func aDeadNodesReplicasCountNowhereAndAreForgottenAChunkAtATime() {
        var (manager, nodes) = suite.makeManager(nodes: 4) {
            $0.heartbeatTimeoutMs = 100
            $0.maximumTransfersPerNode = 10
        }
        var generator = SeededGenerator(seed: 12)
        let ids = (0..<10).map { base + UInt64($0) }
        for id in ids { suite.place(id, on: [nodes[0], nodes[1], nodes[2]], in: &manager) }
        for node in nodes.dropFirst() { _ = manager.heartbeat(suite.heartbeat("n\(node)"), now: .milliseconds(150)) }
        #expect(manager.checkHeartbeats(now: .milliseconds(200)) == ["n0"])

        // Dead at once: its replicas are still recorded, but are no location and count nowhere.
        #expect(manager.hasDeadReplicasToForget)
        #expect(holders(ids[0], manager) == [nodes[0], nodes[1], nodes[2]])
        for id in ids {
            #expect(Set(manager.locations(of: id)) == [nodes[1], nodes[2]])
            #expect(manager.health(of: id, replication: 3) == (live: 2, corrupt: 0))
            #expect(manager.storedBytes(of: id) == 2 * BlockManagerTests.blockBytes / 2)
        }
        let work = manager.computeReplicationWork(now: .milliseconds(210), blocks: ids.map { ($0, suite.record(), 3) }, using: &generator)
        #expect(work.scheduledCopies == ids.count)
        #expect(queuedTransferTargets(manager).allSatisfy { $0 == "n3" })

        // Forgotten four block ids at a time: three holds for ten ids.
        var goesOn = manager.forgetDeadReplicas(chunkIds: 4, below: base + 10)
        #expect(goesOn)
        #expect(holders(ids[3], manager) == [nodes[1], nodes[2]])
        #expect(holders(ids[4], manager) == [nodes[0], nodes[1], nodes[2]])
        goesOn = manager.forgetDeadReplicas(chunkIds: 4, below: base + 10)
        #expect(goesOn)
        goesOn = manager.forgetDeadReplicas(chunkIds: 4, below: base + 10)
        #expect(!goesOn)
        #expect(!manager.hasDeadReplicasToForget)
        for id in ids { #expect(holders(id, manager) == [nodes[1], nodes[2]]) }
        #expect(manager.nodes[0].blockCount == 0)
    }

    /// A node back before its sweep ended: the replicas it reports again count at once and stay;
    /// those it held before and has not reported again count nowhere and are forgotten.
    @Test func aNodeBackBeforeItsSweepEndedCountsOnlyWhatItReportsAgain() {
        var (manager, nodes) = suite.makeManager(nodes: 3) { $0.heartbeatTimeoutMs = 100 }
        let ids = (0..<10).map { base + UInt64($0) }
        for id in ids { suite.place(id, on: [nodes[0], nodes[1]], in: &manager) }
        for node in nodes.dropFirst() { _ = manager.heartbeat(suite.heartbeat("n\(node)"), now: .milliseconds(150)) }
        #expect(manager.checkHeartbeats(now: .milliseconds(200)) == ["n0"])
        let goesOn = manager.forgetDeadReplicas(chunkIds: 3, below: base + 10)
        #expect(goesOn)

        _ = manager.register(manager.nodes[0].info, now: .milliseconds(300))
        manager.processIncrementalReport(received: [finalized(ids[6])], deleted: [], node: nodes[0]) { _ in suite.record() }
        #expect(Set(manager.locations(of: ids[6])) == [nodes[0], nodes[1]])
        #expect(manager.locations(of: ids[7]) == [nodes[1]], "a replica held before the node died is served")
        #expect(manager.health(of: ids[7], replication: 2).live == 1)

        while manager.forgetDeadReplicas(chunkIds: 3, below: base + 10) {}
        #expect(holders(ids[6], manager) == [nodes[0], nodes[1]])
        #expect(holders(ids[7], manager) == [nodes[1]])
        #expect(manager.nodes[0].blockCount == 1)
    }

    /// The full report of a node back before its sweep ended forgets what the sweep would: the
    /// sweep has nothing left to do.
    @Test func aFullReportEndsTheSweepOfANodeBack() {
        var (manager, nodes) = suite.makeManager(nodes: 2) { $0.heartbeatTimeoutMs = 100 }
        let ids = (0..<6).map { base + UInt64($0) }
        for id in ids { suite.place(id, on: [nodes[0]], in: &manager) }
        _ = manager.heartbeat(suite.heartbeat("n1"), now: .milliseconds(150))
        #expect(manager.checkHeartbeats(now: .milliseconds(200)) == ["n0"])
        _ = manager.register(manager.nodes[0].info, now: .milliseconds(300))
        let status = reportInChunksOfOne([finalized(ids[2])], node: nodes[0], ids: base..<base + 6, in: &manager) { _ in suite.record() }
        #expect(status == .current)
        #expect(!manager.hasDeadReplicasToForget)
        #expect(ids.map { manager.locations(of: $0) } == [[], [], [nodes[0]], [], [], []])
        #expect(manager.nodes[0].blockCount == 1)
    }

    func queuedTransferTargets(_ manager: BlockManager) -> [String] {
        manager.nodes.flatMap { $0.pendingTransfers.flatMap { $0.targets.map(\.nodeID) } }
    }
}
