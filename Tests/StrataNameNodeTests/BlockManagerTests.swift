import StrataWire
import StrataTestKit
import Testing

@testable import StrataNameNode

/// The block manager as pure logic: placement, admin states, failed and full nodes, and the
/// bound on copies in flight per node. Time is given, randomness comes from a seeded generator.
@Suite struct BlockManagerTests {
    static let capacity: UInt64 = 1 << 30
    static let blockBytes: UInt64 = 1_000

    /// A manager with `count` registered nodes ("n0", "n1", ...; 127.0.0.1:9000+i), each having
    /// sent a first (empty) block report and with room for many blocks.
    func makeManager(nodes count: Int, _ configure: (inout BlockManager.Settings) -> Void = { _ in }) -> (BlockManager, [UInt16]) {
        var settings = BlockManager.Settings()
        configure(&settings)
        var manager = BlockManager(settings: settings)
        var indices: [UInt16] = []
        for index in 0..<count {
            var info = Strata_Wire_DatanodeInfo()
            info.nodeID = "n\(index)"
            info.hostname = "127.0.0.1"
            info.ipAddress = "127.0.0.1"
            info.transferPort = UInt32(9000 + index)
            info.capacity = Self.capacity
            info.remaining = Self.capacity / 2
            let node = manager.register(info, now: .milliseconds(0))
            manager.processBlockReport([], node: node) { _ in nil }
            indices.append(node)
        }
        return (manager, indices)
    }

    func record(numBytes: UInt64 = blockBytes, complete: Bool = true) -> BlockRecordView {
        BlockRecordView(BlockRecord(inode: 1, generationStamp: 1, numBytes: numBytes, isComplete: complete))
    }

    /// Records that `nodes` hold a finished replica of `blockId`.
    func place(_ blockId: UInt64, on nodes: [UInt16], in manager: inout BlockManager, record: BlockRecordView? = nil) {
        var reported = Strata_Wire_ReportedBlock()
        reported.block.blockID = blockId
        reported.block.generationStamp = 1
        reported.block.numBytes = Self.blockBytes
        reported.storedBytes = Self.blockBytes / 2
        reported.state = .finalized
        for node in nodes { manager.processReportedReplica(reported, node: node, record: record ?? self.record()) }
    }

    func heartbeat(_ node: String, remaining: UInt64 = capacity / 2, volumeFailed: Bool = false, reason: String = "") -> Strata_Wire_HeartbeatRequest {
        var request = Strata_Wire_HeartbeatRequest()
        request.nodeID = node
        request.capacity = Self.capacity
        request.remaining = remaining
        request.volumeFailed = volumeFailed
        request.volumeFailure = reason
        return request
    }

    /// Every transfer queued for each node (as a heartbeat would hand them out), by block id.
    func queuedTransfers(_ manager: BlockManager) -> [UInt16: [(block: UInt64, targets: [String])]] {
        var queued: [UInt16: [(block: UInt64, targets: [String])]] = [:]
        for (index, node) in manager.nodes.enumerated() where !node.pendingTransfers.isEmpty {
            queued[UInt16(index)] = node.pendingTransfers.map { ($0.block.blockID, $0.targets.map(\.nodeID)) }
        }
        return queued
    }

    // MARK: - Decommission

    @Test func decommissioningNodeTakesNoNewReplicasAndIsReadLast() {
        var (manager, nodes) = makeManager(nodes: 4)
        var generator = SeededGenerator(seed: 1)
        place(7, on: [nodes[0], nodes[1], nodes[2]], in: &manager)
        manager.startDecommission(nodes[0])
        #expect(manager.nodes[0].adminState == .decommissioning)
        #expect(!manager.isInService(nodes[0]))
        for _ in 0..<20 {
            let targets = manager.chooseTargets(count: 4, writer: nodes[0], excluding: [], requiredBytes: 100, using: &generator)
            #expect(Set(targets) == [nodes[1], nodes[2], nodes[3]], "targets \(targets)")
        }
        // Still served, but after the nodes in service, even to a reader on the node itself.
        let locations = manager.locations(of: 7, reader: nodes[0])
        #expect(Set(locations) == [nodes[0], nodes[1], nodes[2]])
        #expect(locations.last == nodes[0])
        #expect(manager.locations(of: 7, reader: nodes[2]).first == nodes[2])
        #expect(manager.nodeInfo(nodes[0]).adminState == "decommissioning")
        #expect(manager.outOfServiceReplicas(of: 7) == 1)
    }

