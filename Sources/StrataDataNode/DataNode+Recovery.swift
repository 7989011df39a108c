import StrataBlockFormat
import StrataClient
import StrataCore
import StrataWire

/// Recovery of blocks whose writer failed.
///
/// Pipeline recovery (the writer lives, a node of its pipeline died): the writer asks a surviving
/// node to copy the acknowledged part of its replica to a replacement node (`TRANSFER_BLOCK`),
/// then sets up a pipeline in the `RECOVER` stage, where every node cuts its replica to the
/// acknowledged length under the block's new generation stamp (`BlockStore.recoverForWriting`).
///
/// Lease recovery (the writer died): the name node picks one node holding the block as the
/// primary and sends it a `RecoverBlock` command. The primary asks every node for its replica
/// (`RECOVER_REPLICA` INIT, which also stops any writer), picks the length they all hold, has
/// each cut and finish its replica at that length under the recovery's generation stamp
/// (UPDATE), and reports the result to the name node (`commitBlockSynchronization`), which closes
/// the file.
extension DataNode {
    /// Serves `TRANSFER_BLOCK`: copies the first `block.numBytes` raw bytes (whole frames) of a
    /// replica to the targets, where they stay an unfinished replica.
    func transferPartialReplica(_ op: Strata_Wire_TransferBlockOp, outbound: Outbound) async throws {
        activeTransfers.add(1, ordering: .relaxed)
        defer { activeTransfers.subtract(1, ordering: .relaxed) }
        var response = Strata_Wire_TransferResponse()
        let id = op.block.blockID
        do {
            let store = self.store
            let snapshot = try await threadPool.runIfActive { try store.openForReading(id) }
            let reader = snapshot.reader
            let frameSize = UInt64(reader.rawFrameSize)
            guard reader.header.generationStamp == op.block.generationStamp else {
                throw RemoteException(
                    .replicaNotFound,
                    "Replica \(id) has generation stamp \(reader.header.generationStamp), not \(op.block.generationStamp)")
            }
            guard op.block.numBytes % frameSize == 0, op.block.numBytes <= reader.rawLength, !op.targets.isEmpty else {
                let recorded = store.replica(id)
                throw RemoteException.illegalArgument(
                    "cannot transfer \(op.block.numBytes) bytes of replica \(id): it holds \(reader.rawLength) in \(reader.frameCount) frames of \(frameSize) "
                        + "(file \(reader.path), \(reader.framesEnd) bytes of frames; recorded: stamp \(recorded?.generationStamp ?? 0), "
                        + "\(recorded?.isFinalized == true ? "finalized" : "being written"), \(recorded?.rawLength ?? 0) bytes)")
            }
            try await send(snapshot, frames: Int(op.block.numBytes / frameSize), as: op.block, stage: .transfer, to: op.targets, finish: false)
            response.status = .success
            response.rawLength = op.block.numBytes
        } catch {
            response.status = .error
            response.message = "node \(nodeId): transfer of block \(id) failed: \(error)"
            logger.warning("partial replica transfer failed", metadata: ["block": "\(id)", "error": "\(error)"])
        }
        try await outbound.write(try Self.responseFrame(response))
    }

    /// Serves `RECOVER_REPLICA`: INIT reports the replica (and stops its writer), UPDATE cuts
    /// and finishes it under the recovery's generation stamp.
    func recoverReplica(_ op: Strata_Wire_RecoverReplicaOp, outbound: Outbound) async throws {
        var response = Strata_Wire_TransferResponse()
        let id = op.block.blockID
        let store = self.store
        do {
            switch op.phase {
            case .init_:
                let state = try await threadPool.runIfActive {
                    try store.beginRecovery(id, recoveryGenerationStamp: op.recoveryGenerationStamp)
                }
                response.generationStamp = state.generationStamp
                response.rawLength = state.rawLength
                response.finalized = state.isFinalized
            case .update:
                let replica = try await threadPool.runIfActive {
                    try store.finishRecovery(id, recoveryGenerationStamp: op.recoveryGenerationStamp, rawLength: op.newLength)
                }
                response.generationStamp = replica.generationStamp
                response.rawLength = replica.rawLength
                response.finalized = true
                await reportReceived(id)
            case .UNRECOGNIZED(let value):
                throw RemoteException.illegalArgument("unknown recovery phase \(value)")
            }
            response.status = .success
        } catch {
            response.status = .error
            response.message = "node \(nodeId): \(error)"
        }
        try await outbound.write(try Self.responseFrame(response))
    }

