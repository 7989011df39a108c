import Foundation
import NIOCore
import StrataCore
import StrataHadoopWire
import StrataWire
import SwiftProtobuf

/// ClientProtocol's file data path over Hadoop RPC: block locations, and the write path (create,
/// addBlock, complete, append, pipeline recovery, fsync, lease recovery) that a client runs
/// against the name node while it streams the bytes to the data nodes. As for the namespace
/// calls, each method becomes the Strata call that does the same, through the same dispatch.
///
/// Blocks carry the block pool id `BP-<namespace id>`: Strata has one block pool per namespace.
/// Replicas are located by data node; each node has one storage, whose id is `DS-<node id>`, of
/// type DISK. Block tokens are empty (simple authentication).
extension NameNode {
    /// The block pool id Hadoop clients see in every block: one pool per namespace, named after
    /// the namespace id so it stays the same across restarts.
    var hadoopBlockPoolId: String { "BP-\(namespaceId)" }

    /// HDFS's CreateFlag bits (CreateFlagProto).
    enum HadoopCreateFlag {
        static let create: UInt32 = 0x01
        static let overwrite: UInt32 = 0x02
        static let append: UInt32 = 0x04
        static let newBlock: UInt32 = 0x20
    }

    /// The file data calls answered on the event loop (reads under the lock); nil for others.
    func handleHadoopFileDataInline(_ call: HadoopRPCCall) throws -> (any SwiftProtobuf.Message)? {
        switch call.methodName {
        case "getBlockLocations":
            let request = try call.request(Hadoop_Hdfs_GetBlockLocationsRequestProto.self)
            var response = Hadoop_Hdfs_GetBlockLocationsResponseProto()
            response.locations = try hadoopLocatedBlocks(request.src, offset: request.offset, length: request.length, call)
            return response
        case "getLocatedFileInfo":
            let request = try call.request(Hadoop_Hdfs_GetLocatedFileInfoRequestProto.self)
            var response = Hadoop_Hdfs_GetLocatedFileInfoResponseProto()
            if var status = try fileStatus(request.src, call) {
                if status.fileType == .isFile {
                    status.locations = try hadoopLocatedBlocks(request.src, offset: 0, length: UInt64(Int64.max), call)
                }
                response.fs = status
            }
            return response
        case "getPreferredBlockSize":
            let request = try call.request(Hadoop_Hdfs_GetPreferredBlockSizeRequestProto.self)
            guard let status = try fileStatus(request.filename, call) else { throw RemoteException.fileNotFound(request.filename) }
            guard status.fileType == .isFile else {
                throw RemoteException(.fileNotFound, "Path is not a file: \(request.filename)")
            }
            var response = Hadoop_Hdfs_GetPreferredBlockSizeResponseProto()
            response.bsize = status.blocksize
            return response
        case "isFileClosed":
            let request = try call.request(Hadoop_Hdfs_IsFileClosedRequestProto.self)
            var path = Strata_Wire_PathRequest()
            path.path = request.src
            let info = try strataInline(.getFileInfo, path, call, as: Strata_Wire_GetFileInfoResponse.self)
            guard info.hasStatus else { throw RemoteException.fileNotFound(request.src) }
            guard info.status.kind == .file else { throw RemoteException(.fileNotFound, "Path is not a file: \(request.src)") }
            var response = Hadoop_Hdfs_IsFileClosedResponseProto()
            response.result = !info.status.underConstruction
            return response
        case "getAdditionalDatanode":
            return try additionalDatanodes(try call.request(), call)
        default:
            return nil
        }
    }