    @Test func decommissionCopiesEachBlockElsewhereThenCompletes() {
        var (manager, nodes) = makeManager(nodes: 4)
        var generator = SeededGenerator(seed: 2)
        let blocks: [(UInt64, BlockRecordView, Int)] = [(1, record(), 3), (2, record(), 3), (3, record(), 3)]
        place(1, on: [nodes[0], nodes[1], nodes[2]], in: &manager)
        place(2, on: [nodes[0], nodes[1], nodes[3]], in: &manager)
        // Block 3 does not involve node 0: decommissioning it must not touch block 3.
        place(3, on: [nodes[1], nodes[2], nodes[3]], in: &manager)
        #expect(manager.computeReplicationWork(now: .milliseconds(0), blocks: blocks, using: &generator).scheduledCopies == 0)

        manager.startDecommission(nodes[0])
        let work = manager.computeReplicationWork(now: .milliseconds(1), blocks: blocks, using: &generator)
        #expect(work.scheduledCopies == 2)
        #expect(work.scheduledDeletions == 0)
        #expect(work.decommissioned.isEmpty)
        #expect(manager.nodes[0].adminState == .decommissioning)
        #expect(manager.nodeInfo(nodes[0]).blocksToDecommission == 2)
        // Each copy goes to the one node in service that lacks the block.
        let queued = queuedTransfers(manager).values.flatMap { $0 }
        #expect(queued.first { $0.block == 1 }?.targets == ["n3"])
        #expect(queued.first { $0.block == 2 }?.targets == ["n2"])

        // The copies arrive: nothing needs node 0 any more.
        place(1, on: [nodes[3]], in: &manager)
        place(2, on: [nodes[2]], in: &manager)
        let done = manager.computeReplicationWork(now: .milliseconds(2), blocks: blocks, using: &generator)
        #expect(done.decommissioned == ["n0"])
        #expect(done.scheduledCopies == 0)
        // Its replicas are not excess: they stay until the node is switched off or recommissioned.
        #expect(done.scheduledDeletions == 0)
        #expect(manager.nodes[0].adminState == .decommissioned)
        #expect(manager.nodeInfo(nodes[0]).adminState == "decommissioned")
        #expect(manager.nodeInfo(nodes[0]).blocksToDecommission == 0)
        #expect(manager.locations(of: 1).count == 4)
        #expect(manager.locations(of: 1).last == nodes[0])

        // Recommissioned, node 0's replicas count again: one replica of each block is excess.
        manager.stopDecommission(nodes[0])
        #expect(manager.nodes[0].adminState == .normal)
        #expect(manager.decommissionRequests.isEmpty)
        let excess = manager.computeReplicationWork(now: .milliseconds(3), blocks: blocks, using: &generator)
        #expect(excess.scheduledDeletions == 2)
        #expect(manager.locations(of: 1).count == 3)
        #expect(manager.locations(of: 2).count == 3)
    }

