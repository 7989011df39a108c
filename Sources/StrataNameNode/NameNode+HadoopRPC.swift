import Foundation
import StrataCore
import StrataHadoopWire
import StrataWire
import SwiftProtobuf

/// Hadoop's ClientProtocol, served on the RPC port next to Strata's own protocol: each method is
/// translated into the Strata call that does the same and answered by `handleInline` or
/// `handle`, so both protocols share every code path, permission check and journal write. Reads
/// Strata answers on the event loop (`getFileInfo`, `getListing`, ...) are answered there over
/// Hadoop RPC too.
extension NameNode {
    typealias HadoopCallCache = HadoopRetryCache<Task<any SwiftProtobuf.Message, any Error>, any SwiftProtobuf.Message>

    /// Answers one Hadoop RPC call; a retried at-most-once call gets the first one's answer.
    func handleHadoop(_ call: HadoopRPCCall) async throws -> any SwiftProtobuf.Message {
        guard HadoopCallCache.atMostOnceMethods.contains(call.methodName), !call.clientId.isEmpty else {
            return try await answerHadoop(call)
        }
        let key = HadoopCallCache.Key(clientId: call.clientId, callId: call.callId)
        let (answered, running) = hadoopRetryCache.withLock {
            cache -> ((any SwiftProtobuf.Message)?, Task<any SwiftProtobuf.Message, any Error>?) in
            switch cache.lookup(key, now: clock.now) {
            case .answered(let answer): return (answer, nil)
            case .wait(let running): return (nil, running)
            case .run:
                let task = Task { [self] () async throws -> any SwiftProtobuf.Message in
                    do {
                        let answer = try await answerHadoop(call)
                        hadoopRetryCache.withLock { $0.finish(key, answer: answer, now: clock.now) }
                        return answer
                    } catch {
                        hadoopRetryCache.withLock { $0.finish(key, answer: nil, now: clock.now) }
                        throw error
                    }
                }
                cache.start(key, running: task)
                return (nil, task)
            }
        }
        if let answered {
            logger.info("retried call answered from the retry cache", metadata: ["method": "\(call.methodName)", "callId": "\(call.callId)"])
            return answered
        }
        return try await running!.value
    }

