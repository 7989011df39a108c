import Foundation
import NIOCore
import StrataBlockFormat
import StrataClient
import StrataHadoopWire
import StrataTestKit
import StrataWire
import SwiftProtobuf
import Testing

/// ClientProtocol's file data calls as a Hadoop writer or reader makes them, for the tests.
extension HadoopRPCTestClient {
    /// HDFS's CreateFlag bits.
    static let createFlag: UInt32 = 0x01
    static let overwriteFlag: UInt32 = 0x02

    func create(
        _ path: String, clientName: String, flags: UInt32 = HadoopRPCTestClient.createFlag, replication: UInt32 = 1,
        blockSize: UInt64 = 1 << 20, permission: UInt32 = 0o644, createParent: Bool = true
    ) async throws -> Hadoop_Hdfs_HdfsFileStatusProto {
        var request = Hadoop_Hdfs_CreateRequestProto()
        request.src = path
        request.masked.perm = permission
        request.clientName = clientName
        request.createFlag = flags
        request.createParent = createParent
        request.replication = replication
        request.blockSize = blockSize
        let response = try await call("create", request, as: Hadoop_Hdfs_CreateResponseProto.self)
        #expect(response.hasFs)
        return response.fs
    }

    func addBlock(
        _ path: String, clientName: String, fileId: UInt64, previous: Hadoop_Hdfs_ExtendedBlockProto? = nil,
        excluding: [Hadoop_Hdfs_DatanodeInfoProto] = [], favoredNodes: [String] = [], flags: [Hadoop_Hdfs_AddBlockFlagProto] = []
    ) async throws -> Hadoop_Hdfs_LocatedBlockProto {
        var request = Hadoop_Hdfs_AddBlockRequestProto()
        request.src = path
        request.clientName = clientName
        request.fileID = fileId
        if let previous { request.previous = previous }
        request.excludeNodes = excluding
        request.favoredNodes = favoredNodes
        request.flags = flags
        return try await call("addBlock", request, as: Hadoop_Hdfs_AddBlockResponseProto.self).block
    }

    func complete(_ path: String, clientName: String, fileId: UInt64, last: Hadoop_Hdfs_ExtendedBlockProto?) async throws -> Bool {
        var request = Hadoop_Hdfs_CompleteRequestProto()
        request.src = path
        request.clientName = clientName
        request.fileID = fileId
        if let last { request.last = last }
        return try await call("complete", request, as: Hadoop_Hdfs_CompleteResponseProto.self).result
    }

    func blockLocations(_ path: String, offset: UInt64 = 0, length: UInt64 = UInt64(Int64.max)) async throws
        -> Hadoop_Hdfs_LocatedBlocksProto
    {
        var request = Hadoop_Hdfs_GetBlockLocationsRequestProto()
        request.src = path
        request.offset = offset
        request.length = length
        let response = try await call("getBlockLocations", request, as: Hadoop_Hdfs_GetBlockLocationsResponseProto.self)
        #expect(response.hasLocations)
        return response.locations
    }

    func fileInfo(_ path: String) async throws -> Hadoop_Hdfs_HdfsFileStatusProto? {
        var request = Hadoop_Hdfs_GetFileInfoRequestProto()
        request.src = path
        let response = try await call("getFileInfo", request, as: Hadoop_Hdfs_GetFileInfoResponseProto.self)
        return response.hasFs ? response.fs : nil
    }

    /// The Java class of the error `body` fails with; nil if it succeeds.
    static func remoteErrorClass(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let error as RemoteError {
            return error.className
        } catch {
            return "\(error)"
        }
    }
}

/// Writes block contents through Strata's own transfer protocol, as the pipeline a Hadoop
/// client would stream to: the data nodes store and report the replicas as for any writer.
enum StrataBlockWriter {
    static func strataNode(_ info: Hadoop_Hdfs_DatanodeInfoProto) -> Strata_Wire_DatanodeInfo {
        var node = Strata_Wire_DatanodeInfo()
        node.nodeID = info.id.datanodeUuid
        node.hostname = info.id.hostName
        node.ipAddress = info.id.ipAddr
        node.transferPort = info.id.xferPort
        node.httpPort = info.id.infoPort
        node.ipcPort = info.id.ipcPort
        return node
    }

    /// Writes `bytes` as the whole of the block `located` names, to its nodes, and finishes it on
    /// every node. With `appendingTo` (the stamp the replicas have from before an append), the
    /// block's replicas are reopened and rewritten from their first frame.
    static func write(
        _ bytes: [UInt8], to located: Hadoop_Hdfs_LocatedBlockProto, clientName: String, rawFrameSize: Int, cluster: LocalCluster,
        appendingTo previousGenerationStamp: UInt64? = nil
    ) async throws {
        var block = Strata_Wire_ExtendedBlock()
        block.blockID = located.b.blockID
        block.generationStamp = located.b.generationStamp
        block.numBytes = located.b.numBytes
        let pipeline = try await PipelineConnection.open(
            block: block, stage: previousGenerationStamp == nil ? .create : .append, targets: located.locs.map(strataNode),
            rawFrameSize: rawFrameSize, clientName: clientName, previousGenerationStamp: previousGenerationStamp ?? 0,
            group: cluster.group)
        let encoder = FrameEncoder()
        let frames = stride(from: 0, to: bytes.count, by: rawFrameSize).map { start in
            encoder.encode(Array(bytes[start..<min(bytes.count, start + rawFrameSize)]))
        }
        var packet = Strata_Wire_Packet()
        packet.sequenceNumber = 0
        packet.offsetInBlock = 0
        packet.frameCount = UInt32(frames.count)
        packet.rawLength = UInt64(bytes.count)
        packet.last = true
        let acknowledgement = try await pipeline.send(packet, body: PacketBody.make(frames)).get()
        #expect(acknowledgement.replies.allSatisfy { $0 == .success })
        try await pipeline.waitForAcknowledgements()
        pipeline.close()
        await pipeline.waitUntilClosed()
    }
}