    @Test func decommissionWaitsForTheNodesBlockReport() {
        var (manager, nodes) = makeManager(nodes: 3)
        var generator = SeededGenerator(seed: 3)
        var info = Strata_Wire_DatanodeInfo()
        info.nodeID = "late"
        info.capacity = Self.capacity
        info.remaining = Self.capacity
        let late = manager.register(info, now: .milliseconds(0))
        manager.startDecommission(late)
        // No replica known, but its report has not come: it may hold blocks the name node has not heard of.
        _ = manager.computeReplicationWork(now: .milliseconds(1), blocks: [], using: &generator)
        #expect(manager.nodes[Int(late)].adminState == .decommissioning)
        manager.processBlockReport([], node: late) { _ in nil }
        #expect(manager.computeReplicationWork(now: .milliseconds(2), blocks: [], using: &generator).decommissioned == ["late"])
        // A decommissioned node that registers again is checked again.
        _ = manager.register(info, now: .milliseconds(3))
        #expect(manager.nodes[Int(late)].adminState == .decommissioning)
        manager.processBlockReport([], node: late) { _ in nil }
        #expect(manager.computeReplicationWork(now: .milliseconds(4), blocks: [], using: &generator).decommissioned == ["late"])
        #expect(nodes.allSatisfy { manager.nodes[Int($0)].adminState == .normal })
    }

    @Test func blockOnlyOnDecommissioningNodesIsCopiedFirst() {
        var (manager, nodes) = makeManager(nodes: 4) { $0.maximumTransfersPerNode = 1 }
        var generator = SeededGenerator(seed: 4)
        // Block 10 has one replica in service; block 11 has none but the decommissioning node's.
        place(10, on: [nodes[0], nodes[1]], in: &manager)
        place(11, on: [nodes[0]], in: &manager)
        manager.startDecommission(nodes[0])
        let blocks: [(UInt64, BlockRecordView, Int)] = [(10, record(), 2), (11, record(), 2)]
        let work = manager.computeReplicationWork(now: .milliseconds(0), blocks: blocks, using: &generator)
        // Node 0 may send one copy: block 11's. Block 10 is copied from node 1.
        #expect(work.scheduledCopies == 2)
        let queued = queuedTransfers(manager)
        #expect(queued[nodes[0]]?.map(\.block) == [11])
        #expect(queued[nodes[1]]?.map(\.block) == [10])
        // Both blocks still need node 0's replica until their copies arrive.
        #expect(manager.nodeInfo(nodes[0]).blocksToDecommission == 2)
    }

    @Test func unfinishedBlockNeedsTheNodeOnlyWithoutAnotherReplica() {
        var (manager, nodes) = makeManager(nodes: 3)
        var generator = SeededGenerator(seed: 5)
        let open = record(complete: false)
        place(20, on: [nodes[0]], in: &manager, record: open)
        place(21, on: [nodes[0], nodes[1]], in: &manager, record: open)
        manager.startDecommission(nodes[0])
        _ = manager.computeReplicationWork(now: .milliseconds(0), blocks: [(20, open, 3), (21, open, 3)], using: &generator)
        #expect(manager.nodes[0].adminState == .decommissioning)
        #expect(manager.nodeInfo(nodes[0]).blocksToDecommission == 1)
        #expect(queuedTransfers(manager).isEmpty, "blocks being written are not copied")
    }

    @Test func deadNodeIsDecommissionedAtOnce() {
        var (manager, nodes) = makeManager(nodes: 3) { $0.heartbeatTimeoutMs = 100 }
        for node in [nodes[0], nodes[1]] { _ = manager.heartbeat(heartbeat("n\(node)"), now: .milliseconds(150)) }
        #expect(manager.checkHeartbeats(now: .milliseconds(200)) == ["n2"])
        manager.startDecommission(nodes[2])
        #expect(manager.nodes[2].adminState == .decommissioned)
        #expect(manager.decommissionRequests == ["n2"])
    }

    @Test func decommissionRequestsOutliveTheNodesRegistration() {
        var manager = BlockManager()
        manager.restoreDecommissionRequests(["returning"])
        var info = Strata_Wire_DatanodeInfo()
        info.nodeID = "returning"
        let node = manager.register(info, now: .milliseconds(0))
        #expect(manager.nodes[Int(node)].adminState == .decommissioning)
        #expect(!manager.isInService(node))
    }

