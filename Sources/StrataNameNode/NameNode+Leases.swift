import Foundation
import StrataCore
import StrataWire

/// Writer leases and recovery from writer failures: the shell around `LeaseManager`, which
/// makes the decisions.
///
/// Every file open for writing has a lease held by its writer's client name, renewed by the
/// writer's calls and its `renewLease` heartbeat. A writer silent past the soft limit loses the
/// file to another writer that wants it (create with overwrite, append, `recoverLease`); past the
/// hard limit the name node takes it back by itself. Taking a file back means recovering its
/// last block (if unfinished) on the data nodes: the name node gives the lease to itself,
/// reserves a recovery generation stamp and asks one node holding the block to recover it
/// (`DataNode.recoverBlock`); the node reports the length all replicas agree on, and the file
/// is closed at it (`commitBlockSynchronization`).
///
/// Pipeline recovery keeps a live writer going when a node of its pipeline dies:
/// `updateBlockForPipeline` gives the block a new generation stamp (and a replacement node),
/// `updatePipeline` records the new pipeline once the writer has set it up.
extension NameNode {
    // MARK: - Pipeline recovery

    func updateBlockForPipeline(
        _ request: Strata_Wire_UpdateBlockForPipelineRequest, clientName: String
    ) async throws -> Strata_Wire_UpdateBlockForPipelineResponse {
        let now = clock.now
        var generator = SystemRandomNumberGenerator()
        return try await mutate("update block for pipeline", path: request.path) { (state) throws(RemoteException) in
            let path = state.namespace.currentPath(request.path, fileId: request.fileID, clientName: clientName)
            let current = try state.namespace.blockBeingWritten(path, clientName: clientName, block: request.block)
            guard current.record.generationStamp == request.block.generationStamp else {
                throw RemoteException.io(
                    "Block \(request.block.blockID) of \(current.path) has generation stamp \(current.record.generationStamp), "
                        + "not \(request.block.generationStamp)")
            }
            state.leases.renew(clientName, now: now)
            let (edit, stamp) = state.namespace.prepareReserveGenerationStamp()
            var response = Strata_Wire_UpdateBlockForPipelineResponse()
            response.block = request.block
            response.block.generationStamp = stamp
            if request.wantReplacement {
                let excluded = Set((request.existingNodeIds + request.failedNodeIds).compactMap { state.blockManager.index(ofNode: $0) })
                let node = state.namespace.inode(current.index)
                if let replacement = state.blockManager.chooseTargets(
                    count: 1, writer: nil, excluding: excluded, requiredBytes: node.blockSize, using: &generator
                ).first {
                    response.replacement = state.blockManager.nodeInfo(replacement)
                }
            }
            return ([edit], response)
        }
    }

    func updatePipeline(_ request: Strata_Wire_UpdatePipelineRequest, clientName: String) async throws -> Strata_Wire_Empty {
        let now = clock.now
        try await mutate("update pipeline", path: request.path) { (state) throws(RemoteException) in
            let edit = try state.namespace.prepareUpdatePipeline(
                state.namespace.currentPath(request.path, fileId: request.fileID, clientName: clientName), clientName: clientName,
                oldBlock: request.oldBlock, newBlock: request.newBlock)
            state.leases.renew(clientName, now: now)
            let id = request.newBlock.blockID
            let nodes = request.nodeIds.compactMap { state.blockManager.index(ofNode: $0) }
            state.pipelineTargets[id] = nodes
            // Nodes left out of the new pipeline keep a replica with the old stamp: stale.
            if let entry = state.blockManager.replicas[id] {
                for node in state.blockManager.replicaNodes(id, entry) where !nodes.contains(node) {
                    state.blockManager.removeReplica(id, node: node)
                }
            }
            return (edit.map { [$0] } ?? [], ())
        }
        return Strata_Wire_Empty()
    }

    // MARK: - Lease recovery

    enum RecoveryOutcome {
        case closed
        case started
        /// The last block has no live replica to recover from yet.
        case waiting
    }

