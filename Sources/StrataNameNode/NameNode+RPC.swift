import Foundation
import StrataCore
import StrataWire
import SwiftProtobuf

extension NameNode {
    /// Answers one RPC call.
    func handle(_ call: RPCCall) async throws -> any SwiftProtobuf.Message {
        if let response = try handleInline(call) { return response }
        switch call.method {
        // Namespace reads are answered inline (`handleInline`), but for walks of a subtree,
        // which let go of the lock every chunk of inodes.
        case .fsck:
            return try await fsck(try call.request(), caller: try caller(call))
        case .getContentSummary:
            return try await contentSummary(try call.request(), caller: try caller(call))
        case .getDatanodeReport:
            var report = Strata_Wire_DatanodeReport()
            // The last contact as a date (wall time), from how long ago it was (monotonic).
            let (now, wallTimeMs) = (clock.now, clock.wallTimeMs)
            report.nodes = state.withLock { state in
                state.blockManager.nodes.indices.map { index in
                    var info = state.blockManager.nodeInfo(UInt16(index))
                    info.lastHeartbeatMs = wallTimeMs - now.milliseconds(since: state.blockManager.nodes[index].lastHeartbeat)
                    return info
                }
            }
            return report

        // Namespace mutations.
        case .mkdirs:
            let request = try call.request(Strata_Wire_MkdirsRequest.self)
            let caller = try caller(call)
            let now = clock.wallTimeMs
            try await mutate("create directory", path: request.path) { (state) throws(RemoteException) in
                (try state.namespace.prepareMkdirs(
                    request.path, permission: UInt16(request.permission & 0o1777), createParent: request.createParent, caller: caller, now: now), ())
            }
            return boolResponse(true)
        case .create:
            let request = try call.request(Strata_Wire_CreateRequest.self)
            let caller = try caller(call)
            let clientName = try requireClientName(call)
            if request.overwrite { try await takeBackIfAbandoned(request.path, clientName: clientName, operation: "CREATE_FILE") }
            let now = clock.wallTimeMs
            let status = try await mutate("create file", path: request.path) { (state) throws(RemoteException) in
                let replication = request.replication == 0 ? configuration.defaultReplication : Int(request.replication)
                let blockSize = request.blockSize == 0 ? configuration.defaultBlockSize : request.blockSize
                var edits = try state.namespace.prepareCreate(
                    request.path, permission: UInt16(request.permission & 0o1777), overwrite: request.overwrite,
                    createParent: request.createParent, replication: replication, blockSize: blockSize, clientName: clientName,
                    caller: caller, now: now)
                let path = edits.last!.createFile.path
                if request.close {
                    // An empty file closed at once: both edits share one commit.
                    var close = Strata_Journal_CloseFile()
                    close.path = path
                    close.timeMs = now
                    var edit = Edit()
                    edit.closeFile = close
                    edits.append(edit)
                } else {
                    state.leases.renew(clientName, now: clock.now)
                }
                return (edits, path)
            }
            var response = Strata_Wire_CreateResponse()
            if let created = try state.withLock({ (state) throws(RemoteException) in try state.namespace.status(status, caller: caller) }) {
                response.status = created
            }
            return response
        case .updateBlockForPipeline:
            return try await updateBlockForPipeline(try call.request(), clientName: try requireClientName(call))
        case .updatePipeline:
            return try await updatePipeline(try call.request(), clientName: try requireClientName(call))
        case .recoverLease:
            return try await recoverLease(try call.request(), caller: try caller(call))
        case .commitBlockSynchronization:
            return try await commitBlockSynchronization(try call.request())
        case .addBlock:
            return try await addBlock(try call.request(), clientName: try requireClientName(call))
        case .abandonBlock:
            let request = try call.request(Strata_Wire_AbandonBlockRequest.self)
            let clientName = try requireClientName(call)
            try await mutate("abandon block", path: request.path) { (state) throws(RemoteException) in
                let path = state.namespace.currentPath(request.path, fileId: request.fileID, clientName: clientName)
                return ([try state.namespace.prepareAbandonBlock(path, clientName: clientName, blockId: request.block.blockID)], ())
            }
            return Strata_Wire_Empty()
        case .complete:
            return try await complete(try call.request(), clientName: try requireClientName(call))
        case .append:
            return try await append(try call.request(), caller: try caller(call), clientName: try requireClientName(call))
        case .rename:
            let request = try call.request(Strata_Wire_RenameRequest.self)
            let caller = try caller(call)
            let now = clock.wallTimeMs
            try await mutate("rename", path: request.source) { (state) throws(RemoteException) in
                ([try state.namespace.prepareRename(request.source, to: request.destination, overwrite: request.overwrite, caller: caller, now: now)], ())
            }
            return boolResponse(true)
        case .renameLegacy:
            let request = try call.request(Strata_Wire_RenameRequest.self)
            let caller = try caller(call)
            let now = clock.wallTimeMs
            let renamed = try await mutate("rename", path: request.source) { (state) throws(RemoteException) in
                let (edit, result) = try state.namespace.prepareLegacyRename(request.source, to: request.destination, caller: caller, now: now)
                return (edit.map { [$0] } ?? [], result)
            }
            return boolResponse(renamed)
        case .concat:
            let request = try call.request(Strata_Wire_ConcatRequest.self)
            let caller = try caller(call)
            let now = clock.wallTimeMs
            try await mutate("concat", path: request.target) { (state) throws(RemoteException) in
                ([try state.namespace.prepareConcat(request.target, sources: request.sources, caller: caller, now: now)], ())
            }
            return Strata_Wire_Empty()
        case .truncate:
            let request = try call.request(Strata_Wire_TruncateRequest.self)
            let caller = try caller(call)
            let now = clock.wallTimeMs
            try await mutate("truncate", path: request.path) { (state) throws(RemoteException) in
                let edit = try state.namespace.prepareTruncate(
                    request.path, newLength: request.newLength, replacement: request.replacement,
                    cutBlock: request.hasCutBlock ? request.cutBlock : nil, caller: caller, now: now)
                return (edit.map { [$0] } ?? [], ())
            }
            return boolResponse(true)
        case .delete:
            let request = try call.request(Strata_Wire_DeleteRequest.self)
            let caller = try caller(call)
            let now = clock.wallTimeMs
            let deleted = try await mutate("delete", path: request.path) { (state) throws(RemoteException) in
                let edit = try state.namespace.prepareDelete(request.path, recursive: request.recursive, caller: caller, now: now)
                return (edit.map { [$0] } ?? [], edit != nil)
            }
            return boolResponse(deleted)
        case .setReplication:
            let request = try call.request(Strata_Wire_SetReplicationRequest.self)
            let caller = try caller(call)
            let changed = try await mutate("set replication", path: request.path) { (state) throws(RemoteException) in
                let edit = try state.namespace.prepareSetReplication(request.path, replication: Int(request.replication), caller: caller)
                return (edit.map { [$0] } ?? [], edit != nil)
            }
            return boolResponse(changed)
        case .setPermission:
            let request = try call.request(Strata_Wire_SetPermissionRequest.self)
            let caller = try caller(call)
            try await mutate("set permission", path: request.path) { (state) throws(RemoteException) in
                ([try state.namespace.prepareSetPermission(request.path, permission: UInt16(truncatingIfNeeded: request.permission), caller: caller)], ())
            }
            return Strata_Wire_Empty()
        case .setOwner:
            let request = try call.request(Strata_Wire_SetOwnerRequest.self)
            let caller = try caller(call)
            try await mutate("set owner", path: request.path) { (state) throws(RemoteException) in
                ([try state.namespace.prepareSetOwner(request.path, owner: request.owner, group: request.group, caller: caller)], ())
            }
            return Strata_Wire_Empty()
        case .setTimes:
            let request = try call.request(Strata_Wire_SetTimesRequest.self)
            let caller = try caller(call)
            try await mutate("set times", path: request.path) { (state) throws(RemoteException) in
                ([try state.namespace.prepareSetTimes(
                    request.path, modificationTime: request.modificationTimeMs, accessTime: request.accessTimeMs, caller: caller)], ())
            }
            return Strata_Wire_Empty()
        case .reportBadBlocks:
            let request = try call.request(Strata_Wire_ReportBadBlocksRequest.self)
            state.withLock { state in
                for replica in request.replicas {
                    // A report about an older generation of the block (a reader that raced an
                    // append or a recovery) says nothing about the replica as it is now.
                    if let record = state.namespace.block(replica.block.blockID), replica.block.generationStamp != 0,
                        replica.block.generationStamp < record.generationStamp
                    {
                        continue
                    }
                    logger.warning("replica reported corrupt", metadata: [
                        "block": "\(replica.block.blockID)", "node": "\(replica.nodeID)", "reason": "\(replica.reason)"])
                    state.blockManager.markCorrupt(replica.block.blockID, nodeId: replica.nodeID)
                }
                state.replicationScanNeeded = true
            }
            return Strata_Wire_Empty()

        // Data nodes.
        case .registerDatanode:
            return try registerDatanode(try call.request())
        case .blockReport:
            return try await blockReport(try call.request())
        case .blockReceivedAndDeleted:
            return try incrementalBlockReport(try call.request())
        case .safeMode:
            return try safeMode(try call.request(), caller: try caller(call))
        case .setAdminState:
            return try setAdminState(try call.request(), caller: try caller(call))
        default:
            throw RemoteException(.rpcNoSuchMethod, "Unknown method \(call.methodName) called on the name node protocol.")
        }
    }