    @Test func nodesAreFoundByIdAddressOrUniqueHost() {
        var (manager, nodes) = makeManager(nodes: 2)
        var other = Strata_Wire_DatanodeInfo()
        other.nodeID = "elsewhere"
        other.hostname = "storage-7"
        other.ipAddress = "127.0.0.7"
        other.transferPort = 9866
        let elsewhere = manager.register(other, now: .milliseconds(0))
        #expect(manager.resolveNode("n1") == .found(nodes[1]))
        #expect(manager.resolveNode("127.0.0.1:9000") == .found(nodes[0]))
        #expect(manager.resolveNode("127.0.0.7") == .found(elsewhere))
        #expect(manager.resolveNode("storage-7") == .found(elsewhere))
        #expect(manager.resolveNode("storage-7:9866") == .found(elsewhere))
        #expect(manager.resolveNode("127.0.0.1") == .ambiguous(["127.0.0.1:9000", "127.0.0.1:9001"]))
        #expect(manager.resolveNode("127.0.0.1:9999") == .unknown)
        #expect(manager.resolveNode("nobody") == .unknown)
    }

    // MARK: - Full and failed nodes

    @Test func fullAndFailedNodesAreLeftOutOfPlacement() {
        var (manager, nodes) = makeManager(nodes: 4)
        var generator = SeededGenerator(seed: 6)
        let blockSize: UInt64 = 128 << 20
        // Node 1 has less room than a block; node 2's volume failed.
        _ = manager.heartbeat(heartbeat("n1", remaining: blockSize - 1), now: .milliseconds(1))
        _ = manager.heartbeat(heartbeat("n2", volumeFailed: true, reason: "create /data/current/volume-check: Read-only file system (EROFS)"), now: .milliseconds(1))
        for _ in 0..<20 {
            let targets = manager.chooseTargets(count: 3, writer: nodes[2], excluding: [], requiredBytes: blockSize, using: &generator)
            #expect(Set(targets) == [nodes[0], nodes[3]], "targets \(targets)")
        }
        #expect(manager.nodeInfo(nodes[2]).volumeFailed)
        #expect(manager.nodeInfo(nodes[2]).volumeFailure.contains("EROFS"))
        let changes = manager.takeVolumeStateChanges()
        #expect(changes.map(\.nodeId) == ["n2"] && changes.first?.failed == true)
        #expect(manager.takeVolumeStateChanges().isEmpty)

        // A failed volume's replica still serves reads but does not count: the block gets a copy.
        place(30, on: [nodes[0], nodes[2]], in: &manager)
        #expect(manager.locations(of: 30) == [nodes[0], nodes[2]])
        let work = manager.computeReplicationWork(now: .milliseconds(2), blocks: [(30, record(), 2)], using: &generator)
        #expect(work.scheduledCopies == 1)
        // A copy is far smaller than a block: node 1 has room for it, node 2 may not take it.
        let targets = queuedTransfers(manager).values.flatMap { $0 }.map(\.targets)
        #expect(targets == [["n1"]] || targets == [["n3"]], "targets \(targets)")

        // No node with room: nothing is chosen.
        for name in ["n0", "n3"] { _ = manager.heartbeat(heartbeat(name, remaining: 10), now: .milliseconds(3)) }
        #expect(manager.chooseTargets(count: 3, writer: nil, excluding: [], requiredBytes: blockSize, using: &generator).isEmpty)

        // The volume works again: the node is back in service.
        _ = manager.heartbeat(heartbeat("n2"), now: .milliseconds(4))
        #expect(manager.isInService(nodes[2]))
        #expect(manager.takeVolumeStateChanges().map(\.failed) == [false])
        #expect(manager.chooseTargets(count: 3, writer: nil, excluding: [], requiredBytes: blockSize, using: &generator) == [nodes[2]])
    }

    // MARK: - Copies in flight

