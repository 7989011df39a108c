import Foundation
import StrataBlockFormat
import StrataClient
@testable import StrataDataNode
@testable import StrataNameNode
import StrataTestKit
import StrataWire
import Testing

/// The data nodes' block scanner: it finds damaged replicas without any reader, the name node
/// replaces them from good replicas, and a block with no good replica left is reported corrupt
/// and never read. It reads no faster than its rate and ignores replicas that change under it.
@Suite(.serialized) struct ScannerTests {
    static let frameSize = 4096

    /// Bytes flipped inside a frame of one replica, found by that node's scanner (no client reads
    /// the file until it has healed): the name node stops listing the replica, copies the block to
    /// the fourth node, and only then deletes the damaged replica, so the block never has fewer
    /// than three replicas on disk. Afterwards fsck is HEALTHY and the file reads back exactly.
    @Test func scannerFindsFlippedByteAndBlockHeals() async throws {
        let blockSize = 256 * 1024
        try await withCluster({ options in
            options.dataNodes = 4
            options.rawFrameSizeBytes = Self.frameSize
            options.scanBytesPerSecond = 64 << 20
            // Short, so the scanner comes back to a replica it verified before the damage.
            options.scanPeriodMs = 500
        }) { cluster in
            try await withClient(cluster) { client in
                let data = randomBytes(blockSize * 2, seed: 51)
                try await put(client, "/scanned", data, replication: 3, blockSize: UInt64(blockSize))
                let block = try #require(try await client.blockLocations("/scanned").blocks.first)
                let id = block.block.blockID
                let victimId = try #require(block.locations.first?.nodeID)
                let victim = try #require(cluster.dataNode(victimId))
                let spare = try #require(cluster.dataNodes.first { $0.store.replica(id) == nil })
                let path = try #require(victim.store.path(of: id))
                #expect(victim.scanner.isRunning)
                #expect(victim.scanner.corruptReplicasFound == 0)
                try flipByteInFrame(of: path, blockId: id, frame: 10)

                var fewestReplicasOnDisk = Int.max
                var listedAfterReport = false
                var sawReportedBeforeDeletion = false
                let healed = try await eventually(timeoutSeconds: 30) {
                    fewestReplicasOnDisk = min(fewestReplicasOnDisk, cluster.holders(of: id).count)
                    // The scanner counts a find once the name node has the report.
                    let reported = victim.scanner.corruptReplicasFound > 0
                    let listed = try await client.blockLocations("/scanned").blocks.first?.locations.map(\.nodeID) ?? []
                    if reported && victim.store.replica(id) != nil {
                        // Reported but not yet deleted: it must not be handed out.
                        sawReportedBeforeDeletion = true
                        if listed.contains(victim.nodeId) { listedAfterReport = true }
                    }
                    return victim.store.replica(id) == nil && spare.store.replica(id)?.isFinalized == true && listed.count == 3
                }
                #expect(healed, "block \(id) was not copied to the spare node with the damaged replica deleted")
                #expect(victim.scanner.corruptReplicasFound == 1)
                #expect(fewestReplicasOnDisk >= 3, "the damaged replica was deleted before a good copy existed")
                #expect(sawReportedBeforeDeletion)
                #expect(!listedAfterReport, "the name node listed the damaged replica after the scanner reported it")
                #expect(!FileManager.default.fileExists(atPath: path), "damaged replica file is still on disk")
                let holders = cluster.holders(of: id)
                #expect(Set(holders.map(\.nodeId)) == Set(try await client.blockLocations("/scanned").blocks[0].locations.map(\.nodeID)))
                try expectReplicas(of: id, in: holders, equal: data, from: 0, length: UInt64(blockSize))
                let report = try await client.fsck("/")
                #expect(report.healthy)
                #expect(report.corruptBlocks == 0 && report.underReplicatedBlocks == 0 && report.missingBlocks == 0)
                expectSameBytes(try await client.readAll("/scanned"), data, "read of /scanned after healing")
                // No good replica was ever taken for a damaged one.
                #expect(cluster.dataNodes.map(\.scanner.corruptReplicasFound).reduce(0, +) == 1)
            }
        }
    }