    /// Answers calls that only read (or briefly update) in-memory state, right on the event
    /// loop that received them: no task is started, so lookups like `getFileInfo` cost one lock
    /// and one write. Returns nil for calls that need `handle`.
    func handleInline(_ call: RPCCall) throws -> (any SwiftProtobuf.Message)? {
        switch call.method {
        case .getFileInfo:
            let request = try call.request(Strata_Wire_PathRequest.self)
            let caller = try caller(call)
            var response = Strata_Wire_GetFileInfoResponse()
            if let status = try state.withLock({ (state) throws(RemoteException) in try state.namespace.status(request.path, caller: caller) }) {
                response.status = status
            }
            return response
        case .getListing:
            let request = try call.request(Strata_Wire_GetListingRequest.self)
            let caller = try caller(call)
            let limit = request.limit == 0 ? Limits.listingBatchSize : min(Int(request.limit), Limits.listingBatchSize)
            let listing = try state.withLock { (state) throws(RemoteException) in
                try state.namespace.listing(request.path, startAfter: request.startAfter, limit: limit, caller: caller)
            }
            var response = Strata_Wire_GetListingResponse()
            response.status = listing.status
            response.entries = listing.entries
            response.remaining = UInt32(listing.remaining)
            return response
        case .getBlockLocations:
            return try getBlockLocations(try call.request(), caller: try caller(call))
        case .getServerDefaults:
            var defaults = Strata_Wire_ServerDefaults()
            defaults.blockSize = configuration.defaultBlockSize
            defaults.replication = UInt32(configuration.defaultReplication)
            defaults.rawFrameSize = UInt32(configuration.rawFrameSize)
            defaults.superuser = configuration.superuser
            defaults.umask = UInt32(configuration.umask)
            return defaults
        case .renewLease:
            let now = clock.now
            state.withLock { $0.leases.renew(call.header.clientName, now: now) }
            return Strata_Wire_Empty()
        case .sendHeartbeat:
            return heartbeat(try call.request())
        default:
            return nil
        }
    }