    /// The file data calls that change the namespace; nil for a method this file does not serve.
    func handleHadoopFileData(_ call: HadoopRPCCall) async throws -> (any SwiftProtobuf.Message)? {
        switch call.methodName {
        case "create":
            return try await hadoopCreate(try call.request(), call)
        case "addBlock":
            let request = try call.request(Hadoop_Hdfs_AddBlockRequestProto.self)
            var response = Hadoop_Hdfs_AddBlockResponseProto()
            if let allocated = blockAllocatedBefore(request) {
                response.block = hadoopLocatedBlock(allocated)
                return response
            }
            var add = Strata_Wire_AddBlockRequest()
            add.path = request.src
            add.fileID = request.fileID
            if request.hasPrevious {
                add.previous = Self.strataBlock(request.previous)
            } else if let last = fullLastBlock(request.src, fileId: request.fileID, clientName: request.clientName) {
                // An append that starts at a block boundary names no previous block (HDFS's
                // "case 1" of addBlock): the file's full, complete last block is the previous one.
                add.previous = last
            }
            add.excludeNodeIds = request.excludeNodes.map(\.id.datanodeUuid)
            // NO_LOCAL_WRITE and IGNORE_CLIENT_LOCALITY: no replica goes first to the writer's node.
            if request.flags.isEmpty { add.writerNodeID = writerNode(favoredNodes: request.favoredNodes, call) ?? "" }
            let answer = try await strata(.addBlock, add, call, clientName: request.clientName, as: Strata_Wire_AddBlockResponse.self)
            response.block = hadoopLocatedBlock(answer.block)
            return response
        case "complete":
            // Strata's complete waits (boundedly) for the last block's finished replica, and
            // answers false if none came: the client calls again, as with HDFS.
            let request = try call.request(Hadoop_Hdfs_CompleteRequestProto.self)
            var complete = Strata_Wire_CompleteRequest()
            complete.path = request.src
            complete.fileID = request.fileID
            if request.hasLast { complete.last = Self.strataBlock(request.last) }
            var response = Hadoop_Hdfs_CompleteResponseProto()
            response.result = try await strata(
                .complete, complete, call, clientName: request.clientName, as: Strata_Wire_BoolResponse.self
            ).result
            return response
        case "abandonBlock":
            let request = try call.request(Hadoop_Hdfs_AbandonBlockRequestProto.self)
            var abandon = Strata_Wire_AbandonBlockRequest()
            abandon.path = request.src
            abandon.fileID = request.fileID
            abandon.block = Self.strataBlock(request.b)
            _ = try await strata(.abandonBlock, abandon, call, clientName: request.holder, as: Strata_Wire_Empty.self)
            return Hadoop_Hdfs_AbandonBlockResponseProto()
        case "append":
            return try await hadoopAppend(try call.request(), call)
        case "updateBlockForPipeline":
            let request = try call.request(Hadoop_Hdfs_UpdateBlockForPipelineRequestProto.self)
            var update = Strata_Wire_UpdateBlockForPipelineRequest()
            update.block = Self.strataBlock(request.block)
            (update.path, update.fileID) = try fileOfBlock(request.block.blockID)
            let answer = try await strata(
                .updateBlockForPipeline, update, call, clientName: request.clientName, as: Strata_Wire_UpdateBlockForPipelineResponse.self)
            // HDFS answers the block with its new stamp, no locations and an offset of -1.
            var located = Hadoop_Hdfs_LocatedBlockProto()
            located.b = hadoopBlock(answer.block)
            located.offset = UInt64(bitPattern: -1)
            located.corrupt = false
            located.blockToken = Self.emptyBlockToken
            var response = Hadoop_Hdfs_UpdateBlockForPipelineResponseProto()
            response.block = located
            return response
        case "updatePipeline":
            let request = try call.request(Hadoop_Hdfs_UpdatePipelineRequestProto.self)
            var update = Strata_Wire_UpdatePipelineRequest()
            update.oldBlock = Self.strataBlock(request.oldBlock)
            update.newBlock = Self.strataBlock(request.newBlock)
            update.nodeIds = request.newNodes.map(\.datanodeUuid)
            (update.path, update.fileID) = try fileOfBlock(request.oldBlock.blockID)
            _ = try await strata(.updatePipeline, update, call, clientName: request.clientName, as: Strata_Wire_Empty.self)
            return Hadoop_Hdfs_UpdatePipelineResponseProto()
        case "recoverLease":
            let request = try call.request(Hadoop_Hdfs_RecoverLeaseRequestProto.self)
            var path = Strata_Wire_PathRequest()
            path.path = request.src
            var response = Hadoop_Hdfs_RecoverLeaseResponseProto()
            response.result = try await strata(
                .recoverLease, path, call, clientName: request.clientName, as: Strata_Wire_BoolResponse.self
            ).result
            return response
        case "fsync":
            try await hadoopFsync(try call.request())
            return Hadoop_Hdfs_FsyncResponseProto()
        case "truncate":
            return try await hadoopTruncate(try call.request(), call)
        case "concat":
            let request = try call.request(Hadoop_Hdfs_ConcatRequestProto.self)
            var concat = Strata_Wire_ConcatRequest()
            concat.target = request.trg
            concat.sources = request.srcs
            _ = try await strata(.concat, concat, call, as: Strata_Wire_Empty.self)
            return Hadoop_Hdfs_ConcatResponseProto()
        case "reportBadBlocks":
            let request = try call.request(Hadoop_Hdfs_ReportBadBlocksRequestProto.self)
            var report = Strata_Wire_ReportBadBlocksRequest()
            report.replicas = request.blocks.flatMap { located in
                located.locs.map { location in
                    var replica = Strata_Wire_ReportBadBlocksRequest.BadReplica()
                    replica.block = Self.strataBlock(located.b)
                    replica.nodeID = location.id.datanodeUuid
                    replica.reason = "reported by a Hadoop client of user \(call.user)"
                    return replica
                }
            }
            _ = try await strata(.reportBadBlocks, report, call, as: Strata_Wire_Empty.self)
            return Hadoop_Hdfs_ReportBadBlocksResponseProto()
        case "setSafeMode":
            let request = try call.request(Hadoop_Hdfs_SetSafeModeRequestProto.self)
            var action = Strata_Wire_PathRequest()
            action.path = switch request.action {
            case .safemodeGet: "get"
            case .safemodeEnter: "enter"
            case .safemodeLeave, .safemodeForceExit: "leave"
            }
            var response = Hadoop_Hdfs_SetSafeModeResponseProto()
            response.result = try await strata(.safeMode, action, call, as: Strata_Wire_BoolResponse.self).result
            return response
        default:
            return nil
        }
    }