    @Test func aNodeNeverHasMoreCopiesInFlightThanTheLimit() {
        var (manager, nodes) = makeManager(nodes: 4) { settings in
            settings.maximumTransfersPerNode = 4
            settings.pendingReplicationTimeoutMs = 1_000
        }
        var generator = SeededGenerator(seed: 7)
        // Ten blocks whose only replica is on node 0.
        let ids = (100..<110).map { UInt64($0) }
        for id in ids { place(id, on: [nodes[0]], in: &manager) }
        let blocks = ids.map { ($0, record(), 2) }

        #expect(manager.computeReplicationWork(now: .milliseconds(0), blocks: blocks, using: &generator).scheduledCopies == 4)
        #expect(manager.copiesInFlight()[0] == 4)
        // The heartbeat hands the four copies out; they are still in flight, so nothing more is scheduled.
        let command = manager.heartbeat(heartbeat("n0"), now: .milliseconds(10))
        #expect(command?.transfers.count == 4)
        #expect(manager.computeReplicationWork(now: .milliseconds(20), blocks: blocks, using: &generator).scheduledCopies == 0)
        #expect(manager.copiesInFlight()[0] == 4)

        // Two arrive: two more may go.
        var arrived: [UInt64] = []
        for transfer in command?.transfers.prefix(2) ?? [] {
            let target = manager.index(ofNode: transfer.targets[0].nodeID)!
            place(transfer.block.blockID, on: [target], in: &manager)
            arrived.append(transfer.block.blockID)
        }
        #expect(manager.copiesInFlight()[0] == 2)
        #expect(manager.computeReplicationWork(now: .milliseconds(30), blocks: blocks, using: &generator).scheduledCopies == 2)
        #expect(manager.copiesInFlight()[0] == 4)

        // The other two never arrive: after the timeout they are scheduled again, still within the limit.
        let later = manager.computeReplicationWork(now: .milliseconds(1_011), blocks: blocks, using: &generator)
        #expect(later.scheduledCopies == 2)
        #expect(manager.copiesInFlight()[0] == 4)
        #expect(manager.copiesInFlight().allSatisfy { $0 <= 4 })
        // Queued commands: the two of the pass at 30 and the two rescheduled, never more than four.
        #expect((manager.heartbeat(heartbeat("n0"), now: .milliseconds(1_020))?.transfers.count ?? 0) == 4)
        #expect(arrived.allSatisfy { manager.locations(of: $0).count == 2 })
    }

    @Test func copiesFromADeadNodeAreScheduledAgainAtOnce() {
        var (manager, nodes) = makeManager(nodes: 4) { $0.heartbeatTimeoutMs = 100 }
        var generator = SeededGenerator(seed: 8)
        place(40, on: [nodes[0], nodes[1]], in: &manager)
        let blocks: [(UInt64, BlockRecordView, Int)] = [(40, record(), 3)]
        #expect(manager.computeReplicationWork(now: .milliseconds(0), blocks: blocks, using: &generator).scheduledCopies == 1)
        let source = manager.copiesInFlight().firstIndex(of: 1)!
        // The source dies before the copy arrives.
        for index in nodes where Int(index) != source { _ = manager.heartbeat(heartbeat("n\(index)"), now: .milliseconds(150)) }
        #expect(manager.checkHeartbeats(now: .milliseconds(200)) == ["n\(source)"])
        #expect(manager.copiesInFlight().allSatisfy { $0 == 0 })
        // The surviving replica is copied to both free nodes now, without waiting for a timeout.
        #expect(manager.computeReplicationWork(now: .milliseconds(210), blocks: blocks, using: &generator).scheduledCopies == 1)
        let queued = queuedTransfers(manager).values.flatMap { $0 }
        #expect(queued.count == 1 && queued[0].targets.count == 2)
    }