    func boolResponse(_ value: Bool) -> Strata_Wire_BoolResponse {
        var response = Strata_Wire_BoolResponse()
        response.result = value
        return response
    }

    func requireClientName(_ call: RPCCall) throws(RemoteException) -> String {
        guard !call.header.clientName.isEmpty else {
            throw RemoteException.illegalArgument("\(call.methodName) needs a client name")
        }
        return call.header.clientName
    }

    // MARK: - Write path

    func addBlock(_ request: Strata_Wire_AddBlockRequest, clientName: String) async throws -> Strata_Wire_AddBlockResponse {
        // A writer may ask for its next block as soon as it sent the previous one's last packet
        // (hdfs-native does), before the data node's report of it arrives: wait for the report
        // as `complete` does, rather than answer NotReplicatedYetException at once.
        if request.hasPrevious {
            _ = try await waitForFinishedReplica(request.previous, path: request.path, fileId: request.fileID, clientName: clientName)
        }
        var generator = SystemRandomNumberGenerator()
        let located = try await mutate("add block", path: request.path) { (state) throws(RemoteException) -> ([Edit], Strata_Wire_LocatedBlock) in
            let path = state.namespace.currentPath(request.path, fileId: request.fileID, clientName: clientName)
            let edit = try state.namespace.prepareAddBlock(path, clientName: clientName, previous: request.hasPrevious ? request.previous : nil)
            // The previous block must have a finished replica before the file moves on (HDFS
            // NotReplicatedYetException).
            if edit.addBlock.hasPrevious {
                let previous = edit.addBlock.previous
                let known = state.namespace.block(previous.blockID)
                if known?.isComplete == false
                    && !state.blockManager.hasFinishedReplica(previous.blockID, generationStamp: previous.generationStamp, numBytes: previous.numBytes)
                {
                    throw RemoteException(.notReplicatedYet, "Not replicated yet: block \(previous.blockID) of \(path)")
                }
            }
            let file = try state.namespace.openFile(path, clientName: clientName)
            let node = state.namespace.inode(file.index)
            let excluded = Set(request.excludeNodeIds.compactMap { state.blockManager.index(ofNode: $0) })
            let writer = request.writerNodeID.isEmpty ? nil : state.blockManager.index(ofNode: request.writerNodeID)
            let targets = state.blockManager.chooseTargets(
                count: Int(node.replication), writer: writer, excluding: excluded, requiredBytes: node.blockSize, using: &generator)
            guard !targets.isEmpty else {
                throw RemoteException.io(
                    "File \(file.path) could only be written to 0 of the 1 minReplication nodes. There are "
                        + "\(state.blockManager.liveNodeCount) datanode(s) running and \(excluded.count) node(s) are excluded in this operation.")
            }
            state.pipelineTargets[edit.addBlock.block.blockID] = targets
            if edit.addBlock.hasPrevious { state.pipelineTargets[edit.addBlock.previous.blockID] = nil }
            state.leases.renew(clientName, now: clock.now)
            var located = Strata_Wire_LocatedBlock()
            located.block.blockID = edit.addBlock.block.blockID
            located.block.generationStamp = edit.addBlock.block.generationStamp
            // The file's length once the previous block takes the length the writer reached.
            located.offset = state.namespace.fileLength(node)
            if edit.addBlock.hasPrevious {
                let recorded = state.namespace.block(edit.addBlock.previous.blockID)?.numBytes ?? 0
                located.offset = located.offset - recorded + edit.addBlock.previous.numBytes
            }
            located.locations = targets.map { state.blockManager.nodeInfo($0) }
            located.rawFrameSize = UInt32(configuration.rawFrameSize)
            return ([edit], located)
        }
        var response = Strata_Wire_AddBlockResponse()
        response.block = located
        return response
    }