    // MARK: - Calls

    /// HDFS `create`: without CREATE the file must exist; an existing file is replaced only with
    /// OVERWRITE (else FileAlreadyExistsException, even with APPEND, as HDFS's name node answers).
    func hadoopCreate(_ request: Hadoop_Hdfs_CreateRequestProto, _ call: HadoopRPCCall) async throws -> Hadoop_Hdfs_CreateResponseProto {
        if request.createFlag & HadoopCreateFlag.create == 0, try fileStatus(request.src, call) == nil {
            throw RemoteException(.fileNotFound, "Can't overwrite non-existent \(request.src)")
        }
        var create = Strata_Wire_CreateRequest()
        create.path = request.src
        create.permission = request.masked.perm
        create.overwrite = request.createFlag & HadoopCreateFlag.overwrite != 0
        create.createParent = request.createParent
        create.replication = request.replication
        create.blockSize = request.blockSize
        let created = try await strata(.create, create, call, clientName: request.clientName, as: Strata_Wire_CreateResponse.self)
        var response = Hadoop_Hdfs_CreateResponseProto()
        if created.hasStatus { response.fs = Self.hadoopStatus(created.status, name: "") }
        return response
    }

    /// HDFS `append`: the file's status and, when its last block has room, that block (with the
    /// generation stamp the append gives it: Strata's name node records the new stamp at once,
    /// and the replicas take it when the append pipeline reopens them).
    func hadoopAppend(_ request: Hadoop_Hdfs_AppendRequestProto, _ call: HadoopRPCCall) async throws -> Hadoop_Hdfs_AppendResponseProto {
        if request.flag & HadoopCreateFlag.newBlock != 0 {
            throw RemoteException(
                .unsupportedOperation,
                "Failed to append to \(request.src): Strata continues the last block; appending to a new block is not supported")
        }
        var append = Strata_Wire_AppendRequest()
        append.path = request.src
        let answer = try await strata(.append, append, call, clientName: request.clientName, as: Strata_Wire_AppendResponse.self)
        var response = Hadoop_Hdfs_AppendResponseProto()
        response.stat = Self.hadoopStatus(answer.status, name: "")
        if answer.hasLastBlock { response.block = hadoopLocatedBlock(answer.lastBlock) }
        return response
    }