    func answerHadoop(_ call: HadoopRPCCall) async throws -> any SwiftProtobuf.Message {
        if let response = try handleHadoopInline(call) { return response }
        switch call.methodName {
        case "getContentSummary":
            let request = try call.request(Hadoop_Hdfs_GetContentSummaryRequestProto.self)
            var path = Strata_Wire_PathRequest()
            path.path = request.path
            let summary = try await strata(.getContentSummary, path, call, as: Strata_Wire_ContentSummary.self)
            var response = Hadoop_Hdfs_GetContentSummaryResponseProto()
            response.summary.length = summary.length
            response.summary.fileCount = summary.fileCount
            response.summary.directoryCount = summary.directoryCount
            response.summary.spaceConsumed = summary.spaceConsumed
            // No quota is -1, sent as the unsigned field's bit pattern as HDFS does.
            response.summary.quota = UInt64(bitPattern: summary.quota)
            response.summary.spaceQuota = UInt64(bitPattern: summary.spaceQuota)
            return response
        case "mkdirs":
            let request = try call.request(Hadoop_Hdfs_MkdirsRequestProto.self)
            var mkdirs = Strata_Wire_MkdirsRequest()
            mkdirs.path = request.src
            mkdirs.permission = request.masked.perm
            mkdirs.createParent = request.createParent
            var response = Hadoop_Hdfs_MkdirsResponseProto()
            response.result = try await strata(.mkdirs, mkdirs, call, as: Strata_Wire_BoolResponse.self).result
            return response
        case "delete":
            let request = try call.request(Hadoop_Hdfs_DeleteRequestProto.self)
            var delete = Strata_Wire_DeleteRequest()
            delete.path = request.src
            delete.recursive = request.recursive
            var response = Hadoop_Hdfs_DeleteResponseProto()
            response.result = try await strata(.delete, delete, call, as: Strata_Wire_BoolResponse.self).result
            return response
        case "rename":
            // ClientProtocol's old rename: false rather than an error when it cannot be done.
            let request = try call.request(Hadoop_Hdfs_RenameRequestProto.self)
            var rename = Strata_Wire_RenameRequest()
            rename.source = request.src
            rename.destination = request.dst
            var response = Hadoop_Hdfs_RenameResponseProto()
            response.result = try await strata(.renameLegacy, rename, call, as: Strata_Wire_BoolResponse.self).result
            return response
        case "rename2":
            let request = try call.request(Hadoop_Hdfs_Rename2RequestProto.self)
            var rename = Strata_Wire_RenameRequest()
            rename.source = request.src
            rename.destination = request.dst
            rename.overwrite = request.overwriteDest
            _ = try await strata(.rename, rename, call, as: Strata_Wire_BoolResponse.self)
            return Hadoop_Hdfs_Rename2ResponseProto()
        case "setPermission":
            let request = try call.request(Hadoop_Hdfs_SetPermissionRequestProto.self)
            var set = Strata_Wire_SetPermissionRequest()
            set.path = request.src
            set.permission = request.permission.perm
            _ = try await strata(.setPermission, set, call, as: Strata_Wire_Empty.self)
            return Hadoop_Hdfs_SetPermissionResponseProto()
        case "setOwner":
            let request = try call.request(Hadoop_Hdfs_SetOwnerRequestProto.self)
            var set = Strata_Wire_SetOwnerRequest()
            set.path = request.src
            set.owner = request.username
            set.group = request.groupname
            _ = try await strata(.setOwner, set, call, as: Strata_Wire_Empty.self)
            return Hadoop_Hdfs_SetOwnerResponseProto()
        case "setReplication":
            let request = try call.request(Hadoop_Hdfs_SetReplicationRequestProto.self)
            var set = Strata_Wire_SetReplicationRequest()
            set.path = request.src
            set.replication = request.replication
            var response = Hadoop_Hdfs_SetReplicationResponseProto()
            response.result = try await strata(.setReplication, set, call, as: Strata_Wire_BoolResponse.self).result
            return response
        case "setTimes":
            // -1 (as the unsigned field's bit pattern) leaves a time as it is.
            let request = try call.request(Hadoop_Hdfs_SetTimesRequestProto.self)
            var set = Strata_Wire_SetTimesRequest()
            set.path = request.src
            set.modificationTimeMs = Int64(bitPattern: request.mtime)
            set.accessTimeMs = Int64(bitPattern: request.atime)
            _ = try await strata(.setTimes, set, call, as: Strata_Wire_Empty.self)
            return Hadoop_Hdfs_SetTimesResponseProto()
        case "getFsStats":
            let nodes = try await datanodes(call).filter { $0.state == "live" }
            var response = Hadoop_Hdfs_GetFsStatsResponseProto()
            response.capacity = nodes.reduce(0) { $0 + $1.capacity }
            response.used = nodes.reduce(0) { $0 + $1.dfsUsed }
            response.remaining = nodes.reduce(0) { $0 + $1.remaining }
            // Under-replicated and missing blocks are counted by fsck's walk of the namespace,
            // not kept as totals; blocks with a replica reported corrupt are known at once.
            response.underReplicated = 0
            response.corruptBlocks = state.withLock { state in
                UInt64(state.blockManager.corrupt.values.lazy.filter { !$0.isEmpty }.count)
            }
            response.missingBlocks = 0
            return response
        case "getDatanodeReport":
            let request = try call.request(Hadoop_Hdfs_GetDatanodeReportRequestProto.self)
            let nodes = try await datanodes(call).filter { node in
                switch request.type {
                case .all: true
                case .live: node.state == "live"
                case .dead: node.state == "dead"
                case .decommissioning: node.adminState == "decommissioning"
                case .enteringMaintenance, .inMaintenance: false
                }
            }
            var response = Hadoop_Hdfs_GetDatanodeReportResponseProto()
            response.di = nodes.map(Self.hadoopDatanodeInfo)
            return response
        default:
            if let response = try await handleHadoopFileData(call) { return response }
            throw RemoteException(
                .rpcNoSuchMethod, "Unknown method \(call.methodName) called on \(HadoopRPC.clientProtocolName) protocol.")
        }
    }