    func complete(_ request: Strata_Wire_CompleteRequest, clientName: String) async throws -> Strata_Wire_BoolResponse {
        // The last block must have a finished replica; its data node reports it right after the
        // last packet, so wait for the report rather than make every writer poll.
        if request.hasLast,
            try await !waitForFinishedReplica(request.last, path: request.path, fileId: request.fileID, clientName: clientName)
        {
            return boolResponse(false)
        }
        let now = clock.wallTimeMs
        try await mutate("complete", path: request.path) { (state) throws(RemoteException) in
            let path = state.namespace.currentPath(request.path, fileId: request.fileID, clientName: clientName)
            let edit = try state.namespace.prepareComplete(path, clientName: clientName, last: request.hasLast ? request.last : nil, now: now)
            if request.hasLast { state.pipelineTargets[request.last.blockID] = nil }
            return (edit.map { [$0] } ?? [], ())
        }
        return boolResponse(true)
    }

    /// Waits (at most `finishedReplicaWaitMs`) until `block`, the block a writer ended, has a
    /// finished replica at its stamp and length, or needs none (complete already, or not the
    /// file's block as the writer says: the mutation that follows answers that). False on timeout.
    func waitForFinishedReplica(_ block: Strata_Wire_ExtendedBlock, path: String, fileId: UInt64, clientName: String) async throws -> Bool {
        let deadline = clock.now.advanced(byMilliseconds: configuration.finishedReplicaWaitMs)
        while true {
            let reportsSeen = replicaReports.count
            let ready: Bool = try state.withLock { (state) throws(RemoteException) in
                // Closed already (a retried complete), or a block the mutation refuses: go on.
                guard try state.namespace.openFileOrClosed(
                    state.namespace.currentPath(path, fileId: fileId, clientName: clientName), clientName: clientName) != nil,
                    let record = state.namespace.block(block.blockID), !record.isComplete,
                    record.generationStamp == block.generationStamp
                else { return true }
                return state.blockManager.hasFinishedReplica(block.blockID, generationStamp: block.generationStamp, numBytes: block.numBytes)
            }
            if ready { return true }
            if clock.now >= deadline { return false }
            await clock.wait(for: replicaReports, after: reportsSeen, until: deadline)
            try Task.checkCancellation()
        }
    }