    /// Three nodes, replication three: there is no other node to copy to, so the name node
    /// deletes the damaged replica first (two good ones remain) and then copies the block back
    /// onto the same node. The block ends with three good replicas and fsck HEALTHY.
    @Test func damagedReplicaIsReplacedInPlaceWithNoSpareNode() async throws {
        try await withCluster({ options in
            options.dataNodes = 3
            options.rawFrameSizeBytes = Self.frameSize
            options.scanBytesPerSecond = 64 << 20
            options.scanPeriodMs = 500
        }) { cluster in
            try await withClient(cluster) { client in
                let data = logLikeBytes(200_000, seed: 59)
                try await put(client, "/tight", data, replication: 3)
                let id = try #require(try await blockIds(client, "/tight").first)
                let victim = cluster.dataNodes[1]
                let path = try #require(victim.store.path(of: id))
                try flipByteInFrame(of: path, blockId: id, frame: 20)

                var fewestGood = Int.max
                let healed = try await eventually(timeoutSeconds: 30) {
                    let listed = try await client.blockLocations("/tight").blocks.first?.locations ?? []
                    fewestGood = min(fewestGood, listed.count)
                    let report = try await client.fsck("/")
                    guard victim.scanner.corruptReplicasFound == 1, report.healthy, report.underReplicatedBlocks == 0, listed.count == 3,
                        victim.store.replica(id)?.isFinalized == true, let replacement = victim.store.path(of: id)
                    else { return false }
                    return (try? BlockReader(path: replacement, expectedBlockId: id).verifyFrames().allSatisfy { $0.error == nil }) == true
                }
                #expect(healed, "the damaged replica on \(victim.nodeId) was not replaced")
                #expect(fewestGood >= 2, "a good replica was lost on the way")
                try expectReplicas(of: id, in: cluster.dataNodes, equal: data, from: 0, length: UInt64(data.count))
                expectSameBytes(try await client.readAll("/tight"), data, "read of /tight after healing")
            }
        }
    }