    /// Runs a lease recovery as its primary node (see the type's comment).
    func recoverBlock(_ command: Strata_Wire_DatanodeCommand.RecoverBlock) async {
        let id = command.block.blockID
        let stamp = command.newGenerationStamp
        var begin = Strata_Wire_TransferHeader()
        begin.op = .recoverReplica
        begin.recover.block = command.block
        begin.recover.recoveryGenerationStamp = stamp
        begin.recover.phase = .init_
        var states: [(node: Strata_Wire_DatanodeInfo, state: Strata_Wire_TransferResponse)] = []
        for node in command.locations {
            do {
                let response = try await TransferRequest.exchange(begin, with: node, group: group)
                // Replicas older than the oldest stamp the block's data may carry: left out.
                if response.status == .success && response.generationStamp >= command.block.generationStamp {
                    states.append((node, response))
                } else if response.status != .success {
                    logger.info("replica left out of recovery", metadata: ["block": "\(id)", "node": "\(node.nodeID)", "reason": "\(response.message)"])
                }
            } catch {
                logger.info("replica left out of recovery", metadata: ["block": "\(id)", "node": "\(node.nodeID)", "reason": "\(error)"])
            }
        }
        var commit = Strata_Wire_CommitBlockSynchronizationRequest()
        commit.block = command.block
        commit.newGenerationStamp = stamp
        // Only the replicas of the newest stamp were in the writer's last pipeline, which held
        // every byte it saw acknowledged; older ones (from before an append or a pipeline
        // recovery) may lack some. Among those, finished replicas hold the whole block;
        // otherwise the bytes every replica holds are the ones the writer could have seen
        // acknowledged.
        let newest = states.map(\.state.generationStamp).max() ?? 0
        states.removeAll { $0.state.generationStamp < newest }
        let finalized = states.filter { $0.state.finalized }
        let chosen = finalized.isEmpty ? states : finalized
        let length = chosen.map(\.state.rawLength).min() ?? 0
        if chosen.isEmpty || length == 0 {
            commit.deleteBlock = true
        } else {
            var update = begin
            update.recover.phase = .update
            update.recover.newLength = length
            for (node, state) in states where state.rawLength >= length {
                do {
                    let response = try await TransferRequest.exchange(update, with: node, group: group)
                    if response.status == .success {
                        commit.nodeIds.append(node.nodeID)
                    } else {
                        logger.warning("replica recovery failed", metadata: ["block": "\(id)", "node": "\(node.nodeID)", "reason": "\(response.message)"])
                    }
                } catch {
                    logger.warning("replica recovery failed", metadata: ["block": "\(id)", "node": "\(node.nodeID)", "reason": "\(error)"])
                }
            }
            guard !commit.nodeIds.isEmpty else { return }
            commit.newLength = length
        }
        do {
            let _: Strata_Wire_Empty = try await nameNode.call(.commitBlockSynchronization, commit, user: Self.rpcUser)
            logger.info("block recovered", metadata: [
                "block": "\(id)", "length": "\(commit.newLength)", "nodes": "\(commit.nodeIds.count)", "removed": "\(commit.deleteBlock)"])
        } catch {
            logger.warning("could not commit the recovery of block \(id): \(error)")
        }
    }
}