    /// Answers the calls that only read (or briefly update) in-memory state, on the event loop
    /// that received them, as Strata's RPC does (`handleInline`); nil for calls that need
    /// `handleHadoop`.
    func handleHadoopInline(_ call: HadoopRPCCall) throws -> (any SwiftProtobuf.Message)? {
        guard call.protocolName == HadoopRPC.clientProtocolName else {
            throw RemoteException(
                .other("org.apache.hadoop.ipc.RpcNoSuchProtocolException"),
                "Unknown protocol: \(call.protocolName) (this port serves \(HadoopRPC.clientProtocolName))")
        }
        switch call.methodName {
        case "getServerDefaults":
            let defaults = try strataInline(.getServerDefaults, Strata_Wire_Empty(), call, as: Strata_Wire_ServerDefaults.self)
            var response = Hadoop_Hdfs_GetServerDefaultsResponseProto()
            response.serverDefaults.blockSize = defaults.blockSize
            response.serverDefaults.replication = defaults.replication
            // HDFS's defaults for what the data transfer protocol will use (dfs.bytes-per-checksum,
            // dfs.client-write-packet-size, io.file.buffer.size): the chunk the data nodes
            // checksum reads and blocks with.
            response.serverDefaults.bytesPerChecksum = UInt32(HadoopDataTransfer.bytesPerChecksum)
            response.serverDefaults.writePacketSize = 64 * 1024
            response.serverDefaults.fileBufferSize = 4096
            response.serverDefaults.checksumType = .checksumCrc32C
            response.serverDefaults.encryptDataTransfer = false
            response.serverDefaults.trashInterval = 0
            return response
        case "getFileInfo":
            let request = try call.request(Hadoop_Hdfs_GetFileInfoRequestProto.self)
            var response = Hadoop_Hdfs_GetFileInfoResponseProto()
            if let status = try fileStatus(request.src, call) { response.fs = status }
            return response
        case "getFileLinkInfo":
            // Strata has no symbolic links: a link's status is the file's.
            let request = try call.request(Hadoop_Hdfs_GetFileLinkInfoRequestProto.self)
            var response = Hadoop_Hdfs_GetFileLinkInfoResponseProto()
            if let status = try fileStatus(request.src, call) { response.fs = status }
            return response
        case "getListing":
            return try hadoopListing(try call.request(), call)
        case "renewLease":
            let request = try call.request(Hadoop_Hdfs_RenewLeaseRequestProto.self)
            _ = try strataInline(.renewLease, Strata_Wire_Empty(), call, clientName: request.clientName, as: Strata_Wire_Empty.self)
            return Hadoop_Hdfs_RenewLeaseResponseProto()
        case "msync":
            // One name node, no observers: every read already sees every write.
            return Hadoop_Hdfs_MsyncResponseProto()
        case "getHAServiceState":
            var response = Hadoop_Hdfs_HAServiceStateResponseProto()
            response.state = .active
            return response
        default:
            return try handleHadoopFileDataInline(call)
        }
    }

    /// Runs the Strata call `method` with `request` as the Hadoop caller, through the same
    /// dispatch as Strata's own RPC.
    func strata<Response: SwiftProtobuf.Message>(
        _ method: NameNodeMethod, _ request: some SwiftProtobuf.Message, _ call: HadoopRPCCall, clientName: String = "",
        as: Response.Type
    ) async throws -> Response {
        let answer = try await handle(try strataCall(method, request, call, clientName: clientName))
        guard let response = answer as? Response else {
            throw RemoteException(.io, "\(method.rawValue) answered \(type(of: answer)), not \(Response.protoMessageName)")
        }
        return response
    }

    /// `strata` for the calls Strata's RPC answers inline.
    func strataInline<Response: SwiftProtobuf.Message>(
        _ method: NameNodeMethod, _ request: some SwiftProtobuf.Message, _ call: HadoopRPCCall, clientName: String = "",
        as: Response.Type
    ) throws -> Response {
        guard let answer = try handleInline(strataCall(method, request, call, clientName: clientName)) else {
            throw RemoteException(.io, "\(method.rawValue) is not answered inline")
        }
        guard let response = answer as? Response else {
            throw RemoteException(.io, "\(method.rawValue) answered \(type(of: answer)), not \(Response.protoMessageName)")
        }
        return response
    }

    func strataCall(
        _ method: NameNodeMethod, _ request: some SwiftProtobuf.Message, _ call: HadoopRPCCall, clientName: String
    ) throws -> RPCCall {
        var header = Strata_Wire_RequestHeader()
        header.method = method.rawValue
        header.user = call.user
        header.clientName = clientName
        return RPCCall(header: header, body: try request.serializedBuffer(), remoteAddress: call.remoteAddress)
    }

