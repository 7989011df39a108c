import Foundation
import NIOCore
import StrataClient
import StrataTestKit
import StrataWire
import SwiftProtobuf
import Testing

@testable import StrataHadoopWire
@testable import StrataNameNode

/// ClientProtocol's file data path over Hadoop RPC against a loopback cluster: the calls a
/// Hadoop writer and reader make to the name node (the block bytes go through Strata's own
/// transfer protocol here), what they answer as HDFS answers, and their errors.
@Suite(.timeLimit(.minutes(2)))
struct HadoopRPCWriteTests {
    /// Runs `body` with a cluster and a Strata client of it (closed afterwards).
    static func withCluster(
        dataNodes: Int = 3, finishedReplicaWaitMs: Int64 = 20_000, _ body: (LocalCluster, DFSClient) async throws -> Void
    ) async throws {
        try await LocalCluster.withTemporary(prefix: "strata-hadoop-write-", {
            $0.dataNodes = dataNodes
            $0.finishedReplicaWaitMs = finishedReplicaWaitMs
        }) { cluster in
            try await cluster.waitForDataNodes(dataNodes)
            let strata = cluster.client()
            do {
                try await body(cluster, strata)
            } catch {
                await strata.close()
                throw error
            }
            await strata.close()
        }
    }

    /// The same block on the same nodes (the nodes' live figures, such as the space remaining,
    /// may have moved with a heartbeat between the two answers).
    static func sameAllocation(_ one: Hadoop_Hdfs_LocatedBlockProto, _ other: Hadoop_Hdfs_LocatedBlockProto) -> Bool {
        one.b == other.b && one.offset == other.offset && one.locs.map(\.id) == other.locs.map(\.id) && one.storageIds == other.storageIds
    }

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    @Test func createAddBlockCompleteAndReadLocationsAsDFSClientSeesThem() async throws {
        try await Self.withCluster { cluster, strata in
            let frameSize = Int(try await strata.serverDefaults().rawFrameSize)
            let data = Self.bytes(600_000, seed: 7)
            let writer = "DFSClient_NONMAPREDUCE_write_1"
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                let created = try await client.create(
                    "/hadoop/write/file", clientName: writer, replication: 2, blockSize: 1 << 20, permission: 0o640)
                #expect(created.fileType == .isFile)
                #expect(created.length == 0)
                #expect(created.blockReplication == 2)
                #expect(created.blocksize == 1 << 20)
                #expect(created.permission.perm == 0o640)
                #expect(created.fileID != 0)

                // An empty file being written: no blocks yet.
                let empty = try await client.blockLocations("/hadoop/write/file")
                #expect(empty.underConstruction)
                #expect(empty.fileLength == 0)
                #expect(empty.blocks.isEmpty)
                #expect(!empty.hasLastBlock)

                let located = try await client.addBlock("/hadoop/write/file", clientName: writer, fileId: created.fileID)
                // A retried addBlock (its answer lost) gets the same block on the same nodes.
                let retried = try await client.addBlock("/hadoop/write/file", clientName: writer, fileId: created.fileID)
                #expect(Self.sameAllocation(retried, located))
                #expect(located.b.poolID == "BP-\(cluster.nameNode.namespaceId)")
                #expect(located.b.numBytes == 0)
                #expect(located.offset == 0)
                #expect(located.locs.count == 2)
                #expect(Set(located.locs.map(\.id.datanodeUuid)).count == 2)
                #expect(located.storageIds == located.locs.map { "DS-\($0.id.datanodeUuid)" })
                #expect(located.storageTypes == [.disk, .disk])
                #expect(located.isCached == [false, false])
                #expect(located.blockToken.hasIdentifier && located.blockToken.identifier.isEmpty && located.blockToken.kind.isEmpty)
                let transferPorts = Set(cluster.dataNodes.map { UInt32($0.transferPort) })
                #expect(located.locs.allSatisfy { transferPorts.contains($0.id.xferPort) })

                // While the block is written, readers see it as the last, unfinished block of a
                // file whose finished length is 0, on the nodes of its pipeline.
                let writing = try await client.blockLocations("/hadoop/write/file")
                #expect(writing.underConstruction)
                #expect(writing.fileLength == 0)
                #expect(writing.blocks.map(\.b.blockID) == [located.b.blockID])
                #expect(writing.lastBlock.b.blockID == located.b.blockID)
                #expect(!writing.isLastBlockComplete)
                #expect(Set(writing.lastBlock.locs.map(\.id.datanodeUuid)) == Set(located.locs.map(\.id.datanodeUuid)))

                try await StrataBlockWriter.write(data, to: located, clientName: writer, rawFrameSize: frameSize, cluster: cluster)
                var last = located.b
                last.numBytes = UInt64(data.count)
                #expect(try await client.complete("/hadoop/write/file", clientName: writer, fileId: created.fileID, last: last))
                // A retried complete (its answer lost) is still true.
                #expect(try await client.complete("/hadoop/write/file", clientName: writer, fileId: created.fileID, last: last))

                let done = try await client.blockLocations("/hadoop/write/file")
                #expect(!done.underConstruction)
                #expect(done.fileLength == UInt64(data.count))
                #expect(done.isLastBlockComplete)
                #expect(done.blocks.count == 1)
                #expect(done.lastBlock == done.blocks[0])
                let block = done.blocks[0]
                #expect(block.b.blockID == located.b.blockID)
                #expect(block.b.numBytes == UInt64(data.count))
                #expect(block.offset == 0)
                #expect(!block.corrupt)

                // The same blocks as Strata's own client sees them, and the same bytes.
                let seen = try await strata.blockLocations("/hadoop/write/file")
                #expect(seen.blocks.map(\.block.blockID) == [block.b.blockID])
                #expect(seen.blocks[0].block.generationStamp == block.b.generationStamp)
                #expect(Set(seen.blocks[0].locations.map(\.nodeID)) == Set(block.locs.map(\.id.datanodeUuid)))
                #expect(try await strata.readAll("/hadoop/write/file") == data)

                // A listing with locations, the located status, the preferred block size.
                var listing = Hadoop_Hdfs_GetListingRequestProto()
                listing.src = "/hadoop/write"
                listing.startAfter = Data()
                listing.needLocation = true
                let listed = try await client.call("getListing", listing, as: Hadoop_Hdfs_GetListingResponseProto.self)
                let entry = try #require(listed.dirList.partialListing.first)
                #expect(String(decoding: entry.path, as: UTF8.self) == "file")
                #expect(entry.hasLocations)
                #expect(entry.locations.blocks.map(\.b.blockID) == [block.b.blockID])
                #expect(entry.locations.fileLength == UInt64(data.count))
                listing.needLocation = false
                #expect(try await !client.call("getListing", listing, as: Hadoop_Hdfs_GetListingResponseProto.self)
                    .dirList.partialListing[0].hasLocations)

                var locatedInfo = Hadoop_Hdfs_GetLocatedFileInfoRequestProto()
                locatedInfo.src = "/hadoop/write/file"
                let info = try await client.call("getLocatedFileInfo", locatedInfo, as: Hadoop_Hdfs_GetLocatedFileInfoResponseProto.self)
                #expect(info.fs.locations.blocks.map(\.b.blockID) == [block.b.blockID])
                var preferred = Hadoop_Hdfs_GetPreferredBlockSizeRequestProto()
                preferred.filename = "/hadoop/write/file"
                #expect(try await client.call("getPreferredBlockSize", preferred, as: Hadoop_Hdfs_GetPreferredBlockSizeResponseProto.self)
                    .bsize == 1 << 20)
                var closed = Hadoop_Hdfs_IsFileClosedRequestProto()
                closed.src = "/hadoop/write/file"
                #expect(try await client.call("isFileClosed", closed, as: Hadoop_Hdfs_IsFileClosedResponseProto.self).result)
            }
        }
    }

    @Test func blocksOfARangeAsHDFSSelectsThem() async throws {
        try await Self.withCluster(dataNodes: 1) { cluster, strata in
            // Three blocks of 64 KiB and a tail: 0, 65536, 131072, 196608.
            let blockSize: UInt64 = 64 * 1024
            let data = Self.bytes(3 * Int(blockSize) + 1000, seed: 3)
            let stream = try await strata.create("/ranges/file", replication: 1, blockSize: blockSize)
            try await stream.write(data)
            try await stream.close()
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                let all = try await client.blockLocations("/ranges/file")
                #expect(all.blocks.map(\.offset) == [0, blockSize, 2 * blockSize, 3 * blockSize])
                #expect(all.blocks.map(\.b.numBytes) == [blockSize, blockSize, blockSize, 1000])
                #expect(all.fileLength == UInt64(data.count))
                #expect(all.lastBlock == all.blocks[3])
                #expect(all.isLastBlockComplete)

                let second = try await client.blockLocations("/ranges/file", offset: blockSize + 10, length: 10)
                #expect(second.blocks.map(\.offset) == [blockSize])
                let twoBlocks = try await client.blockLocations("/ranges/file", offset: 0, length: blockSize + 1)
                #expect(twoBlocks.blocks.map(\.offset) == [0, blockSize])
                // Past the end: no blocks, the last block still named.
                let past = try await client.blockLocations("/ranges/file", offset: UInt64(data.count) + 5, length: 100)
                #expect(past.blocks.isEmpty)
                #expect(past.lastBlock == all.blocks[3])

                let negative = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.blockLocations("/ranges/file", offset: UInt64(bitPattern: -1), length: 10)
                }
                #expect(negative == "org.apache.hadoop.HadoopIllegalArgumentException")
            }
        }
    }

    @Test func appendRecoverLeaseTruncateAndConcat() async throws {
        try await Self.withCluster(dataNodes: 2) { cluster, strata in
            let frameSize = Int(try await strata.serverDefaults().rawFrameSize)
            let blockSize: UInt64 = 64 * 1024
            let small = Self.bytes(1000, seed: 1)
            let more = Self.bytes(500, seed: 4)
            let stream = try await strata.create("/append/file", replication: 2, blockSize: blockSize)
            try await stream.write(small)
            try await stream.close()
            let before = try await strata.blockLocations("/append/file").blocks[0].block
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                // append returns the partial last block to continue, with the stamp the append gives it.
                var append = Hadoop_Hdfs_AppendRequestProto()
                append.src = "/append/file"
                append.clientName = "DFSClient_append"
                append.flag = 0x04
                let appended = try await client.call("append", append, as: Hadoop_Hdfs_AppendResponseProto.self)
                #expect(appended.stat.length == 1000)
                #expect(appended.stat.fileID != 0)
                #expect(appended.hasBlock)
                #expect(appended.block.b.blockID == before.blockID)
                #expect(appended.block.b.numBytes == 1000)
                #expect(appended.block.b.generationStamp > before.generationStamp)
                #expect(appended.block.offset == 0)
                #expect(appended.block.locs.count == 2)
                var closed = Hadoop_Hdfs_IsFileClosedRequestProto()
                closed.src = "/append/file"
                #expect(try await !client.call("isFileClosed", closed, as: Hadoop_Hdfs_IsFileClosedResponseProto.self).result)

                // Another client may not append meanwhile.
                append.clientName = "DFSClient_other"
                let busy = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("append", append, as: Hadoop_Hdfs_AppendResponseProto.self)
                }
                #expect(busy == "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException")

                // The appender continues the block and closes the file.
                try await StrataBlockWriter.write(
                    small + more, to: appended.block, clientName: "DFSClient_append", rawFrameSize: frameSize, cluster: cluster,
                    appendingTo: before.generationStamp)
                var last = appended.block.b
                last.numBytes = UInt64(small.count + more.count)
                #expect(try await client.complete("/append/file", clientName: "DFSClient_append", fileId: appended.stat.fileID, last: last))
                #expect(try await strata.readAll("/append/file") == small + more)

                // A writer that went away without closing: recoverLease closes the file once its
                // last block is recovered (false until then), with the bytes its replicas hold.
                let created = try await client.create("/append/abandoned", clientName: "DFSClient_gone", replication: 2)
                let located = try await client.addBlock("/append/abandoned", clientName: "DFSClient_gone", fileId: created.fileID)
                try await StrataBlockWriter.write(small, to: located, clientName: "DFSClient_gone", rawFrameSize: frameSize, cluster: cluster)
                var recover = Hadoop_Hdfs_RecoverLeaseRequestProto()
                recover.src = "/append/abandoned"
                recover.clientName = "DFSClient_other"
                let deadline = ContinuousClock.now + .seconds(30)
                var recovered = false
                while !recovered && ContinuousClock.now < deadline {
                    recovered = try await client.call("recoverLease", recover, as: Hadoop_Hdfs_RecoverLeaseResponseProto.self).result
                    if !recovered { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(recovered)
                closed.src = "/append/abandoned"
                #expect(try await client.call("isFileClosed", closed, as: Hadoop_Hdfs_IsFileClosedResponseProto.self).result)
                #expect(try await strata.readAll("/append/abandoned") == small)
            }

            // concat: a target of whole blocks takes its sources' blocks; truncate at a boundary.
            let whole = Self.bytes(Int(blockSize), seed: 2)
            for (path, bytes) in [("/concat/target", whole), ("/concat/one", whole), ("/concat/two", small)] {
                let stream = try await strata.create(path, replication: 1, blockSize: blockSize)
                try await stream.write(bytes)
                try await stream.close()
            }
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                var concat = Hadoop_Hdfs_ConcatRequestProto()
                concat.trg = "/concat/target"
                concat.srcs = ["/concat/one", "/concat/two"]
                _ = try await client.call("concat", concat, as: Hadoop_Hdfs_ConcatResponseProto.self)
                #expect(try await client.fileInfo("/concat/one") == nil)
                let joined = try await client.blockLocations("/concat/target")
                #expect(joined.blocks.map(\.offset) == [0, blockSize, 2 * blockSize])
                #expect(joined.fileLength == 2 * blockSize + 1000)

                // Inside a block: the kept bytes are copied into a new block, done when it answers.
                var truncate = Hadoop_Hdfs_TruncateRequestProto()
                truncate.src = "/concat/target"
                truncate.newLength = 2 * blockSize + 100
                truncate.clientName = "DFSClient_truncate"
                #expect(try await client.call("truncate", truncate, as: Hadoop_Hdfs_TruncateResponseProto.self).result)
                #expect(try await client.fileInfo("/concat/target")?.length == 2 * blockSize + 100)
                #expect(try await strata.readAll("/concat/target") == whole + whole + Array(small.prefix(100)))
                // A name node with no way to copy them refuses, clearly.
                let cutter = cluster.nameNode.truncateInsideBlock.withLock { $0 }
                cluster.nameNode.setTruncateInsideBlock(nil)
                truncate.newLength = blockSize + 100
                let inside = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("truncate", truncate, as: Hadoop_Hdfs_TruncateResponseProto.self)
                }
                cluster.nameNode.setTruncateInsideBlock(cutter)
                #expect(inside == "java.lang.UnsupportedOperationException")
                // At a block boundary the blocks after it go.
                truncate.newLength = blockSize
                #expect(try await client.call("truncate", truncate, as: Hadoop_Hdfs_TruncateResponseProto.self).result)
                #expect(try await client.fileInfo("/concat/target")?.length == blockSize)
                #expect(try await strata.readAll("/concat/target") == whole)
            }
        }
    }

    @Test func pipelineRecoveryCallsAndFsync() async throws {
        try await Self.withCluster { cluster, _ in
            let writer = "DFSClient_pipeline"
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                // A favored node (host:port, as HDFS takes them) gets the first replica; excluded
                // nodes get none.
                let favored = cluster.dataNodes[2].transferPort
                let placed = try await client.create("/pipeline/placed", clientName: writer, replication: 2)
                let excluded = try await client.addBlock("/pipeline/placed", clientName: writer, fileId: placed.fileID)
                let placedBlock = try await client.addBlock(
                    "/pipeline/placed", clientName: writer, fileId: placed.fileID, previous: nil, excluding: [],
                    favoredNodes: ["127.0.0.1:\(favored)"])
                #expect(Self.sameAllocation(placedBlock, excluded))
                var abandonPlaced = Hadoop_Hdfs_AbandonBlockRequestProto()
                abandonPlaced.b = excluded.b
                abandonPlaced.src = "/pipeline/placed"
                abandonPlaced.holder = writer
                _ = try await client.call("abandonBlock", abandonPlaced, as: Hadoop_Hdfs_AbandonBlockResponseProto.self)
                let favoredBlock = try await client.addBlock(
                    "/pipeline/placed", clientName: writer, fileId: placed.fileID, favoredNodes: ["127.0.0.1:\(favored)"])
                #expect(favoredBlock.locs.first?.id.xferPort == UInt32(favored))
                abandonPlaced.b = favoredBlock.b
                _ = try await client.call("abandonBlock", abandonPlaced, as: Hadoop_Hdfs_AbandonBlockResponseProto.self)
                let avoiding = try await client.addBlock(
                    "/pipeline/placed", clientName: writer, fileId: placed.fileID, excluding: [favoredBlock.locs[0]])
                #expect(avoiding.locs.count == 2)
                #expect(!avoiding.locs.map(\.id.xferPort).contains(UInt32(favored)))

                let created = try await client.create("/pipeline/file", clientName: writer, replication: 2)
                let located = try await client.addBlock("/pipeline/file", clientName: writer, fileId: created.fileID)
                #expect(located.locs.count == 2)

                // fsync records the length the writer reached (readers and getFileInfo see it).
                var fsync = Hadoop_Hdfs_FsyncRequestProto()
                fsync.src = "/pipeline/file"
                fsync.client = writer
                fsync.lastBlockLength = 4096
                fsync.fileID = created.fileID
                _ = try await client.call("fsync", fsync, as: Hadoop_Hdfs_FsyncResponseProto.self)
                #expect(try await client.fileInfo("/pipeline/file")?.length == 4096)
                #expect(try await client.blockLocations("/pipeline/file").lastBlock.b.numBytes == 4096)
                fsync.client = "DFSClient_stranger"
                let stranger = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("fsync", fsync, as: Hadoop_Hdfs_FsyncResponseProto.self)
                }
                #expect(stranger == "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException")

                // A node of the pipeline failed: one more node, none of the pipeline's.
                var additional = Hadoop_Hdfs_GetAdditionalDatanodeRequestProto()
                additional.src = "/pipeline/file"
                additional.blk = located.b
                additional.existings = [located.locs[0]]
                additional.excludes = [located.locs[1]]
                additional.numAdditionalNodes = 1
                additional.clientName = writer
                additional.fileID = created.fileID
                let extended = try await client.call(
                    "getAdditionalDatanode", additional, as: Hadoop_Hdfs_GetAdditionalDatanodeResponseProto.self
                ).block
                #expect(extended.locs.count == 2)
                #expect(extended.locs[0].id.datanodeUuid == located.locs[0].id.datanodeUuid)
                let replacement = extended.locs[1]
                #expect(!located.locs.map(\.id.datanodeUuid).contains(replacement.id.datanodeUuid))
                #expect(extended.storageIds.count == 2)

                // A new generation stamp, then the new pipeline.
                var update = Hadoop_Hdfs_UpdateBlockForPipelineRequestProto()
                update.block = located.b
                update.block.numBytes = 4096
                update.clientName = writer
                let updated = try await client.call(
                    "updateBlockForPipeline", update, as: Hadoop_Hdfs_UpdateBlockForPipelineResponseProto.self
                ).block
                #expect(updated.b.blockID == located.b.blockID)
                #expect(updated.b.generationStamp > located.b.generationStamp)
                #expect(updated.offset == UInt64(bitPattern: -1))
                #expect(updated.locs.isEmpty)

                var pipeline = Hadoop_Hdfs_UpdatePipelineRequestProto()
                pipeline.clientName = "DFSClient_stranger"
                pipeline.oldBlock = located.b
                pipeline.newBlock = updated.b
                pipeline.newNodes = [located.locs[0].id, replacement.id]
                pipeline.storageIds = Array(extended.storageIds)
                let notHolder = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("updatePipeline", pipeline, as: Hadoop_Hdfs_UpdatePipelineResponseProto.self)
                }
                #expect(notHolder == "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException")
                pipeline.clientName = writer
                _ = try await client.call("updatePipeline", pipeline, as: Hadoop_Hdfs_UpdatePipelineResponseProto.self)
                let recovered = try await client.blockLocations("/pipeline/file")
                #expect(recovered.lastBlock.b.generationStamp == updated.b.generationStamp)
                #expect(Set(recovered.lastBlock.locs.map(\.id.datanodeUuid)) == [located.locs[0].id.datanodeUuid, replacement.id.datanodeUuid])

                // The writer gives the block up, and closes the file empty.
                var abandon = Hadoop_Hdfs_AbandonBlockRequestProto()
                abandon.b = updated.b
                abandon.src = "/pipeline/file"
                abandon.holder = writer
                abandon.fileID = created.fileID
                _ = try await client.call("abandonBlock", abandon, as: Hadoop_Hdfs_AbandonBlockResponseProto.self)
                #expect(try await client.blockLocations("/pipeline/file").blocks.isEmpty)
                #expect(try await client.complete("/pipeline/file", clientName: writer, fileId: created.fileID, last: nil))
                let status = try #require(try await client.fileInfo("/pipeline/file"))
                #expect(status.length == 0)
            }
        }
    }

    /// A client that lost an answer calls again with the same client id and call id (on a new
    /// connection): at-most-once calls answer as the first call did instead of running twice; a
    /// new call id, or another client, runs the call anew.
    @Test func retriedAtMostOnceCallsGetTheFirstAnswer() async throws {
        try await Self.withCluster { cluster, strata in
            let clientId = Data((0..<16).map { UInt8($0 * 3) })
            let writer = "DFSClient_NONMAPREDUCE_retry_1"
            var create = Hadoop_Hdfs_CreateRequestProto()
            create.src = "/retry/file"
            create.masked.perm = 0o644
            create.clientName = writer
            create.createFlag = HadoopRPCTestClient.createFlag
            create.createParent = true
            create.replication = 1
            create.blockSize = 1 << 20
            var delete = Hadoop_Hdfs_DeleteRequestProto()
            delete.src = "/retry/gone"
            var rename = Hadoop_Hdfs_Rename2RequestProto()
            rename.src = "/retry/from"
            rename.dst = "/retry/to"
            try await strata.createEmpty("/retry/gone", replication: 1)
            try await strata.createEmpty("/retry/from", replication: 1)
            let first = try await HadoopRPCTestClient.with(port: cluster.nameNodePort, clientId: clientId) { client in
                let created = try await client.call("create", create, callId: 5, retryCount: 0, as: Hadoop_Hdfs_CreateResponseProto.self)
                #expect(try await client.call("delete", delete, callId: 6, retryCount: 0, as: Hadoop_Hdfs_DeleteResponseProto.self).result)
                _ = try await client.call("rename2", rename, callId: 7, retryCount: 0, as: Hadoop_Hdfs_Rename2ResponseProto.self)
                return created
            }
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort, clientId: clientId) { client in
                let again = try await client.call("create", create, callId: 5, retryCount: 1, as: Hadoop_Hdfs_CreateResponseProto.self)
                #expect(again == first, "the retried create answers the file it created")
                #expect(
                    try await client.call("delete", delete, callId: 6, retryCount: 1, as: Hadoop_Hdfs_DeleteResponseProto.self).result,
                    "the retried delete answers true, as the first did")
                _ = try await client.call("rename2", rename, callId: 7, retryCount: 2, as: Hadoop_Hdfs_Rename2ResponseProto.self)
                // A new call id is a new call.
                await #expect(throws: HadoopRPCTestClient.RemoteError.self) {
                    _ = try await client.call("create", create, callId: 8, retryCount: 0, as: Hadoop_Hdfs_CreateResponseProto.self)
                }
                #expect(!(try await client.call("delete", delete, callId: 9, retryCount: 0, as: Hadoop_Hdfs_DeleteResponseProto.self).result))
            }
            // Another client with the same call id runs the call itself.
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                do {
                    _ = try await client.call("create", create, callId: 5, retryCount: 0, as: Hadoop_Hdfs_CreateResponseProto.self)
                    Issue.record("another client's create of an existing file succeeded")
                } catch let error as HadoopRPCTestClient.RemoteError {
                    // The file is still open for its writer, as HDFS answers a second create.
                    #expect(error.className == "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException")
                }
            }
            #expect(try await strata.status("/retry/to") != nil)
            #expect(try await strata.status("/retry/gone") == nil)
        }
    }

    @Test func completeAnswersFalseWhileNoReplicaIsReported() async throws {
        try await Self.withCluster(dataNodes: 1, finishedReplicaWaitMs: 1_000) { cluster, _ in
            let writer = "DFSClient_unreported"
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                let created = try await client.create("/unreported", clientName: writer)
                let located = try await client.addBlock("/unreported", clientName: writer, fileId: created.fileID)
                var last = located.b
                last.numBytes = 10
                // No bytes were ever sent: the name node waits for a replica, then answers false
                // (the client asks again), and the file stays open.
                #expect(try await !client.complete("/unreported", clientName: writer, fileId: created.fileID, last: last))
                #expect(try await client.fileInfo("/unreported")?.fileType == .isFile)
                var closed = Hadoop_Hdfs_IsFileClosedRequestProto()
                closed.src = "/unreported"
                #expect(try await !client.call("isFileClosed", closed, as: Hadoop_Hdfs_IsFileClosedResponseProto.self).result)
                // A next block while the previous one still has no replica, after the wait:
                // NotReplicatedYetException.
                let early = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.addBlock("/unreported", clientName: writer, fileId: created.fileID, previous: last)
                }
                #expect(early == "org.apache.hadoop.hdfs.server.namenode.NotReplicatedYetException")
            }
        }
    }

    /// A writer that asks for its next block right after sending the last packet of the one
    /// before, ahead of its data node's report of it: addBlock waits for the report and answers.
    @Test func addBlockWaitsForThePreviousBlocksReport() async throws {
        try await Self.withCluster(dataNodes: 1) { cluster, strata in
            let frameSize = Int(try await strata.serverDefaults().rawFrameSize)
            let writer = "DFSClient_early_next_block"
            let data = Self.bytes(70_000, seed: 3)
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                let created = try await client.create("/early", clientName: writer)
                let located = try await client.addBlock("/early", clientName: writer, fileId: created.fileID)
                var previous = located.b
                previous.numBytes = UInt64(data.count)
                // Asked before a byte of the previous block is written; answered once it is.
                var request = Hadoop_Hdfs_AddBlockRequestProto()
                request.src = "/early"
                request.clientName = writer
                request.fileID = created.fileID
                request.previous = previous
                try await client.start("addBlock", request)
                try await StrataBlockWriter.write(data, to: located, clientName: writer, rawFrameSize: frameSize, cluster: cluster)
                let answer = try #require(try await client.readResponse())
                #expect(answer.header.status == .success, "\(answer.header.exceptionClassName): \(answer.header.errorMsg)")
                let second = try Hadoop_Hdfs_AddBlockResponseProto(serializedBytes: Array(buffer: answer.body)).block
                #expect(second.b.blockID != located.b.blockID)
                #expect(second.offset == UInt64(data.count))
            }
        }
    }

    @Test func writePathErrorsCarryTheClassesHadoopClientsBranchOn() async throws {
        try await Self.withCluster(dataNodes: 1) { cluster, strata in
            try await strata.mkdirs("/owned", permission: 0o755)
            let stream = try await strata.create("/owned/secret", replication: 1, permission: 0o600)
            try await stream.write(Self.bytes(100, seed: 9))
            try await stream.close()
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                let first = try await client.create("/errors/file", clientName: "DFSClient_first")
                // Created again by its writer or by another client while the lease is held.
                for other in ["DFSClient_first", "DFSClient_second"] {
                    for flags in [HadoopRPCTestClient.createFlag, HadoopRPCTestClient.createFlag | HadoopRPCTestClient.overwriteFlag] {
                        let held = await HadoopRPCTestClient.remoteErrorClass {
                            _ = try await client.create("/errors/file", clientName: other, flags: flags)
                        }
                        #expect(held == "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException")
                    }
                }
                // A block for a client that holds no lease on the file.
                let noLease = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.addBlock("/errors/file", clientName: "DFSClient_second", fileId: first.fileID)
                }
                #expect(noLease == "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException")
                #expect(try await client.complete("/errors/file", clientName: "DFSClient_first", fileId: first.fileID, last: nil))

                // An existing file without OVERWRITE; with it, a new file takes its place.
                let exists = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.create("/errors/file", clientName: "DFSClient_second")
                }
                #expect(exists == "org.apache.hadoop.fs.FileAlreadyExistsException")
                let replaced = try await client.create(
                    "/errors/file", clientName: "DFSClient_second", flags: HadoopRPCTestClient.createFlag | HadoopRPCTestClient.overwriteFlag)
                #expect(replaced.length == 0)
                var closed = Hadoop_Hdfs_IsFileClosedRequestProto()
                closed.src = "/errors/file"
                #expect(try await !client.call("isFileClosed", closed, as: Hadoop_Hdfs_IsFileClosedResponseProto.self).result)
                let notHolder = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.addBlock("/errors/file", clientName: "DFSClient_first", fileId: replaced.fileID)
                }
                #expect(notHolder == "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException")
                // Without CREATE, only an existing file may be opened (replaced).
                let missing = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.create("/errors/none", clientName: "DFSClient_second", flags: HadoopRPCTestClient.overwriteFlag)
                }
                #expect(missing == "java.io.FileNotFoundException")
                let noParent = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.create("/errors/no/parent", clientName: "DFSClient_second", createParent: false)
                }
                #expect(noParent == "java.io.FileNotFoundException")

                let absent = await HadoopRPCTestClient.remoteErrorClass { _ = try await client.blockLocations("/errors/absent") }
                #expect(absent == "java.io.FileNotFoundException")
                let directory = await HadoopRPCTestClient.remoteErrorClass { _ = try await client.blockLocations("/errors") }
                #expect(directory == "java.io.FileNotFoundException")

                var safeMode = Hadoop_Hdfs_SetSafeModeRequestProto()
                safeMode.action = .safemodeGet
                #expect(try await !client.call("setSafeMode", safeMode, as: Hadoop_Hdfs_SetSafeModeResponseProto.self).result)

                // A batched listing is not served: answered at once, the connection goes on.
                var batched = Hadoop_Hdfs_GetBatchedListingRequestProto()
                batched.paths = ["/errors"]
                batched.startAfter = Data()
                batched.needLocation = false
                let unserved = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("getBatchedListing", batched, as: Hadoop_Hdfs_GetBatchedListingResponseProto.self)
                }
                #expect(unserved == "org.apache.hadoop.ipc.RpcNoSuchMethodException")
                #expect(try await client.fileInfo("/errors/file") != nil)
            }
            // Another user: no writing in a directory of someone else, no reading a private file,
            // but the listing still answers (without that file's blocks).
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort, user: "mallory") { client in
                let denied = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.create("/owned/mine", clientName: "DFSClient_mallory")
                }
                #expect(denied == "org.apache.hadoop.security.AccessControlException")
                let unreadable = await HadoopRPCTestClient.remoteErrorClass { _ = try await client.blockLocations("/owned/secret") }
                #expect(unreadable == "org.apache.hadoop.security.AccessControlException")
                var append = Hadoop_Hdfs_AppendRequestProto()
                append.src = "/owned/secret"
                append.clientName = "DFSClient_mallory"
                let noAppend = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("append", append, as: Hadoop_Hdfs_AppendResponseProto.self)
                }
                #expect(noAppend == "org.apache.hadoop.security.AccessControlException")
                var listing = Hadoop_Hdfs_GetListingRequestProto()
                listing.src = "/owned"
                listing.startAfter = Data()
                listing.needLocation = true
                let listed = try await client.call("getListing", listing, as: Hadoop_Hdfs_GetListingResponseProto.self)
                let secret = try #require(listed.dirList.partialListing.first { String(decoding: $0.path, as: UTF8.self) == "secret" })
                #expect(secret.hasLocations)
                #expect(secret.locations.blocks.isEmpty)
            }
        }
    }

    @Test func badFileDataRequestsGetClearErrorsAndTheServerGoesOn() async throws {
        try await Self.withCluster(dataNodes: 1) { cluster, strata in
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                // A request body that is not the method's message.
                var header = Hadoop_Common_RequestHeaderProto()
                header.methodName = "addBlock"
                header.declaringClassProtocolName = HadoopRPC.clientProtocolName
                header.clientProtocolVersion = 1
                var garbage = ByteBuffer()
                Varint.write(4, to: &garbage)
                garbage.writeBytes([0xFF, 0xFF, 0xFF, 0xFF])
                try await client.send(
                    client.packet([client.delimited(client.rpcHeader(callId: 500)), client.delimited(header), Array(buffer: garbage)]))
                let malformed = try #require(try await client.readResponse())
                #expect(Int32(bitPattern: malformed.header.callID) == 500)
                #expect(malformed.header.exceptionClassName == "org.apache.hadoop.ipc.RpcServerException")
                #expect(malformed.header.errorDetail == .errorRpcServer)

                // Calls without the client name a lease needs, and about blocks that do not exist.
                let noClient = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.create("/bad/file", clientName: "")
                }
                #expect(noClient == "java.lang.IllegalArgumentException")
                var fsync = Hadoop_Hdfs_FsyncRequestProto()
                fsync.src = "/bad/file"
                fsync.client = ""
                let noFsyncClient = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("fsync", fsync, as: Hadoop_Hdfs_FsyncResponseProto.self)
                }
                #expect(noFsyncClient == "java.lang.IllegalArgumentException")
                var update = Hadoop_Hdfs_UpdateBlockForPipelineRequestProto()
                update.block.poolID = "BP-elsewhere"
                update.block.blockID = 12345
                update.block.generationStamp = 1
                update.clientName = "DFSClient_bad"
                let unknownBlock = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("updateBlockForPipeline", update, as: Hadoop_Hdfs_UpdateBlockForPipelineResponseProto.self)
                }
                #expect(unknownBlock == "java.io.IOException")
                // Appending to a new block is refused, in the words hdfs-native looks for.
                try await strata.createEmpty("/bad/closed", replication: 1)
                var append = Hadoop_Hdfs_AppendRequestProto()
                append.src = "/bad/closed"
                append.clientName = "DFSClient_bad"
                append.flag = 0x04 | 0x20
                let newBlock = await HadoopRPCTestClient.remoteErrorClass {
                    _ = try await client.call("append", append, as: Hadoop_Hdfs_AppendResponseProto.self)
                }
                #expect(newBlock == "java.lang.UnsupportedOperationException")

                // The connection, and the name node for other clients, go on.
                #expect(try await client.fileInfo("/bad/closed")?.length == 0)
                #expect(try await strata.status("/bad/closed")?.kind == .file)
            }
        }
    }
}