    /// Takes a file back from its writer: closes it at once when its blocks are all complete,
    /// or starts the recovery of its last block.
    @discardableResult
    func recoverLease(of path: String, reason: String) async throws -> RecoveryOutcome {
        let now = clock.now
        let time = clock.wallTimeMs
        let outcome = try await mutate("recover lease", path: path) { (state) throws(RemoteException) -> ([Edit], RecoveryOutcome) in
            let resolution = try state.namespace.resolve(path)
            guard let index = resolution.target, let holder = state.namespace.writers[index] else { return ([], .closed) }
            let node = state.namespace.inode(index)
            guard let lastId = node.blocks.last, let record = state.namespace.blocks[lastId], !record.isComplete else {
                return (state.namespace.prepareRecoveredClose(index, last: nil, removeLast: false, now: time), .closed)
            }
            if state.leases.isRecoveryRunning(block: lastId, now: now) { return ([], .started) }
            var locations = state.pipelineTargets[lastId] ?? []
            if let entry = state.blockManager.replicas[lastId] {
                for node in state.blockManager.replicaNodes(lastId, entry) where !locations.contains(node) {
                    locations.append(node)
                }
            }
            // Nodes given the block (its pipeline) or reporting a replica of it, dead or alive:
            // a dead one (stopped, or late with its heartbeats) may hold flushed bytes.
            let given = !locations.isEmpty
            let nodes = state.blockManager.nodes
            locations.removeAll { !nodes[Int($0)].isAlive }
            guard !locations.isEmpty else {
                // A block no node was given holds no bytes: it goes (HDFS drops a last block with
                // no expected locations and no length). Otherwise wait for one of its nodes.
                if !given && record.numBytes == 0 {
                    return (state.namespace.prepareRecoveredClose(index, last: nil, removeLast: true, now: time), .closed)
                }
                return ([], .waiting)
            }
            var edits: [Edit] = []
            if holder != Namespace.recoveryHolder {
                edits.append(state.namespace.prepareLeaseTransfer(index, to: Namespace.recoveryHolder, now: time))
            }
            let (reserve, stamp) = state.namespace.prepareReserveGenerationStamp()
            edits.append(reserve)
            // A node that heartbeats soonest runs it; a retry prefers another node, and the
            // earlier attempt's command, if its node never took it, is dropped.
            let isRetry = state.leases.hasRecovery(block: lastId)
            let primary = locations.count > 1 && isRetry ? locations[Int(stamp % UInt64(locations.count))] : locations[0]
            var command = Strata_Wire_DatanodeCommand.RecoverBlock()
            command.block.blockID = lastId
            // Replicas from before an append that never reopened them hold the file's bytes too:
            // the recovery takes them in unless a newer replica exists.
            command.block.generationStamp = state.namespace.view(lastId, record).oldestValidStamp
            command.block.numBytes = record.numBytes
            command.newGenerationStamp = stamp
            command.locations = locations.map { state.blockManager.nodeInfo($0) }
            state.leases.startRecovery(command, file: index, on: state.blockManager.nodes[Int(primary)].info.nodeID, now: now)
            logger.info("lease recovery started", metadata: [
                "path": "\(state.namespace.path(of: index))", "holder": "\(holder)", "reason": "\(reason)", "block": "\(lastId)",
                "recoveryStamp": "\(stamp)", "primary": "\(state.blockManager.nodes[Int(primary)].info.nodeID)"])
            return (edits, .started)
        }
        if outcome == .closed { logger.info("lease recovered: file closed", metadata: ["path": "\(path)", "reason": "\(reason)"]) }
        return outcome
    }

