import Foundation
import StrataCore
import StrataWire

extension NameNode {
    /// The background loop: dead data nodes, failed volumes, end of start-up safe mode,
    /// replication work, decommissioning and checkpoints, every `monitorIntervalMs` on the name
    /// node's clock. Runs until the name node shuts down.
    func runMonitor() async {
        // Nodes decommissioned before a restart stay out of service (data nodes register only
        // after the RPC server and this loop have started, so this comes first).
        let decommissionList = loadDecommissionList()
        if !decommissionList.isEmpty {
            state.withLock { $0.blockManager.restoreDecommissionRequests(decommissionList) }
            logger.info("decommission list loaded", metadata: ["nodes": "\(decommissionList.count)"])
        }
        while !Task.isCancelled {
            do { try await clock.sleep(milliseconds: configuration.monitorIntervalMs) } catch { return }
            await monitorPass()
            maybeCheckpoint()
        }
    }

    /// One pass of the monitor. Scans over the blocks (the safe-mode count, replication) go a
    /// chunk of `scanChunkBlockIds` ids per hold of the lock, letting other work in between.
    func monitorPass() async {
        let now = clock.now
        state.withLock { state in
            let died = state.blockManager.checkHeartbeats(now: now)
            for node in died {
                logger.warning("data node is dead: no heartbeat within the timeout", metadata: [
                    "node": "\(node)", "timeoutMs": "\(configuration.blockManager.heartbeatTimeoutMs)"])
            }
            if !died.isEmpty {
                state.replicationScanNeeded = true
                clusterStateChanges.signal()
            }
            for change in state.blockManager.takeVolumeStateChanges() {
                if change.failed {
                    logger.warning("data node volume failed: it takes no new replicas", metadata: [
                        "node": "\(change.nodeId)", "reason": "\(change.reason)"])
                } else {
                    logger.notice("data node volume works again", metadata: ["node": "\(change.nodeId)"])
                }
                state.replicationScanNeeded = true
            }
            if state.safeMode.needsCount && state.safeModeCount == nil {
                state.safeModeCount = (Namespace.firstBlockId, 0, 0)
            }
            // A full pass costs time proportional to the blocks: one starts when something
            // changed, and at least every 30 s to retry work that did not happen. (Begun in the
            // same hold as the check, so passes run at the same time share one scan.)
            if !state.safeMode.isOn && state.replicationScan == nil
                && (state.replicationScanNeeded || now.milliseconds(since: state.lastReplicationScan) > 30_000)
            {
                state.replicationScanNeeded = false
                state.lastReplicationScan = now
                state.replicationScan = (state.blockManager.beginReplicationPass(now: now), Namespace.firstBlockId)
            }
        }
        // Dead nodes' replicas are forgotten a chunk of block ids per hold (until then they count nowhere).
        while state.withLock({ $0.blockManager.forgetDeadReplicas(chunkIds: configuration.scanChunkBlockIds, below: $0.namespace.nextBlockId) }) {
            await Task.yield()
        }
        while state.withLock({ countReportedBlocks(&$0) }) { await Task.yield() }
        while state.withLock({ scanForReplication(&$0) }) { await Task.yield() }
    }

    /// Counts the next chunk of blocks for start-up safe mode; returns whether the count goes on.
    private func countReportedBlocks(_ state: inout State) -> Bool {
        guard var count = state.safeModeCount else { return false }
        let end = min(count.next + UInt64(configuration.scanChunkBlockIds), state.namespace.nextBlockId)
        for (id, record, _) in state.namespace.blocks(inIds: count.next..<end) where record.isComplete {
            count.total += 1
            if !state.blockManager.locations(of: id).isEmpty { count.reported += 1 }
        }
        count.next = end
        guard end >= state.namespace.nextBlockId else {
            state.safeModeCount = count
            return true
        }
        state.safeModeCount = nil
        if state.safeMode.counted(reported: count.reported, total: count.total, now: clock.now) {
            logger.info("leaving safe mode", metadata: ["reportedBlocks": "\(count.reported)", "totalBlocks": "\(count.total)"])
            clusterStateChanges.signal()
        }
        return false
    }

    /// Scans the next chunk of blocks for replication work, and ends the pass after the last
    /// one; returns whether the pass goes on.
    private func scanForReplication(_ state: inout State) -> Bool {
        guard var scan = state.replicationScan else { return false }
        var generator = SystemRandomNumberGenerator()
        let end = min(scan.next + UInt64(configuration.scanChunkBlockIds), state.namespace.nextBlockId)
        state.blockManager.scanForReplication(state.namespace.blocks(inIds: scan.next..<end), in: &scan.pass, using: &generator)
        scan.next = end
        guard end >= state.namespace.nextBlockId else {
            state.replicationScan = scan
            return true
        }
        state.replicationScan = nil
        let work = state.blockManager.finishReplicationPass(scan.pass, now: clock.now, using: &generator)
        if work.scheduledCopies > 0 || work.scheduledDeletions > 0 {
            logger.info("replication work scheduled", metadata: [
                "copies": "\(work.scheduledCopies)", "deletions": "\(work.scheduledDeletions)"])
        }
        for node in work.decommissioned {
            logger.notice("data node decommissioned: no block needs its replicas", metadata: ["node": "\(node)"])
        }
        return false
    }