    func append(_ request: Strata_Wire_AppendRequest, caller: Caller, clientName: String) async throws -> Strata_Wire_AppendResponse {
        try await takeBackIfAbandoned(request.path, clientName: clientName, operation: "APPEND_FILE")
        let now = clock.wallTimeMs
        let (path, lastBlock, previousStamp) = try await mutate("append", path: request.path) {
            (state) throws(RemoteException) -> ([Edit], (String, Strata_Wire_LocatedBlock?, UInt64)) in
            let edit = try state.namespace.prepareAppend(request.path, clientName: clientName, caller: caller, now: now)
            state.leases.renew(clientName, now: clock.now)
            var located: Strata_Wire_LocatedBlock?
            var previousStamp: UInt64 = 0
            if edit.reopenFile.hasLast {
                let last = edit.reopenFile.last
                // The edit is not applied yet: the record still has the stamp the replicas have.
                previousStamp = state.namespace.block(last.blockID)?.generationStamp ?? 0
                let nodes = state.blockManager.locations(of: last.blockID)
                guard !nodes.isEmpty else {
                    throw RemoteException.io("Failed to append to \(request.path): its last block \(last.blockID) has no live replica")
                }
                var block = Strata_Wire_LocatedBlock()
                block.block.blockID = last.blockID
                block.block.generationStamp = last.generationStamp
                block.block.numBytes = last.numBytes
                block.locations = nodes.map { state.blockManager.nodeInfo($0) }
                block.rawFrameSize = UInt32(configuration.rawFrameSize)
                state.pipelineTargets[last.blockID] = nodes
                located = block
            }
            return ([edit], (edit.reopenFile.path, located, previousStamp))
        }
        var response = Strata_Wire_AppendResponse()
        response.previousGenerationStamp = previousStamp
        if let status = try state.withLock({ (state) throws(RemoteException) in try state.namespace.status(path, caller: caller) }) {
            response.status = status
        }
        if var lastBlock {
            lastBlock.offset = response.status.length - lastBlock.block.numBytes
            response.lastBlock = lastBlock
        }
        return response
    }

    // MARK: - Read path

    func getBlockLocations(_ request: Strata_Wire_GetBlockLocationsRequest, caller: Caller) throws -> Strata_Wire_LocatedBlocks {
        try state.withLock { (state) throws(RemoteException) in
            let list = try state.namespace.blockList(request.path, caller: caller)
            let reader = request.readerNodeID.isEmpty ? nil : state.blockManager.index(ofNode: request.readerNodeID)
            var response = Strata_Wire_LocatedBlocks()
            response.fileLength = list.length
            response.underConstruction = list.underConstruction
            let end = request.length == 0 ? UInt64.max : request.offset &+ request.length
            for entry in list.blocks {
                let blockEnd = entry.offset + entry.record.numBytes
                let isOpenLast = !entry.record.isComplete
                guard isOpenLast || (blockEnd > request.offset && entry.offset < end) else { continue }
                var located = Strata_Wire_LocatedBlock()
                located.block.blockID = entry.id
                // An open last block's replicas may still carry the stamp from before an append
                // (a complete block's oldest valid stamp is its stamp); a data node serves a
                // replica of the stamp asked for or newer.
                located.block.generationStamp = entry.record.oldestValidStamp
                located.block.numBytes = entry.record.numBytes
                located.offset = entry.offset
                located.rawFrameSize = UInt32(configuration.rawFrameSize)
                var nodes = state.blockManager.locations(of: entry.id, reader: reader)
                if isOpenLast, nodes.isEmpty, let targets = state.pipelineTargets[entry.id] {
                    let damaged = state.blockManager.corrupt[entry.id] ?? []
                    nodes = targets.filter { state.blockManager.nodes[Int($0)].isAlive && !damaged.contains($0) }
                }
                located.locations = nodes.map { state.blockManager.nodeInfo($0) }
                located.corrupt = state.blockManager.isCorrupt(entry.id)
                if isOpenLast {
                    response.lastBlock = located
                    response.lastBlockComplete = false
                } else {
                    response.blocks.append(located)
                }
            }
            return response
        }
    }