    /// Two of three replicas found damaged on four nodes, while a copy to the fourth node is
    /// under way: a node without the block exists, so no damaged replica is deleted to make room
    /// (only when every node holds the block does one go to let a copy in).
    @Test func damagedReplicasStayWhileTheFreeNodeIsAwaitingACopy() {
        var (manager, nodes) = makeManager(nodes: 4)
        var generator = SeededGenerator(seed: 9)
        place(50, on: [nodes[0], nodes[1], nodes[2]], in: &manager)
        let blocks: [(UInt64, BlockRecordView, Int)] = [(50, record(), 3)]
        manager.markCorrupt(50, nodeId: "n0")
        let first = manager.computeReplicationWork(now: .milliseconds(0), blocks: blocks, using: &generator)
        #expect(first.scheduledCopies == 1 && first.scheduledDeletions == 0)
        #expect(queuedTransfers(manager).values.flatMap { $0 }.first?.targets == ["n3"])
        manager.markCorrupt(50, nodeId: "n1")
        let second = manager.computeReplicationWork(now: .milliseconds(10), blocks: blocks, using: &generator)
        #expect(second.scheduledDeletions == 0, "a damaged replica was deleted while n3 was free for a copy")
        #expect(manager.locations(of: 50).count + (manager.corrupt[50]?.count ?? 0) >= 3)
    }

    func report(_ blockId: UInt64, stamp: UInt64, numBytes: UInt64, finalized: Bool) -> Strata_Wire_ReportedBlock {
        var reported = Strata_Wire_ReportedBlock()
        reported.block.blockID = blockId
        reported.block.generationStamp = stamp
        reported.block.numBytes = numBytes
        reported.storedBytes = numBytes / 2
        reported.state = finalized ? .finalized : .beingWritten
        return reported
    }

    /// A node restarted while a block was written reports its replica unfinished: it is a
    /// location of the open block, but the block cannot be closed on it, and once the block is
    /// complete (finished elsewhere) it is not a location any more.
    @Test func anUnfinishedReplicaDoesNotLetTheBlockClose() {
        var (manager, nodes) = makeManager(nodes: 3)
        let writing = BlockRecordView(BlockRecord(inode: 1, generationStamp: 7, numBytes: 0, isComplete: false))
        manager.processReportedReplica(report(60, stamp: 7, numBytes: 0, finalized: false), node: nodes[0], record: writing)
        #expect(manager.locations(of: 60) == [nodes[0]], "an open block's replica being written is readable")
        #expect(!manager.hasFinishedReplica(60, generationStamp: 7, numBytes: 1_000))

        // A finished replica of another length, or under an older stamp, does not count either.
        manager.processReportedReplica(report(60, stamp: 7, numBytes: 512, finalized: true), node: nodes[1], record: writing)
        #expect(!manager.hasFinishedReplica(60, generationStamp: 7, numBytes: 1_000))
        #expect(!manager.hasFinishedReplica(60, generationStamp: 8, numBytes: 512))
        manager.processReportedReplica(report(60, stamp: 7, numBytes: 1_000, finalized: true), node: nodes[2], record: writing)
        #expect(manager.hasFinishedReplica(60, generationStamp: 7, numBytes: 1_000))

        manager.completeBlock(60, generationStamp: 7, numBytes: 1_000)
        #expect(manager.locations(of: 60) == [nodes[2]])
        #expect(manager.writtenReplicas[60] == nil)
        // The replica left unfinished is deleted when its node reports it again.
        let complete = BlockRecordView(BlockRecord(inode: 1, generationStamp: 7, numBytes: 1_000, isComplete: true))
        let kept = manager.processReportedReplica(report(60, stamp: 7, numBytes: 0, finalized: false), node: nodes[0], record: complete)
        #expect(!kept)
        #expect(manager.locations(of: 60) == [nodes[2]])
    }