    /// HDFS `fsync` (hflush/hsync with UPDATE_LENGTH): the writer must hold the lease; a length
    /// it reports for the block being written is recorded (only ever growing), so readers and
    /// `getFileInfo` see it and a restart keeps it.
    func hadoopFsync(_ request: Hadoop_Hdfs_FsyncRequestProto) async throws {
        guard !request.client.isEmpty else { throw RemoteException.illegalArgument("fsync needs a client name") }
        let now = clock.now
        try await mutate("fsync", path: request.src) { (state) throws(RemoteException) -> ([Edit], Void) in
            let path = state.namespace.currentPath(request.src, fileId: request.fileID, clientName: request.client)
            let file = try state.namespace.openFile(path, clientName: request.client)
            state.leases.renew(request.client, now: now)
            guard request.lastBlockLength > 0, let lastId = state.namespace.inode(file.index).blocks.last,
                let record = state.namespace.blocks[lastId], !record.isComplete, UInt64(request.lastBlockLength) > record.numBytes
            else { return ([], ()) }
            var update = Strata_Journal_UpdateBlock()
            update.path = file.path
            update.block.blockID = lastId
            update.block.generationStamp = record.generationStamp
            update.block.numBytes = UInt64(request.lastBlockLength)
            var edit = Edit()
            edit.updateBlock = update
            return ([edit], ())
        }
    }

    /// Cuts a closed file inside a block as the given user (`path`, `newLength`, `user`) and
    /// answers HDFS truncate's result: the kept bytes of the cut block are copied into a new
    /// block, which Strata does on the client side (`DFSClient.truncate`).
    public typealias TruncateInsideBlock = @Sendable (_ path: String, _ newLength: UInt64, _ user: String) async throws -> Bool

    /// Installs how Hadoop RPC's truncate cuts inside a block: the service that runs the name
    /// node gives it a DFS client of this name node (as WebHDFS TRUNCATE uses). Without one,
    /// such a cut is refused with UnsupportedOperationException.
    public func setTruncateInsideBlock(_ truncate: TruncateInsideBlock?) {
        truncateInsideBlock.withLock { $0 = truncate }
    }

    /// HDFS `truncate`. At a block boundary (or the file's length) the file is cut at once. A
    /// cut inside a block is done by copying the kept bytes into a new block that replaces the
    /// cut one (`setTruncateInsideBlock`). Either way the file has its new length when the call
    /// returns, and the answer is true (HDFS's false, "block recovery still running", does not
    /// arise).
    func hadoopTruncate(_ request: Hadoop_Hdfs_TruncateRequestProto, _ call: HadoopRPCCall) async throws -> Hadoop_Hdfs_TruncateResponseProto {
        guard request.newLength <= UInt64(Int64.max) else {
            throw RemoteException(.hadoopIllegalArgument, "Cannot truncate to a negative file size: \(Int64(bitPattern: request.newLength)).")
        }
        guard !request.clientName.isEmpty else { throw RemoteException.illegalArgument("truncate needs a client name") }
        var locations = Strata_Wire_GetBlockLocationsRequest()
        locations.path = request.src
        let located = try strataInline(.getBlockLocations, locations, call, as: Strata_Wire_LocatedBlocks.self)
        var response = Hadoop_Hdfs_TruncateResponseProto()
        if !located.underConstruction,
            let cut = located.blocks.first(where: { $0.offset < request.newLength && request.newLength < $0.offset + $0.block.numBytes })
        {
            guard let truncate = truncateInsideBlock.withLock({ $0 }) else {
                let boundaries = located.blocks.map { "\($0.offset)" }.joined(separator: ", ")
                throw RemoteException(
                    .unsupportedOperation,
                    "Cannot truncate \(request.src) to \(request.newLength) over Hadoop RPC: the new length falls inside block "
                        + "\(cut.block.blockID); truncate at a block boundary (\(boundaries), \(located.fileLength)) or use WebHDFS TRUNCATE")
            }
            response.result = try await truncate(request.src, request.newLength, call.user)
            return response
        }
        var truncate = Strata_Wire_TruncateRequest()
        truncate.path = request.src
        truncate.newLength = request.newLength
        response.result = try await strata(.truncate, truncate, call, clientName: request.clientName, as: Strata_Wire_BoolResponse.self).result
        return response
    }