    func fileStatus(_ path: String, _ call: HadoopRPCCall) throws -> Hadoop_Hdfs_HdfsFileStatusProto? {
        var request = Strata_Wire_PathRequest()
        request.path = path
        let response = try strataInline(.getFileInfo, request, call, as: Strata_Wire_GetFileInfoResponse.self)
        // HDFS leaves the name out of a single status: the client knows the path it asked for.
        return response.hasStatus ? Self.hadoopStatus(response.status, name: "") : nil
    }

    private func hadoopListing(_ request: Hadoop_Hdfs_GetListingRequestProto, _ call: HadoopRPCCall) throws
        -> Hadoop_Hdfs_GetListingResponseProto
    {
        var listing = Strata_Wire_GetListingRequest()
        listing.path = request.src
        listing.startAfter = String(decoding: request.startAfter, as: UTF8.self)
        listing.limit = UInt32(Limits.listingBatchSize)
        let answer = try strataInline(.getListing, listing, call, as: Strata_Wire_GetListingResponse.self)
        var response = Hadoop_Hdfs_GetListingResponseProto()
        // A file lists as itself, under an empty name (HDFS's getListing of a file).
        let entries = answer.status.kind == .file ? [answer.status] : answer.entries
        response.dirList.partialListing = try entries.map { entry in
            var status = Self.hadoopStatus(
                entry, name: answer.status.kind == .file ? "" : String(entry.path.split(separator: "/").last ?? ""))
            // With needLocation each file comes with its blocks (HdfsLocatedFileStatusProto).
            if request.needLocation && entry.kind == .file {
                status.locations = try hadoopListedLocations(entry.path, length: entry.length, call)
            }
            return status
        }
        response.dirList.remainingEntries = answer.remaining
        return response
    }

    func datanodes(_ call: HadoopRPCCall) async throws -> [Strata_Wire_DatanodeInfo] {
        try await strata(.getDatanodeReport, Strata_Wire_Empty(), call, as: Strata_Wire_DatanodeReport.self).nodes
    }

    /// A status as HDFS fills HdfsFileStatusProto; `name` is the entry's local name.
    static func hadoopStatus(_ status: Strata_Wire_FileStatus, name: String) -> Hadoop_Hdfs_HdfsFileStatusProto {
        var proto = Hadoop_Hdfs_HdfsFileStatusProto()
        let isDirectory = status.kind == .directory
        proto.fileType = isDirectory ? .isDir : .isFile
        proto.path = Data(name.utf8)
        proto.length = isDirectory ? 0 : status.length
        proto.permission.perm = status.permission
        proto.owner = status.owner
        proto.group = status.group
        proto.modificationTime = UInt64(max(0, status.modificationTimeMs))
        proto.accessTime = UInt64(max(0, status.accessTimeMs))
        proto.blockReplication = isDirectory ? 0 : status.replication
        proto.blocksize = isDirectory ? 0 : status.blockSize
        proto.fileID = status.fileID
        proto.childrenNum = isDirectory ? Int32(clamping: status.childrenCount) : 0
        // No storage policy set: HDFS's BLOCK_STORAGE_POLICY_ID_UNSPECIFIED.
        proto.storagePolicy = 0
        return proto
    }

    static func hadoopDatanodeInfo(_ node: Strata_Wire_DatanodeInfo) -> Hadoop_Hdfs_DatanodeInfoProto {
        var info = Hadoop_Hdfs_DatanodeInfoProto()
        info.id.ipAddr = node.ipAddress
        info.id.hostName = node.hostname
        info.id.datanodeUuid = node.nodeID
        info.id.xferPort = node.transferPort
        info.id.infoPort = node.httpPort
        info.id.ipcPort = node.ipcPort
        info.capacity = node.capacity
        info.dfsUsed = node.dfsUsed
        info.remaining = node.remaining
        info.blockPoolUsed = node.dfsUsed
        info.lastUpdate = UInt64(max(0, node.lastHeartbeatMs))
        // One rack: Strata places replicas without a topology.
        info.location = "/default-rack"
        info.adminState = switch node.adminState {
        case "decommissioning": .decommissionInprogress
        case "decommissioned": .decommissioned
        default: .normal
        }
        return info
    }
}