    // MARK: - Data nodes

    func registerDatanode(_ request: Strata_Wire_RegisterRequest) throws -> Strata_Wire_RegisterResponse {
        // Replicas of another namespace would clash with this one's block ids.
        guard request.namespaceID.isEmpty || request.namespaceID == namespaceId else {
            logger.error("data node of another namespace refused", metadata: [
                "node": "\(request.node.nodeID)", "address": "\(request.node.ipAddress):\(request.node.transferPort)",
                "its namespace": "\(request.namespaceID)", "namespace": "\(namespaceId)"])
            throw RemoteException(
                .inconsistentNamespace,
                "Incompatible namespace ids: the data node's replicas belong to namespace \(request.namespaceID), this name node serves \(namespaceId)")
        }
        let now = clock.now
        state.withLock { state in
            let index = state.blockManager.register(request.node, now: now)
            logger.info("data node registered", metadata: [
                "node": "\(request.node.nodeID)", "address": "\(request.node.ipAddress):\(request.node.transferPort)", "index": "\(index)"])
        }
        clusterStateChanges.signal()
        var response = Strata_Wire_RegisterResponse()
        response.namespaceID = namespaceId
        response.heartbeatIntervalMs = configuration.blockManager.heartbeatIntervalMs
        response.blockReportIntervalMs = configuration.blockManager.blockReportIntervalMs
        return response
    }

    func heartbeat(_ request: Strata_Wire_HeartbeatRequest) -> Strata_Wire_HeartbeatResponse {
        let now = clock.now
        var response = Strata_Wire_HeartbeatResponse()
        let command = state.withLock { state -> Strata_Wire_DatanodeCommand? in
            guard var command = state.blockManager.heartbeat(request, now: now) else { return nil }
            command.recoverBlocks = state.leases.takeCommands(for: request.nodeID)
            return command
        }
        if let command {
            response.command = command
        } else {
            response.command.reregister = true
        }
        return response
    }

    /// A full block report, `scanChunkBlockIds` replicas per hold of the lock, then a sweep of
    /// every block id, as many per hold, that forgets the node's replicas the report left out.
    /// Reads, heartbeats and the node's incremental reports go on between chunks; a later full
    /// report of the node replaces this one (which then answers at once: the later one does the
    /// work). The call returns once the report is processed, or fails when the node died or
    /// registered again meanwhile.
    func blockReport(_ request: Strata_Wire_BlockReportRequest) async throws -> Strata_Wire_Empty {
        let chunk = max(1, configuration.scanChunkBlockIds)
        let ticket = try state.withLock { (state) throws(RemoteException) in
            guard let node = state.blockManager.index(ofNode: request.nodeID) else {
                throw RemoteException(.unregisteredNode, "data node \(request.nodeID) is not registered")
            }
            guard state.blockManager.nodes[Int(node)].isAlive else {
                throw RemoteException(.unregisteredNode, "data node \(request.nodeID) is dead: it must register again")
            }
            return state.blockManager.beginBlockReport(node: node)
        }
        func stop(_ status: BlockManager.BlockReportStatus) throws(RemoteException) -> Strata_Wire_Empty {
            guard status == .abandoned else { return Strata_Wire_Empty() }
            throw RemoteException(
                .unregisteredNode, "the block report of data node \(request.nodeID) was abandoned: the node died or registered again")
        }
        var position = 0
        while position < request.blocks.count {
            let end = min(position + chunk, request.blocks.count)
            let status = state.withLock { state in
                let namespace = state.namespace
                return state.blockManager.processBlockReportChunk(request.blocks[position..<end], of: ticket) { namespace.block($0) }
            }
            guard status == .current else { return try stop(status) }
            // A writer's `complete` may be waiting for a replica this chunk brought.
            replicaReports.signal()
            position = end
            await Task.yield()
        }
        var next = Namespace.firstBlockId
        while true {
            let (status, finished) = state.withLock { state in
                let end = min(next + UInt64(chunk), state.namespace.nextBlockId)
                let status = state.blockManager.sweepBlockReportChunk(next..<max(next, end), of: ticket)
                next = max(next, end)
                guard status == .current, next >= state.namespace.nextBlockId else { return (status, false) }
                state.replicationScanNeeded = true
                return (state.blockManager.finishBlockReport(ticket), true)
            }
            guard status == .current else { return try stop(status) }
            if finished {
                replicaReports.signal()
                clusterStateChanges.signal()
                return Strata_Wire_Empty()
            }
            await Task.yield()
        }
    }