    /// HDFS `getAdditionalDatanode` (a writer replacing a failed node of its pipeline): up to
    /// `numAdditionalNodes` more nodes for the block being written, none of the existing or
    /// excluded ones, chosen as `addBlock` chooses. The answer lists the existing nodes, then the
    /// new ones. Nothing changes in the namespace: `updatePipeline` records the new pipeline.
    func additionalDatanodes(
        _ request: Hadoop_Hdfs_GetAdditionalDatanodeRequestProto, _ call: HadoopRPCCall
    ) throws -> Hadoop_Hdfs_GetAdditionalDatanodeResponseProto {
        guard !request.clientName.isEmpty else { throw RemoteException.illegalArgument("getAdditionalDatanode needs a client name") }
        let wanted = Int(min(request.numAdditionalNodes, UInt32(Limits.maximumReplication)))
        var generator = SystemRandomNumberGenerator()
        let chosen = try state.withLock { (state) throws(RemoteException) -> [Strata_Wire_DatanodeInfo] in
            if state.safeMode.isOn {
                throw RemoteException(
                    .safeMode, "Cannot add datanode; src=\(request.src), blk=\(request.blk.blockID). Name node is in safe mode.")
            }
            let path = state.namespace.currentPath(request.src, fileId: request.fileID, clientName: request.clientName)
            let current = try state.namespace.blockBeingWritten(path, clientName: request.clientName, block: Self.strataBlock(request.blk))
            let excluded = Set((request.existings + request.excludes).compactMap { state.blockManager.index(ofNode: $0.id.datanodeUuid) })
            let targets = state.blockManager.chooseTargets(
                count: wanted, writer: nil, excluding: excluded, requiredBytes: state.namespace.inode(current.index).blockSize,
                using: &generator)
            return targets.map { state.blockManager.nodeInfo($0) }
        }
        var located = Hadoop_Hdfs_LocatedBlockProto()
        located.b = request.blk
        located.offset = UInt64(bitPattern: -1)
        located.corrupt = false
        located.blockToken = Self.emptyBlockToken
        located.locs = request.existings + chosen.map(Self.hadoopDatanodeInfo)
        located.isCached = located.locs.map { _ in false }
        located.storageTypes = located.locs.map { _ in .disk }
        let existingStorage = request.existingStorageUuids.count == request.existings.count
            ? request.existingStorageUuids : request.existings.map { Self.hadoopStorageId($0.id.datanodeUuid) }
        located.storageIds = existingStorage + chosen.map { Self.hadoopStorageId($0.nodeID) }
        var response = Hadoop_Hdfs_GetAdditionalDatanodeResponseProto()
        response.block = located
        return response
    }

    // MARK: - Block locations

    /// A file's blocks as HDFS's getBlockLocations gives them: `fileLength` leaves out the last
    /// block while it is being written; `blocks` are those overlapping `offset..<offset+length`
    /// (the one being written included); `lastBlock` is the file's last block, with
    /// `isLastBlockComplete` telling whether it is finished. Replicas on the caller's node come first.
    func hadoopLocatedBlocks(_ path: String, offset: UInt64, length: UInt64, _ call: HadoopRPCCall) throws
        -> Hadoop_Hdfs_LocatedBlocksProto
    {
        // The fields are Java longs: values past Int64.max are negative numbers sent unsigned.
        guard offset <= UInt64(Int64.max) else {
            throw RemoteException(.hadoopIllegalArgument, "Negative offset is not supported. File: \(path)")
        }
        guard length <= UInt64(Int64.max) else {
            throw RemoteException(.hadoopIllegalArgument, "Negative length is not supported. File: \(path)")
        }
        var request = Strata_Wire_GetBlockLocationsRequest()
        request.path = path
        request.readerNodeID = nodeOnCallerHost(call) ?? ""
        let located = try strataInline(.getBlockLocations, request, call, as: Strata_Wire_LocatedBlocks.self)
        return hadoopLocatedBlocks(located, offset: offset, length: length)
    }