    /// Every replica damaged: each node's scanner reports its own, the name node keeps them all
    /// (there is nothing good to copy from; a copy tried from a replica not yet found damaged
    /// fails at its source), fsck says CORRUPT, no location is handed out, and a read fails with
    /// BlockMissingException ("Could not obtain block") without returning a byte. Four nodes, so
    /// that no replica is deleted to make room for a copy (see the test before).
    @Test func everyReplicaDamagedIsCorruptAndUnreadable() async throws {
        try await withCluster({ options in
            options.dataNodes = 4
            options.rawFrameSizeBytes = Self.frameSize
            options.scanBytesPerSecond = 64 << 20
            options.scanPeriodMs = 500
        }) { cluster in
            let data = randomBytes(100_000, seed: 52)
            try await withClient(cluster) { client in
                try await put(client, "/doomed", data, replication: 3)
                try await put(client, "/fine", logLikeBytes(50_000, seed: 53), replication: 3)
            }
            try await using(impatientClient(cluster)) { client in
                let id = try #require(try await blockIds(client, "/doomed").first)
                let holders = cluster.holders(of: id)
                #expect(holders.count == 3)
                for (index, node) in holders.enumerated() {
                    try flipByteInFrame(of: try #require(node.store.path(of: id)), blockId: id, frame: 3 + index * 5)
                }
                let reported = try await eventually(timeoutSeconds: 20) {
                    let report = try await client.fsck("/")
                    return holders.allSatisfy { $0.scanner.corruptReplicasFound == 1 } && report.corruptBlocks == 1
                }
                #expect(reported, "the scanners did not find every damaged replica")
                let report = try await client.fsck("/")
                #expect(!report.healthy)
                #expect(report.corruptBlocks == 1 && report.missingBlocks == 0)
                #expect(report.problemFiles.map(\.path) == ["/doomed"])
                #expect(report.problemFiles.first?.corrupt == true)
                let located = try #require(try await client.blockLocations("/doomed").blocks.first)
                #expect(located.corrupt)
                #expect(located.locations.isEmpty, "damaged replicas were handed out: \(located.locations.map(\.nodeID))")

                var delivered = 0
                let error = await expectRemote(.blockMissing, "read of a block whose every replica is damaged") {
                    try await client.read("/doomed") { delivered += $0.count }
                }
                #expect(error?.message.contains("Could not obtain block") == true, "\(String(describing: error))")
                #expect(delivered == 0, "\(delivered) bytes of damaged replicas were returned")

                // The damaged replicas are kept (the name node has nothing better), and nothing else suffers.
                try await Task.sleep(for: .seconds(1))
                #expect(holders.allSatisfy { $0.store.replica(id)?.isFinalized == true }, "a damaged replica was deleted")
                #expect(try await client.blockLocations("/doomed").blocks.first?.locations.isEmpty == true)
                #expect(cluster.dataNodes.map(\.scanner.corruptReplicasFound).reduce(0, +) == 3)
                #expect(try await client.readAll("/fine") == logLikeBytes(50_000, seed: 53))
            }
        }
    }

    /// A slow scanner: at every moment the stored bytes it has read stay within its rate times
    /// the time it has been running plus one frame, and a replica is scanned once, then not again
    /// within the scan period.
    @Test func scannerKeepsToItsRate() async throws {
        let rate = 96 * 1024
        let started = Date()
        try await withCluster({ options in
            options.dataNodes = 1
            options.rawFrameSizeBytes = Self.frameSize
            options.scanBytesPerSecond = rate
        }) { cluster in
            let node = cluster.dataNodes[0]
            let data = randomBytes(300_000, seed: 54)
            try await withClient(cluster) { client in
                try await put(client, "/slow", data, replication: 1)
                let id = try #require(try await blockIds(client, "/slow").first)
                let reader = try BlockReader(path: try #require(node.store.path(of: id)), expectedBlockId: id)
                let frameBytes = Int(reader.framesEnd) - BlockHeader.encodedSize
                let largestFrame = (0..<reader.frameCount).map { reader.frameLength(ofFrame: $0) }.max() ?? 0

                var samples = 0
                var sawPartial = false
                while node.scanner.replicasScanned == 0 {
                    let scanned = node.scanner.bytesScanned
                    let bound = Double(rate) * Date().timeIntervalSince(started) + Double(largestFrame)
                    #expect(Double(scanned) <= bound, "\(scanned) bytes scanned, more than the rate allows (\(Int(bound)))")
                    if scanned > 0 && scanned < frameBytes { sawPartial = true }
                    samples += 1
                    #expect(Date().timeIntervalSince(started) < 30, "the scanner did not finish a 300 KB replica")
                    if Date().timeIntervalSince(started) >= 30 { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(sawPartial, "never saw the scan part-way (\(samples) samples)")
                #expect(node.scanner.replicasScanned == 1)
                #expect(node.scanner.bytesScanned == frameBytes, "a pass reads every frame once")
                #expect(node.scanner.corruptReplicasFound == 0)
                // The default period is three weeks: no second scan now.
                try await Task.sleep(for: .seconds(1))
                #expect(node.scanner.bytesScanned == frameBytes)
                #expect(node.scanner.replicasScanned == 1)
                #expect(node.scanner.passesCompleted >= 1)
            }
        }
    }

    /// A replica deleted while it is being scanned, and one appended to while it is being
    /// scanned (its generation stamp changes): neither is reported, and the appended one is
    /// verified again under its new generation stamp.
    @Test func replicasChangedMidScanAreNotCorrupt() async throws {
        let rate = 128 * 1024
        try await withCluster({ options in
            options.dataNodes = 3
            options.rawFrameSizeBytes = Self.frameSize
            options.scanBytesPerSecond = rate
        }) { cluster in
            let node = cluster.dataNodes[0]
            try await withClient(cluster) { client in
                let doomed = randomBytes(700_000, seed: 55)
                let growing = randomBytes(500_000, seed: 56)
                try await put(client, "/doomed", doomed, replication: 3)
                try await put(client, "/growing", growing, replication: 3)
                let doomedId = try #require(try await blockIds(client, "/doomed").first)
                let growingId = try #require(try await blockIds(client, "/growing").first)
                #expect(doomedId < growingId, "the scanner goes in block id order")
                let doomedFrames = Int(try BlockReader(path: try #require(node.store.path(of: doomedId))).framesEnd) - BlockHeader.encodedSize

                // Delete /doomed while its replica is read (about 5 s at this rate).
                #expect(try await eventually(timeoutSeconds: 10) { node.scanner.bytesScanned > 0 })
                #expect(node.scanner.bytesScanned < doomedFrames / 2, "the scan of /doomed was already half done")
                #expect(try await client.delete("/doomed", recursive: false))
                #expect(try await eventually(timeoutSeconds: 10) { node.store.replica(doomedId) == nil })
                #expect(node.scanner.replicasScanned == 0, "the deletion came after the scan")

                // Append to /growing while its replica is read.
                #expect(try await eventually(timeoutSeconds: 30) { node.scanner.bytesScanned > doomedFrames + 16 * 1024 })
                let oldStamp = try #require(node.store.replica(growingId)?.generationStamp)
                let tail = logLikeBytes(20_000, seed: 57)
                let stream = try await client.append("/growing")
                try await stream.write(tail)
                try await stream.close()
                let newStamp = try #require(node.store.replica(growingId)?.generationStamp)
                #expect(newStamp > oldStamp)
                #expect(node.scanner.replicasScanned == 0, "the append came after the scan of /growing")

                // The new replica is verified in full on every node, and nothing was reported.
                let verified = try await eventually(timeoutSeconds: 30) {
                    cluster.dataNodes.allSatisfy { $0.scanner.replicasScanned >= 1 && $0.scanner.passesCompleted >= 2 }
                }
                #expect(verified, "the appended replica was not scanned again: \(cluster.dataNodes.map(\.scanner.replicasScanned))")
                #expect(cluster.dataNodes.map(\.scanner.corruptReplicasFound) == [0, 0, 0])
                let report = try await client.fsck("/")
                #expect(report.healthy && report.corruptBlocks == 0 && report.underReplicatedBlocks == 0)
                #expect(try await client.blockLocations("/growing").blocks.first?.locations.count == 3)
                expectSameBytes(try await client.readAll("/growing"), growing + tail, "/growing after the append")
            }
        }
    }

    /// With the rate at 0 (the default in tests) no scanner runs.
    @Test func noScannerAtRateZero() async throws {
        try await withCluster({ $0.dataNodes = 1 }) { cluster in
            try await withClient(cluster) { client in
                try await put(client, "/idle", randomBytes(10_000, seed: 58), replication: 1)
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(!cluster.dataNodes[0].scanner.isRunning)
            #expect(cluster.dataNodes[0].scanner.bytesScanned == 0)
        }
    }

    // MARK: - Pure logic

    /// Requests of random sizes against simulated time: what is granted within t seconds never
    /// exceeds rate × t plus one oversized request's excess, and a busy scanner gets close to the rate.
    @Test(arguments: [1000, 96 * 1024, 1 << 20, 64 << 20])
    func rateLimiterBound(_ rate: Int) {
        var limiter = ScanRateLimiter(bytesPerSecond: rate)
        var generator = SeededGenerator(seed: UInt64(rate))
        let start = 1000.0
        var now = start
        var granted = 0
        var largestExcess = 0
        let end = start + 20
        while now < end {
            let request = Int(generator.next() % UInt64(max(2, limiter.burstBytes * 2))) + 1
            while true {
                let wait = limiter.reserve(request, now: now)
                if wait <= 0 { break }
                #expect(wait.isFinite && wait > 0)
                now += wait
            }
            granted += request
            largestExcess = max(largestExcess, request - limiter.burstBytes)
            #expect(Double(granted) <= Double(rate) * (now - start) + Double(largestExcess) + 1, "at \(now - start) s")
            // A little time passes reading the bytes.
            now += Double(generator.next() % 1000) / 1e6
        }
        #expect(Double(granted) >= Double(rate) * 20 * 0.9, "only \(granted) bytes in 20 s at \(rate) B/s")
    }

    /// Idle time fills the bucket only up to its burst.
    @Test func rateLimiterBurstIsBounded() {
        var limiter = ScanRateLimiter(bytesPerSecond: 10_000)
        #expect(limiter.burstBytes == 1_000)
        #expect(limiter.reserve(500, now: 0) > 0, "the bucket starts empty")
        var granted = 0
        // After an hour idle, at most one burst goes through at once.
        while limiter.reserve(100, now: 3600) == 0 { granted += 100 }
        #expect(granted == 1_000)
    }

    @Test func scheduleOrdersAndWaitsForThePeriod() {
        var schedule = ScanSchedule(periodMs: 1_000)
        let a = ScanSchedule.Replica(id: 7, generationStamp: 1)
        let b = ScanSchedule.Replica(id: 3, generationStamp: 1)
        let c = ScanSchedule.Replica(id: 5, generationStamp: 1)
        #expect(schedule.due([a, b, c], now: 0) == [b, c, a], "never scanned: by block id")
        schedule.recordScanned(b, now: 100)
        schedule.recordScanned(a, now: 50)
        #expect(schedule.due([a, b, c], now: 200) == [c])
        schedule.recordScanned(c, now: 300)
        #expect(schedule.due([a, b, c], now: 1_000).isEmpty)
        #expect(schedule.nextDueMs([a, b, c]) == 1_050)
        #expect(schedule.due([a, b, c], now: 1_100) == [a, b], "least recently scanned first")
        // A new generation stamp (append, recovery) is due at once.
        let appended = ScanSchedule.Replica(id: 5, generationStamp: 2)
        #expect(schedule.due([a, b, appended], now: 400) == [appended])
        #expect(schedule.nextDueMs([a, b, appended]) == .min)
        // A replica that could not be read waits as long as it is told to.
        schedule.recordDeferred(c, untilMs: 1_300)
        #expect(schedule.due([c], now: 1_299).isEmpty)
        #expect(schedule.due([c], now: 1_300) == [c])
        // A period too long to add to the clock never comes due.
        var patient = ScanSchedule(periodMs: .max)
        patient.recordScanned(a, now: 10)
        #expect(patient.due([a], now: .max - 1).isEmpty)
        // Deleted replicas are forgotten.
        schedule.retain([a])
        #expect(schedule.scanned.keys.sorted() == [7])
        #expect(schedule.nextDueMs([]) == nil)
    }

    @Test func scheduleKeepsCorruptReplicasOutAndReportsThemAgain() {
        var schedule = ScanSchedule(periodMs: 1_000)
        let bad = ScanSchedule.Replica(id: 9, generationStamp: 4)
        let good = ScanSchedule.Replica(id: 2, generationStamp: 4)
        schedule.recordCorrupt(bad, reason: "stored bytes checksum mismatch", now: 0)
        schedule.recordScanned(good, now: 0)
        #expect(schedule.due([bad, good], now: 5_000) == [good], "a corrupt replica is not scanned again")
        #expect(schedule.nextDueMs([bad]) == nil)
        #expect(schedule.corruptToReport([bad, good], now: 59_999, intervalMs: 60_000).isEmpty)
        let again = schedule.corruptToReport([bad, good], now: 60_000, intervalMs: 60_000)
        #expect(again.map(\.id) == [9])
        #expect(again.first?.reason.contains("stored bytes checksum mismatch") == true)
        schedule.recordReported(9, now: 60_000)
        #expect(schedule.corruptToReport([bad], now: 90_000, intervalMs: 60_000).isEmpty)
        // Once replaced (deleted, or rewritten under a new stamp) it is no longer reported.
        let rewritten = ScanSchedule.Replica(id: 9, generationStamp: 5)
        #expect(schedule.corruptToReport([rewritten], now: 200_000, intervalMs: 60_000).isEmpty)
        #expect(schedule.due([rewritten], now: 200_000) == [rewritten])
    }
}

/// What the name node does with replicas reported corrupt, as pure logic: they are never
/// handed out, copies come from good replicas only, and a corrupt replica is deleted once the
/// block has its replication in good ones, or first when no other node could take a copy.
@Suite struct CorruptReplicaBlockManagerTests {
    func manager(nodes count: Int) -> BlockManager {
        var manager = BlockManager()
        for index in 0..<count {
            var info = Strata_Wire_DatanodeInfo()
            info.nodeID = "n\(index)"
            info.ipAddress = "127.0.0.1"
            info.transferPort = UInt32(9000 + index)
            info.capacity = 1 << 30
            info.remaining = 1 << 29
            let node = manager.register(info, now: .zero)
            manager.processBlockReport([], node: node) { _ in nil }
        }
        return manager
    }

    let record = BlockRecordView(BlockRecord(inode: 1, generationStamp: 1, numBytes: 1_000, isComplete: true))

    func place(_ id: UInt64, on nodes: [UInt16], in manager: inout BlockManager) {
        var reported = Strata_Wire_ReportedBlock()
        reported.block.blockID = id
        reported.block.generationStamp = 1
        reported.block.numBytes = 1_000
        reported.storedBytes = 500
        reported.state = .finalized
        for node in nodes { manager.processReportedReplica(reported, node: node, record: record) }
    }

    func pass(_ manager: inout BlockManager, _ generator: inout SeededGenerator) -> (copies: Int, deletions: Int) {
        let work = manager.computeReplicationWork(now: .milliseconds(1_000), blocks: [(7, record, 3)], using: &generator)
        return (work.scheduledCopies, work.scheduledDeletions)
    }

    func invalidations(_ manager: BlockManager, _ node: UInt16) -> [UInt64] {
        manager.nodes[Int(node)].pendingInvalidations.map(\.blockID)
    }

    @Test func copiedFromGoodReplicasBeforeTheCorruptOneGoes() {
        var manager = manager(nodes: 4)
        var generator = SeededGenerator(seed: 61)
        place(7, on: [0, 1, 2], in: &manager)
        manager.markCorrupt(7, nodeId: "n1")
        #expect(Set(manager.locations(of: 7)) == [0, 2])
        #expect(manager.locations(of: 7, reader: 1) == manager.locations(of: 7), "not even its own node is given it")
        #expect(!manager.isCorrupt(7))
        #expect(manager.health(of: 7, replication: 3) == (live: 2, corrupt: 1))

        #expect(pass(&manager, &generator) == (copies: 1, deletions: 0))
        let transfers = manager.nodes.enumerated().flatMap { index, node in node.pendingTransfers.map { (UInt16(index), $0) } }
        #expect(transfers.count == 1)
        #expect(transfers.first.map { [0, 2].contains($0.0) } == true, "copied from the corrupt replica")
        #expect(transfers.first?.1.targets.map(\.nodeID) == ["n3"])
        #expect(invalidations(manager, 1).isEmpty, "deleted before a good copy exists")

        place(7, on: [3], in: &manager)
        #expect(pass(&manager, &generator) == (copies: 0, deletions: 1))
        #expect(invalidations(manager, 1) == [7])
        #expect(Set(manager.locations(of: 7)) == [0, 2, 3])
        #expect(manager.health(of: 7, replication: 3) == (live: 3, corrupt: 0))
    }

    @Test func withNoSpareNodeTheCorruptOneGoesFirst() {
        var manager = manager(nodes: 3)
        var generator = SeededGenerator(seed: 62)
        place(7, on: [0, 1, 2], in: &manager)
        manager.markCorrupt(7, nodeId: "n1")
        #expect(pass(&manager, &generator) == (copies: 0, deletions: 1), "no copy onto a node that still has the corrupt file")
        #expect(invalidations(manager, 1) == [7])
        #expect(Set(manager.locations(of: 7)) == [0, 2])
        #expect(manager.health(of: 7, replication: 3) == (live: 2, corrupt: 0))
        // The next pass copies the block back onto the node.
        #expect(pass(&manager, &generator) == (copies: 1, deletions: 0))
        let targets = manager.nodes.flatMap(\.pendingTransfers).flatMap { $0.targets.map(\.nodeID) }
        #expect(targets == ["n1"])
    }

    @Test func everyReplicaCorruptKeepsThemAndHandsOutNone() {
        var manager = manager(nodes: 4)
        var generator = SeededGenerator(seed: 63)
        place(7, on: [0, 1, 2], in: &manager)
        for node in ["n0", "n1", "n2"] { manager.markCorrupt(7, nodeId: node) }
        // A report from a node without the block changes nothing.
        manager.markCorrupt(7, nodeId: "n3")
        manager.markCorrupt(7, nodeId: "unknown")
        #expect(manager.locations(of: 7).isEmpty)
        #expect(manager.isCorrupt(7))
        #expect(manager.health(of: 7, replication: 3) == (live: 0, corrupt: 3))
        #expect(pass(&manager, &generator) == (copies: 0, deletions: 0))
        #expect((0..<4).allSatisfy { invalidations(manager, UInt16($0)).isEmpty })
    }
}

/// Inverts one byte in the middle of frame `frame`'s payload in a block file, so the frame's
/// stored checksum no longer matches (the block's header, index and trailer stay intact).
func flipByteInFrame(of path: String, blockId: UInt64, frame: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let reader = try BlockReader(path: path, expectedBlockId: blockId)
    try #require(frame < reader.frameCount, "block \(blockId) has only \(reader.frameCount) frames", sourceLocation: sourceLocation)
    let payload = reader.frameLength(ofFrame: frame) - FrameHeader.encodedSize
    let offset = reader.frameOffsets[frame] + UInt64(FrameHeader.encodedSize + payload / 2)
    let handle = try #require(FileHandle(forUpdatingAtPath: path), sourceLocation: sourceLocation)
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    let original = try #require(try handle.read(upToCount: 1)?.first, sourceLocation: sourceLocation)
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data([~original]))
    try handle.synchronize()
    let damaged = try BlockReader(path: path, expectedBlockId: blockId).verifyFrames().filter { $0.error != nil }.map(\.index)
    #expect(damaged == [frame], "the flipped byte damages exactly frame \(frame)", sourceLocation: sourceLocation)
}