    /// Writes a checkpoint image in the background once enough edits have gathered, so a
    /// restart replays a bounded number of edits. The write runs on a thread of its own (it
    /// blocks on the disk); shutdown waits for it.
    func maybeCheckpoint() {
        let due = journal.lastSubmittedTransactionId - journal.checkpointTransactionId >= configuration.checkpointEveryEdits
        guard due, checkpointRunning.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        let done = CompletionSignal()
        let running = self
        let thread = Thread {
            defer {
                running.checkpointRunning.store(false, ordering: .releasing)
                done.complete(.success(()))
            }
            do {
                try running.writeCheckpoint()
            } catch {
                running.logger.error("checkpoint failed", metadata: ["error": "\(error)"])
            }
        }
        thread.name = "strata-checkpoint"
        checkpointTask.withLock { $0 = Task { _ = await done.wait() } }
        thread.start()
    }

    /// Forces a checkpoint now (tests and `strata dfsadmin saveNamespace`): every edit submitted
    /// so far is made durable and folded into a new image.
    public func checkpointNow() throws {
        try journal.flush()
        try writeCheckpoint()
    }

    /// Writes a checkpoint image of what the journal holds durable. The image is built from the
    /// newest image and the edits after it, on a namespace of its own (as HDFS's secondary name
    /// node does), never from the live namespace: sharing the live namespace's storage would make
    /// its next change copy all of it, under the lock the RPC handlers need. It costs a second
    /// namespace in memory while it runs. Blocks on the disk: run it on a thread of its own.
    func writeCheckpoint() throws {
        let started = clock.now
        let (namespace, _, transaction, replayed) = try Self.replayJournal(
            journal, settings: configuration.namespaceSettings, wallTimeMs: clock.wallTimeMs)
        guard replayed > 0 else { return }
        try journal.writeCheckpoint(transactionId: transaction, records: namespace.image)
        logger.info("checkpoint written", metadata: [
            "transaction": "\(transaction)", "edits": "\(replayed)",
            "seconds": "\(String(format: "%.3f", Double(clock.now.milliseconds(since: started)) / 1000))"])
    }

    // MARK: - fsck

    /// Checks the files under a path, `subtreeChunkInodes` files and directories per hold of the
    /// lock: fsck of `/` on a big namespace lets other calls in between chunks. Each block is
    /// judged as it is when its file is visited; on a namespace that does not change meanwhile,
    /// the report is the one a walk in one go gives.
    func fsck(_ request: Strata_Wire_FsckRequest, caller: Caller) async throws -> Strata_Wire_FsckReport {
        let chunk = max(1, configuration.subtreeChunkInodes)
        var report = Strata_Wire_FsckReport()
        report.path = request.path
        report.defaultReplication = UInt32(configuration.defaultReplication)
        var replicaTotal = 0
        var walk: SubtreeWalk?
        while true {
            let goesOn = try state.withLock { (state) throws(RemoteException) -> Bool in
                if walk == nil {
                    walk = try state.namespace.beginWalk(request.path, caller: caller)
                    report.liveDatanodes = UInt32(state.blockManager.liveNodeCount)
                    report.deadDatanodes = UInt32(state.blockManager.deadNodeCount)
                }
                let namespace = state.namespace
                let blockManager = state.blockManager
                return try namespace.continueWalk(&walk!, limit: chunk) { inode in
                    let node = namespace.inode(inode.index)
                    guard !node.isDirectory else {
                        report.totalDirectories += 1
                        return
                    }
                    let blocks = node.blocks.array
                    let openForWrite = namespace.writers[inode.index] != nil
                    let length = namespace.fileLength(node)
                    let replication = Int(node.replication)
                    report.totalFiles += 1
                    report.totalSize += length
                    if openForWrite { report.openFiles += 1 }
                    var problem = Strata_Wire_FsckFile()
                    problem.path = inode.path
                    problem.length = length
                    problem.blockCount = UInt32(blocks.count)
                    problem.replication = UInt32(replication)
                    problem.minLiveReplicas = UInt32.max
                    var hasProblem = false
                    for (position, id) in blocks.enumerated() {
                        // The block being written is not judged until the file is closed.
                        if openForWrite && position == blocks.count - 1 { continue }
                        report.totalBlocks += 1
                        report.storedBytes += blockManager.storedBytes(of: id)
                        let health = blockManager.health(of: id, replication: replication)
                        // Replicas on decommissioning or decommissioned nodes, or on a failed volume,
                        // are readable but do not count toward replication (as in HDFS's fsck).
                        let inService = max(0, health.live - blockManager.outOfServiceReplicas(of: id))
                        replicaTotal += inService
                        problem.minLiveReplicas = min(problem.minLiveReplicas, UInt32(inService))
                        if health.live == 0 && health.corrupt > 0 {
                            report.corruptBlocks += 1
                            problem.corrupt = true
                            hasProblem = true
                        } else if health.live == 0 {
                            report.missingBlocks += 1
                            problem.missing = true
                            hasProblem = true
                        } else {
                            report.minReplicatedBlocks += 1
                            if inService < replication {
                                report.underReplicatedBlocks += 1
                                hasProblem = true
                            } else if inService > replication {
                                report.overReplicatedBlocks += 1
                            }
                        }
                    }
                    if problem.minLiveReplicas == UInt32.max { problem.minLiveReplicas = 0 }
                    if hasProblem || request.listFiles { report.problemFiles.append(problem) }
                }
            }
            guard goesOn else { break }
            await Task.yield()
        }
        // Files in the byte order of their paths, as HDFS lists them (the walk's order is the
        // directories' own).
        report.problemFiles.sort { Namespace.byteOrder($0.path, $1.path) }
        report.averageReplication = report.totalBlocks == 0 ? 0 : Double(replicaTotal) / Double(report.totalBlocks)
        report.healthy = report.corruptBlocks == 0 && report.missingBlocks == 0
        return report
    }
}