    /// Converts Strata's locations of every block of a file (`getBlockLocations` of the whole
    /// file) into HDFS's answer for a range, following HDFS's `createLocatedBlocks`.
    func hadoopLocatedBlocks(_ located: Strata_Wire_LocatedBlocks, offset: UInt64, length: UInt64) -> Hadoop_Hdfs_LocatedBlocksProto {
        var all = located.blocks
        if located.hasLastBlock { all.append(located.lastBlock) }
        var proto = Hadoop_Hdfs_LocatedBlocksProto()
        let beingWritten = located.hasLastBlock ? located.lastBlock.block.numBytes : 0
        proto.fileLength = located.fileLength - min(located.fileLength, beingWritten)
        proto.underConstruction = located.underConstruction
        proto.isLastBlockComplete = false
        proto.blocks = []
        guard let last = all.last else { return proto }
        // The first block holding `offset` (an empty first block: the file's first block), then
        // blocks until one ends at or past `offset + length`.
        var index = 0
        var position: UInt64 = 0
        if all[0].block.numBytes != 0 {
            while index < all.count, position + all[index].block.numBytes <= offset {
                position += all[index].block.numBytes
                index += 1
            }
        }
        if index < all.count {
            let (end, overflow) = offset.addingReportingOverflow(length)
            let rangeEnd = overflow ? UInt64.max : end
            repeat {
                proto.blocks.append(hadoopLocatedBlock(all[index]))
                position += all[index].block.numBytes
                index += 1
            } while position < rangeEnd && index < all.count
        }
        proto.lastBlock = hadoopLocatedBlock(last)
        proto.isLastBlockComplete = !located.hasLastBlock
        return proto
    }

    /// Locations for an entry of a listing with `needLocation`. An entry the caller may not
    /// read gets none (its status is still listed, as the listing itself is allowed).
    func hadoopListedLocations(_ path: String, length: UInt64, _ call: HadoopRPCCall) throws -> Hadoop_Hdfs_LocatedBlocksProto {
        do {
            return try hadoopLocatedBlocks(path, offset: 0, length: UInt64(Int64.max), call)
        } catch let error as RemoteException where error.exceptionClass == .accessControl {
            var proto = Hadoop_Hdfs_LocatedBlocksProto()
            proto.fileLength = length
            proto.underConstruction = false
            proto.isLastBlockComplete = false
            return proto
        }
    }

    func hadoopLocatedBlock(_ block: Strata_Wire_LocatedBlock) -> Hadoop_Hdfs_LocatedBlockProto {
        var proto = Hadoop_Hdfs_LocatedBlockProto()
        proto.b = hadoopBlock(block.block)
        proto.offset = block.offset
        proto.corrupt = block.corrupt
        proto.blockToken = Self.emptyBlockToken
        proto.locs = block.locations.map(Self.hadoopDatanodeInfo)
        proto.isCached = block.locations.map { _ in false }
        proto.storageTypes = block.locations.map { _ in .disk }
        proto.storageIds = block.locations.map { Self.hadoopStorageId($0.nodeID) }
        return proto
    }

    func hadoopBlock(_ block: Strata_Wire_ExtendedBlock) -> Hadoop_Hdfs_ExtendedBlockProto {
        var proto = Hadoop_Hdfs_ExtendedBlockProto()
        proto.poolID = hadoopBlockPoolId
        proto.blockID = block.blockID
        proto.generationStamp = block.generationStamp
        proto.numBytes = block.numBytes
        return proto
    }

    /// A block as Strata names it: by id alone (the pool id is not checked: one pool per namespace).
    static func strataBlock(_ proto: Hadoop_Hdfs_ExtendedBlockProto) -> Strata_Wire_ExtendedBlock {
        var block = Strata_Wire_ExtendedBlock()
        block.blockID = proto.blockID
        block.generationStamp = proto.generationStamp
        block.numBytes = proto.numBytes
        return block
    }

    /// The id of a data node's one storage.
    static func hadoopStorageId(_ nodeId: String) -> String { "DS-\(nodeId)" }

    /// Simple authentication: block tokens are empty (every field present, as the proto requires).
    static let emptyBlockToken: Hadoop_Common_TokenProto = {
        var token = Hadoop_Common_TokenProto()
        token.identifier = Data()
        token.password = Data()
        token.kind = ""
        token.service = ""
        return token
    }()