    /// A finished replica counts for closing only while its node is alive and still holds it.
    @Test func aFinishedReplicaOnADeadOrEmptiedNodeDoesNotCount() {
        var (manager, nodes) = makeManager(nodes: 2) { $0.heartbeatTimeoutMs = 100 }
        let writing = BlockRecordView(BlockRecord(inode: 1, generationStamp: 3, numBytes: 0, isComplete: false))
        manager.processReportedReplica(report(61, stamp: 3, numBytes: 700, finalized: true), node: nodes[0], record: writing)
        manager.processReportedReplica(report(61, stamp: 3, numBytes: 700, finalized: true), node: nodes[1], record: writing)
        #expect(manager.hasFinishedReplica(61, generationStamp: 3, numBytes: 700))
        // n1 restarts without the replica: its block report no longer lists it.
        manager.processBlockReport([], node: nodes[1]) { _ in writing }
        _ = manager.heartbeat(heartbeat("n1"), now: .milliseconds(150))
        // n0 stops sending heartbeats.
        #expect(manager.checkHeartbeats(now: .milliseconds(200)) == ["n0"])
        #expect(!manager.hasFinishedReplica(61, generationStamp: 3, numBytes: 700))
        manager.blockRemoved(61)
        #expect(manager.writtenReplicas[61] == nil)
    }
}

/// The replication pass the name node runs a chunk of blocks at a time decides as one pass over
/// every block does.
@Suite struct ChunkedReplicationPassTests {
    @Test func aPassInChunksOfOneBlockSchedulesWhatAWholePassDoes() {
        let suite = BlockManagerTests()
        let setUp = { () -> (BlockManager, [(UInt64, BlockRecordView, Int)]) in
            var (manager, nodes) = suite.makeManager(nodes: 5)
            var blocks: [(UInt64, BlockRecordView, Int)] = []
            // Under-replicated (one and two replicas), over-replicated, and healthy blocks.
            for id in UInt64(1)...40 {
                let holders = Array(nodes.prefix(Int(id % 5) + 1))
                suite.place(id, on: holders, in: &manager)
                blocks.append((id, suite.record(), 3))
            }
            return (manager, blocks)
        }
        var (whole, blocks) = setUp()
        var generator = SeededGenerator(seed: 7)
        let expected = whole.computeReplicationWork(now: .milliseconds(10), blocks: blocks, using: &generator)

        var (chunked, _) = setUp()
        generator = SeededGenerator(seed: 7)
        var pass = chunked.beginReplicationPass(now: .milliseconds(10))
        for block in blocks { chunked.scanForReplication([block], in: &pass, using: &generator) }
        #expect(pass.scannedBlocks == blocks.count)
        let work = chunked.finishReplicationPass(pass, now: .milliseconds(10), using: &generator)
        #expect(work.scheduledCopies == expected.scheduledCopies)
        #expect(work.scheduledDeletions == expected.scheduledDeletions)
        #expect(expected.scheduledCopies > 0 && expected.scheduledDeletions > 0)
        for id in blocks.map(\.0) { #expect(chunked.locations(of: id).sorted() == whole.locations(of: id).sorted()) }
    }

    @Test func blocksRemovedAndSourcesDeadSinceTheScanGetNoCopy() {
        let suite = BlockManagerTests()
        var (manager, nodes) = suite.makeManager(nodes: 4) { $0.heartbeatTimeoutMs = 100 }
        suite.place(1, on: [nodes[0]], in: &manager)
        suite.place(2, on: [nodes[1]], in: &manager)
        var generator = SeededGenerator(seed: 1)
        var pass = manager.beginReplicationPass(now: .zero)
        manager.scanForReplication([(1, suite.record(), 3), (2, suite.record(), 3)], in: &pass, using: &generator)
        manager.blockRemoved(1)
        for node in nodes where node != nodes[0] { _ = manager.heartbeat(suite.heartbeat("n\(node)"), now: .milliseconds(150)) }
        #expect(manager.checkHeartbeats(now: .milliseconds(200)) == ["n\(nodes[0])"])
        let work = manager.finishReplicationPass(pass, now: .milliseconds(200), using: &generator)
        // Block 1 is gone; block 2's source is alive: only it is copied.
        #expect(work.scheduledCopies == 1)
    }
}