    /// The primary node of a lease recovery reports the length the replicas agree on.
    func commitBlockSynchronization(_ request: Strata_Wire_CommitBlockSynchronizationRequest) async throws -> Strata_Wire_Empty {
        let time = clock.wallTimeMs
        let id = request.block.blockID
        try await mutate("commit block synchronization", path: "block \(id)") { (state) throws(RemoteException) in
            guard let file = state.leases.finishRecovery(block: id, generationStamp: request.newGenerationStamp) else {
                throw RemoteException.io("No recovery of block \(id) with generation stamp \(request.newGenerationStamp) is in progress")
            }
            // The file may be gone (deleted meanwhile) or its block replaced.
            guard let record = state.namespace.blocks[id], record.inode == file,
                state.namespace.writers[file] == Namespace.recoveryHolder
            else { return ([], ()) }
            state.pipelineTargets[id] = nil
            if request.deleteBlock {
                return (state.namespace.prepareRecoveredClose(file, last: nil, removeLast: true, now: time), ())
            }
            var last = Strata_Journal_BlockRef()
            last.blockID = id
            last.generationStamp = request.newGenerationStamp
            last.numBytes = request.newLength
            // Replicas the recovery did not bring along are stale.
            let recovered = Set(request.nodeIds.compactMap { state.blockManager.index(ofNode: $0) })
            if let entry = state.blockManager.replicas[id] {
                var stale = request.block
                stale.numBytes = 0
                for node in state.blockManager.replicaNodes(id, entry) where !recovered.contains(node) {
                    state.blockManager.removeReplica(id, node: node)
                    state.blockManager.invalidate(stale, on: node)
                }
            }
            return (state.namespace.prepareRecoveredClose(file, last: last, removeLast: false, now: time), ())
        }
        logger.info("lease recovery committed", metadata: [
            "block": "\(id)", "length": "\(request.newLength)", "removed": "\(request.deleteBlock)"])
        return Strata_Wire_Empty()
    }

    /// `recoverLease`: true when the file is closed (already, or now); false while its
    /// recovery runs (HDFS `DistributedFileSystem.recoverLease`).
    func recoverLease(_ request: Strata_Wire_PathRequest, caller: Caller) async throws -> Strata_Wire_BoolResponse {
        try state.withLock { (state) throws(RemoteException) in
            let (index, path) = try state.namespace.existing(request.path, caller: caller)
            if state.namespace.inode(index).isDirectory {
                throw RemoteException.fileNotFound("\(path) is a directory")
            }
            try state.namespace.check(caller, .write, index, path: path)
        }
        return boolResponse(try await recoverLease(of: request.path, reason: "recoverLease by \(caller.user)") == .closed)
    }

    /// For create (overwrite) and append: a file held by a writer silent past the soft limit is
    /// taken back, and the caller is told to try again (HDFS `RecoveryInProgressException`).
    func takeBackIfAbandoned(_ path: String, clientName: String, operation: String) async throws {
        let now = clock.now
        let abandoned: String? = state.withLock { state in
            guard let holder = state.namespace.writer(of: path), holder != clientName else { return nil }
            if holder == Namespace.recoveryHolder { return holder }
            return state.leases.isPastSoftLimit(holder, now: now) ? holder : nil
        }
        guard let abandoned else { return }
        if try await recoverLease(of: path, reason: "soft limit expired; \(operation) by \(clientName)") == .closed { return }
        throw RemoteException(
            .recoveryInProgress,
            "Failed to \(operation) \(path) for \(clientName): lease recovery is in progress (the lease was held by \(abandoned)). Try again later.")
    }

    /// Runs once a second on the name node's clock: leases past the hard limit are recovered,
    /// recoveries that timed out start over.
    func runLeaseMonitor() async {
        while !Task.isCancelled {
            do { try await clock.sleep(milliseconds: min(1_000, configuration.monitorIntervalMs * 2)) } catch { return }
            await leaseMonitorPass()
        }
    }

    /// One pass of the lease monitor (tests call it directly on a manual clock).
    func leaseMonitorPass() async {
        let now = clock.now
        let due: [(String, String)] = state.withLock { state in
            guard !state.safeMode.isOn else { return [] }
            let namespace = state.namespace
            let open = namespace.openFiles.lazy.map {
                LeaseManager.OpenFile(file: $0.index, holder: $0.holder, lastBlock: namespace.inode($0.index).blocks.last)
            }
            return state.leases.filesToRecover(open, recoveryHolder: Namespace.recoveryHolder, now: now).map {
                (namespace.path(of: $0.file), $0.reason)
            }
        }
        for (path, reason) in due {
            do {
                try await recoverLease(of: path, reason: reason)
            } catch {
                logger.debug("lease recovery of \(path) not started: \(error)")
            }
        }
    }
}