    // MARK: - Helpers

    /// The path and file id of the file a block belongs to (pipeline recovery names only the block).
    func fileOfBlock(_ blockId: UInt64) throws(RemoteException) -> (path: String, fileId: UInt64) {
        try state.withLock { (state) throws(RemoteException) in
            guard let record = state.namespace.blocks[blockId] else {
                throw RemoteException.io("Block blk_\(blockId) does not exist or is not under construction")
            }
            return (state.namespace.path(of: record.inode), UInt64(record.inode) + Namespace.firstFileId)
        }
    }

    /// The last block of a file `clientName` writes, when it is complete and full (a file
    /// reopened for append at a block boundary).
    func fullLastBlock(_ path: String, fileId: UInt64, clientName: String) -> Strata_Wire_ExtendedBlock? {
        state.withLock { state in
            let namespace = state.namespace
            let current = namespace.currentPath(path, fileId: fileId, clientName: clientName)
            guard let target = (try? namespace.resolve(current))?.target, namespace.writers[target] == clientName else { return nil }
            let node = namespace.inode(target)
            guard !node.isDirectory, let last = node.blocks.last, let record = namespace.blocks[last], record.isComplete,
                record.numBytes >= node.blockSize
            else { return nil }
            var block = Strata_Wire_ExtendedBlock()
            block.blockID = last
            block.generationStamp = record.generationStamp
            block.numBytes = record.numBytes
            return block
        }
    }

    /// A retried addBlock (ClientProtocol marks it idempotent: a client whose answer was lost
    /// asks again): when the file's last block is still empty and the block before it is the
    /// `previous` the client names, that last block is the one the first call allocated, and is
    /// answered again on the same nodes (HDFS's "case 2" of addBlock).
    func blockAllocatedBefore(_ request: Hadoop_Hdfs_AddBlockRequestProto) -> Strata_Wire_LocatedBlock? {
        state.withLock { state in
            let path = state.namespace.currentPath(request.src, fileId: request.fileID, clientName: request.clientName)
            guard let target = (try? state.namespace.resolve(path))?.target, state.namespace.writers[target] == request.clientName
            else { return nil }
            let node = state.namespace.inode(target)
            let blocks = node.blocks.array
            guard let lastId = blocks.last, let last = state.namespace.blocks[lastId], !last.isComplete, last.numBytes == 0,
                let targets = state.pipelineTargets[lastId]
            else { return nil }
            if request.hasPrevious {
                guard blocks.count >= 2, blocks[blocks.count - 2] == request.previous.blockID,
                    state.namespace.blocks[request.previous.blockID]?.generationStamp == request.previous.generationStamp
                else { return nil }
            } else if blocks.count != 1 {
                return nil
            }
            var located = Strata_Wire_LocatedBlock()
            located.block.blockID = lastId
            located.block.generationStamp = last.generationStamp
            located.offset = state.namespace.fileLength(node)
            located.locations = targets.map { state.blockManager.nodeInfo($0) }
            located.rawFrameSize = UInt32(configuration.rawFrameSize)
            return located
        }
    }

    /// The node a new block's first replica goes to: the first favored node Strata knows
    /// (`host:port`, as HDFS takes them), else the data node on the caller's host.
    func writerNode(favoredNodes: [String], _ call: HadoopRPCCall) -> String? {
        let favored: String? = state.withLock { state in
            for name in favoredNodes {
                if case .found(let index) = state.blockManager.resolveNode(name) { return state.blockManager.nodes[Int(index)].info.nodeID }
            }
            return nil
        }
        return favored ?? nodeOnCallerHost(call)
    }

    /// The live data node on the caller's host, when exactly one runs there (several on one host,
    /// as in a test cluster, say nothing about which is nearer).
    func nodeOnCallerHost(_ call: HadoopRPCCall) -> String? {
        guard let address = call.remoteAddress?.ipAddress else { return nil }
        return state.withLock { state in
            let nodes = state.blockManager.nodes.filter { $0.isAlive && $0.info.ipAddress == address }
            return nodes.count == 1 ? nodes[0].info.nodeID : nil
        }
    }
}