    func incrementalBlockReport(_ request: Strata_Wire_IncrementalBlockReportRequest) throws -> Strata_Wire_Empty {
        try state.withLock { (state) throws(RemoteException) in
            guard let node = state.blockManager.index(ofNode: request.nodeID) else {
                throw RemoteException(.unregisteredNode, "data node \(request.nodeID) is not registered")
            }
            let namespace = state.namespace
            state.blockManager.processIncrementalReport(received: request.received, deleted: request.deleted, node: node) {
                namespace.block($0)
            }
            state.replicationScanNeeded = true
        }
        replicaReports.signal()
        return Strata_Wire_Empty()
    }

    /// Totals of a subtree (HDFS getContentSummary), `subtreeChunkInodes` inodes per hold of the
    /// lock (HDFS `dfs.content-summary.limit`): a big subtree does not hold up other calls.
    func contentSummary(_ request: Strata_Wire_PathRequest, caller: Caller) async throws -> Strata_Wire_ContentSummary {
        let chunk = max(1, configuration.subtreeChunkInodes)
        var summary = Strata_Wire_ContentSummary()
        summary.quota = -1
        summary.spaceQuota = -1
        var walk: SubtreeWalk?
        while true {
            let goesOn = try state.withLock { (state) throws(RemoteException) -> Bool in
                if walk == nil { walk = try state.namespace.beginWalk(request.path, caller: caller) }
                let blockManager = state.blockManager
                return try state.namespace.addToContentSummary(&summary, walk: &walk!, limit: chunk, caller: caller) {
                    blockManager.storedBytes(of: $0)
                }
            }
            guard goesOn else { return summary }
            await Task.yield()
        }
    }

    func safeMode(_ request: Strata_Wire_PathRequest, caller: Caller) throws -> Strata_Wire_BoolResponse {
        // The path field carries the action: get, enter or leave.
        let action = request.path
        defer { if action != "get" { clusterStateChanges.signal() } }
        return try state.withLock { (state) throws(RemoteException) in
            if action != "get" && !(caller.user == configuration.superuser || caller.groups.contains(configuration.supergroup)) {
                throw RemoteException.accessDenied("Access denied for user \(caller.user). Superuser privilege is required")
            }
            switch action {
            case "get": break
            case "enter": state.safeMode.set(manual: true)
            case "leave": state.safeMode.set(manual: false)
            default: throw RemoteException.illegalArgument("safe mode action must be get, enter or leave")
            }
            return boolResponse(state.safeMode.isOn)
        }
    }
}

extension Namespace {
    /// Like `openFile`, but a file already closed is fine (a retried `complete`).
    func openFileOrClosed(_ path: String, clientName: String) throws(RemoteException) -> UInt32? {
        let resolution = try resolve(path)
        if let target = resolution.target, writers[target] == nil, !inodes[Int(target)].isDirectory { return nil }
        return try openFile(path, clientName: clientName).index
    }
}
