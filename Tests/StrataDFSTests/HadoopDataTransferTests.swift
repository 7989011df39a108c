import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import StrataBlockFormat
import StrataClient
import StrataDataNode
import StrataHadoopWire
import StrataTestKit
import Testing

@testable import StrataWire

/// Hadoop's DataTransferProtocol on the data nodes' transfer port, spoken by a small client
/// that frames requests, packets and acks as Hadoop's Java client does, against loopback
/// clusters.
@Suite(.serialized) struct HadoopDataTransferTests {
    static let user = "strata"

    /// A file written with Strata's client, its first block and the data nodes holding it.
    func writeWithStrata(_ cluster: LocalCluster, _ path: String, _ data: [UInt8], blockSize: UInt64? = nil) async throws -> Strata_Wire_LocatedBlocks {
        try await withClient(cluster) { client in
            try await put(client, path, data, blockSize: blockSize)
            return try await client.blockLocations(path)
        }
    }

    func node(_ cluster: LocalCluster, _ info: Strata_Wire_DatanodeInfo) throws -> DataNode {
        try #require(cluster.dataNodes.first { $0.nodeId == info.nodeID })
    }

    // MARK: - The shared port

    @Test func theSnifferWaitsForJustEnoughBytesToTellTheProtocols() {
        let magics: [[UInt8]] = [Array("STDT".utf8), HadoopDataTransfer.magic]
        #expect(PortProtocolSniffer.verdict([], magics: magics) == .needMoreBytes)
        #expect(PortProtocolSniffer.verdict(Array("ST".utf8), magics: magics) == .needMoreBytes)
        #expect(PortProtocolSniffer.verdict(Array("STDT".utf8) + [1, 0], magics: magics) == .chosen(0))
        #expect(PortProtocolSniffer.verdict([0], magics: magics) == .chosen(1))
        #expect(PortProtocolSniffer.verdict([0, 28, 81], magics: magics) == .chosen(1))
        #expect(PortProtocolSniffer.verdict(Array("SU".utf8), magics: magics) == .unknown)
        #expect(PortProtocolSniffer.verdict(Array("hrpc".utf8), magics: magics) == .unknown)
        // The name node's port: 4-byte magics only, as before.
        let nameNode: [[UInt8]] = [Array("STRT".utf8), Array("hrpc".utf8)]
        #expect(PortProtocolSniffer.verdict(Array("hrp".utf8), magics: nameNode) == .needMoreBytes)
        #expect(PortProtocolSniffer.verdict(Array("hrpc".utf8) + [9], magics: nameNode) == .chosen(1))
        #expect(PortProtocolSniffer.verdict([0, 28], magics: nameNode) == .unknown)
    }

    // MARK: - Reads

    @Test func readsAnyRangeWithEveryChunkChecksumOnOneConnection() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = 64 * 1024 }) { cluster in
            let data = logLikeBytes(700_001, seed: 7)
            let located = try await writeWithStrata(cluster, "/hadoop-read", data)
            let block = try #require(located.blocks.first)
            let holder = try node(cluster, block.locations[0])
            let client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            defer { Task { await client.close() } }
            let length = UInt64(data.count)
            // Whole block, chunk-aligned and not, across frame boundaries (64 KiB frames),
            // a range ending at the block's end, and an empty one: one connection, reused for
            // every read as Hadoop clients do.
            let ranges: [(UInt64, UInt64)] = [
                (0, length), (1, 100), (511, 2), (513, 70_000), (65_535, 3), (131_000, 200_000), (length - 1, 1), (length - 700, 700), (length, 0),
            ]
            for (offset, count) in ranges {
                let read = try await hadoopReadBlock(client, hadoopBlock(block.block), offset: offset, length: count)
                #expect(read.response.status == .success, "\(offset)+\(count): \(read.response.message)")
                let info = read.response.readOpChecksumInfo
                #expect(info.checksum.type == .checksumCrc32C && info.checksum.bytesPerChecksum == 512)
                #expect(info.chunkOffset == offset - offset % 512, "chunk offset for \(offset)")
                let start = Int(info.chunkOffset)
                // The packets cover the range, widened to whole chunks (within the block).
                #expect(start + read.data.count >= Int(offset + count))
                expectSameBytes(read.data, Array(data[start..<(start + read.data.count)]), "bytes of \(offset)+\(count)")
                #expect(read.checksumsVerified == (read.data.count + 511) / 512, "every chunk carried its CRC32C")
                if count > 0 { #expect(read.packets >= 1) }
            }
            // sendChecksums false: the same bytes, no checksums.
            let plain = try await hadoopReadBlock(client, hadoopBlock(block.block), offset: 1000, length: 100_000, sendChecksums: false)
            #expect(plain.response.readOpChecksumInfo.checksum.type == .checksumNull)
            #expect(plain.checksumsVerified == 0)
            expectSameBytes(plain.data, Array(data[512..<(512 + plain.data.count)]), "bytes without checksums")
        }
    }

    @Test func readErrorsAreAnsweredAndTheNodeKeepsServing() async throws {
        try await withCluster { cluster in
            let data = randomBytes(10_000, seed: 3)
            let located = try await writeWithStrata(cluster, "/hadoop-errors", data)
            let block = try #require(located.blocks.first).block
            let holder = try node(cluster, located.blocks[0].locations[0])

            var unknown = block
            unknown.blockID += 1_000_000
            var stale = block
            stale.generationStamp += 1
            for (what, request, offset, length, status, words) in [
                ("unknown block", unknown, UInt64(0), UInt64(10), Hadoop_Hdfs_Status.error, "Replica not found"),
                ("newer generation stamp", stale, 0, 10, .error, "gen stamp"),
                ("offset past the end", block, 10_001, 1, .errorInvalid, "don't match block"),
                ("length past the end", block, 9_000, 1_001, .errorInvalid, "don't match block"),
            ] {
                let client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
                let read = try await hadoopReadBlock(client, hadoopBlock(request), offset: offset, length: length)
                #expect(read.response.status == status, "\(what)")
                #expect(read.response.message.contains(words), "\(what): \(read.response.message)")
                #expect(await client.closedByPeer(), "\(what): the connection is closed after the error")
            }
            // A good read, then Strata's own client, still work.
            let client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            let read = try await hadoopReadBlock(client, hadoopBlock(block), offset: 0, length: UInt64(data.count))
            expectSameBytes(read.data, data, "read after the errors")
            await client.close()
            try await withClient(cluster) { strata in expectSameBytes(try await strata.readAll("/hadoop-errors"), data, "Strata read") }
        }
    }

    /// A stored frame damaged on disk: the read stops before it (no last packet, as HDFS's data
    /// nodes end a read they cannot finish), every byte sent before is right, the node reports
    /// the replica, and the name node stops handing it out.
    @Test func aDamagedFrameEndsTheReadAndIsReported() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = 64 * 1024 }) { cluster in
            let data = logLikeBytes(3_000_000, seed: 17)
            let located = try await writeWithStrata(cluster, "/hadoop-damaged", data)
            let block = try #require(located.blocks.first)
            let victim = try node(cluster, block.locations[0])
            let id = block.block.blockID
            try flipByteInFrame(of: try #require(victim.store.path(of: id)), blockId: id, frame: 30)
            let client = try await HadoopTransferTestClient.connect(to: victim, group: cluster.group)
            defer { Task { await client.close() } }
            try await client.send(.readBlock, readOp(hadoopBlock(block.block), offset: 0, length: UInt64(data.count)))
            #expect(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self)?.status == .success)
            var received: [UInt8] = []
            while let packet = try await client.receivePacket() {
                #expect(!packet.header.lastPacketInBlock, "a read through a damaged frame must not end normally")
                #expect(packet.header.offsetInBlock == Int64(received.count))
                packet.data.withUnsafeReadableBytes { received.append(contentsOf: $0) }
            }
            #expect(received.count <= 30 * 64 * 1024, "bytes of the damaged frame were sent")
            expectSameBytes(received, Array(data[0..<received.count]), "bytes before the damaged frame")
            try await withClient(cluster) { strata in
                #expect(try await eventually(timeoutSeconds: 30) {
                    try await strata.blockLocations("/hadoop-damaged").blocks.first?.locations.contains { $0.nodeID == victim.nodeId } == false
                }, "the damaged replica is still handed out")
                expectSameBytes(try await strata.readAll("/hadoop-damaged"), data, "read from the other replicas")
            }
        }
    }

    @Test func aReplicaBeingWrittenIsReadableUpToWhatItHolds() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { strata in
                let data = logLikeBytes(300_000, seed: 11)
                let stream = try await strata.create("/hadoop-open")
                try await stream.write(data)
                try await stream.hflush()
                let located = try await strata.blockLocations("/hadoop-open")
                let block = located.lastBlock
                let holder = try node(cluster, block.locations[0])
                let client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
                let read = try await hadoopReadBlock(client, hadoopBlock(block.block), offset: 100, length: UInt64(data.count - 100))
                #expect(read.response.status == .success, "\(read.response.message)")
                expectSameBytes(read.data, Array(data[0..<read.data.count]), "flushed bytes of the open block")
                #expect(read.data.count == data.count)
                await client.close()
                try await stream.close()
            }
        }
    }

    // MARK: - Writes

    /// A block allocated through the name node (as the name node's Hadoop `addBlock` does),
    /// for a file created by `clientName`.
    struct AllocatedBlock {
        var path: String
        var fileId: UInt64
        var located: Strata_Wire_LocatedBlock
    }

    func allocate(_ cluster: LocalCluster, _ path: String, clientName: String) async throws -> AllocatedBlock {
        let rpc = ServiceClient(host: "127.0.0.1", port: cluster.nameNodePort, group: cluster.group)
        defer { Task { await rpc.close() } }
        var create = Strata_Wire_CreateRequest()
        create.path = path
        create.permission = 0o644
        create.createParent = true
        let created: Strata_Wire_CreateResponse = try await rpc.call(.create, create, user: Self.user, clientName: clientName)
        var add = Strata_Wire_AddBlockRequest()
        add.path = path
        add.fileID = created.status.fileID
        let added: Strata_Wire_AddBlockResponse = try await rpc.call(.addBlock, add, user: Self.user, clientName: clientName)
        return AllocatedBlock(path: path, fileId: created.status.fileID, located: added.block)
    }

    func complete(_ cluster: LocalCluster, _ allocated: AllocatedBlock, last: Strata_Wire_ExtendedBlock, clientName: String) async throws {
        let rpc = ServiceClient(host: "127.0.0.1", port: cluster.nameNodePort, group: cluster.group)
        defer { Task { await rpc.close() } }
        var request = Strata_Wire_CompleteRequest()
        request.path = allocated.path
        request.fileID = allocated.fileId
        request.last = last
        // Every node reported its replica before the last packet was acknowledged.
        let response: Strata_Wire_BoolResponse = try await rpc.call(.complete, request, user: Self.user, clientName: clientName)
        #expect(response.result, "complete succeeds at once: every replica is reported")
    }

    /// Sends packets and collects the acks the first node sends back for them.
    /// After a recovery: the replicas on `nodes` are finished under `block`'s generation stamp
    /// holding all of `data`, the file closes with its last block so, and reads back as `data`.
    func expectFinishedThenClose(
        _ cluster: LocalCluster, _ allocated: AllocatedBlock, on nodes: [DataNode], as block: Strata_Wire_ExtendedBlock, _ data: [UInt8],
        clientName: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        for node in nodes {
            let replica = try #require(node.store.replica(block.blockID), sourceLocation: sourceLocation)
            #expect(
                replica.isFinalized && replica.generationStamp == block.generationStamp && replica.rawLength == UInt64(data.count),
                "\(what): replica on \(node.nodeId)", sourceLocation: sourceLocation)
        }
        var last = block
        last.numBytes = UInt64(data.count)
        try await complete(cluster, allocated, last: last, clientName: clientName)
        try await withClient(cluster) { strata in
            expectSameBytes(try await strata.readAll(allocated.path), data, what, sourceLocation: sourceLocation)
        }
    }

    func sendAndAcknowledge(
        _ client: HadoopTransferTestClient, _ packets: [HadoopPacket], nodes: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [Hadoop_Hdfs_PipelineAckProto] {
        for packet in packets { try await client.send(packet) }
        var acks: [Hadoop_Hdfs_PipelineAckProto] = []
        for packet in packets {
            guard let ack = try await client.receive(Hadoop_Hdfs_PipelineAckProto.self) else { break }
            acks.append(ack)
            #expect(ack.seqno == packet.header.seqno, "acks come in order", sourceLocation: sourceLocation)
            if ack.reply.contains(where: { $0 != .success }) { break }
            #expect(ack.reply == Array(repeating: .success, count: nodes), sourceLocation: sourceLocation)
            #expect(ack.flag == Array(repeating: 0, count: nodes), sourceLocation: sourceLocation)
        }
        return acks
    }

    @Test(arguments: [Hadoop_Hdfs_ChecksumTypeProto.checksumCrc32C, .checksumCrc32])
    func aBlockWrittenThroughAThreeNodePipelineReadsBackIdentical(_ type: Hadoop_Hdfs_ChecksumTypeProto) async throws {
        try await withCluster { cluster in
            let clientName = "DFSClient_hadoop_\(type)"
            let allocated = try await allocate(cluster, "/hadoop-written-\(type)", clientName: clientName)
            let located = allocated.located
            #expect(located.locations.count == 3)
            let nodes = try located.locations.map { try node(cluster, $0) }
            let data = logLikeBytes(1_000_000, seed: 21)
            let checksum = HadoopChunkChecksum(type: type, bytesPerChecksum: type == .checksumCrc32 ? 1024 : 512)
            let client = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            try await client.send(.writeBlock, writeOp(hadoopBlock(located.block), targets: nodes.dropFirst().map(hadoopNode), checksum: checksum))
            let response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(response.status == .success, "\(response.message)")
            var packets = hadoopPackets(data, checksum: checksum)
            // An hsync'ed packet, and a heartbeat of an idle writer between two packets.
            packets[2].header.syncBlock = true
            packets.insert(
                HadoopPacket(
                    offsetInBlock: 0, sequenceNumber: HadoopDataTransfer.heartbeatSequenceNumber, last: false, checksums: ByteBuffer(),
                    data: ByteBuffer()), at: 4)
            let acks = try await sendAndAcknowledge(client, packets, nodes: 3)
            #expect(acks.count == packets.count)
            #expect(acks[4].seqno == HadoopDataTransfer.heartbeatSequenceNumber)
            await client.close()

            var last = located.block
            last.numBytes = UInt64(data.count)
            try await complete(cluster, allocated, last: last, clientName: clientName)
            try await withClient(cluster) { strata in
                expectSameBytes(try await strata.readAll(allocated.path), data, "read back through Strata's client")
            }
            for node in nodes {
                let replica = try #require(node.store.replica(located.block.blockID))
                #expect(replica.isFinalized && replica.rawLength == UInt64(data.count))
                // Compressed once, on the first node: log-like data is stored in far fewer bytes.
                #expect(replica.storedBytes < UInt64(data.count) / 2)
            }
        }
    }

    /// A block whose data ends exactly at a frame boundary, its empty last packet sent on its
    /// own once every data packet is acknowledged (as hdfs-native sends a full block's): the
    /// replicas are finished and reported at that length.
    @Test func aBlockEndingOnAFrameBoundaryIsFinishedByItsEmptyLastPacket() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = 64 * 1024 }) { cluster in
            let clientName = "DFSClient_hadoop_boundary"
            let allocated = try await allocate(cluster, "/hadoop-boundary", clientName: clientName)
            let located = allocated.located
            let nodes = try located.locations.map { try node(cluster, $0) }
            let data = logLikeBytes(4 * 64 * 1024, seed: 23)
            let checksum = HadoopChunkChecksum.crc32c512
            let client = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            defer { Task { await client.close() } }
            try await client.send(.writeBlock, writeOp(hadoopBlock(located.block), targets: nodes.dropFirst().map(hadoopNode), checksum: checksum))
            #expect(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self)?.status == .success)
            var packets = hadoopPackets(data, checksum: checksum, chunksPerPacket: 128)
            let last = packets.removeLast()
            #expect(try await sendAndAcknowledge(client, packets, nodes: 3).count == packets.count)
            #expect(try await sendAndAcknowledge(client, [last], nodes: 3).count == 1, "the last packet is acknowledged")
            var block = located.block
            block.numBytes = UInt64(data.count)
            try await complete(cluster, allocated, last: block, clientName: clientName)
            for node in nodes {
                let replica = try #require(node.store.replica(located.block.blockID))
                #expect(replica.isFinalized && replica.rawLength == UInt64(data.count))
            }
        }
    }

    @Test func aBlockAHadoopClientWroteHasTheClustersFrameSizeSoStrataAppendsToIt() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = 4096 }) { cluster in
            let clientName = "DFSClient_hadoop_frames"
            let allocated = try await allocate(cluster, "/hadoop-frames", clientName: clientName)
            let nodes = try allocated.located.locations.map { try node(cluster, $0) }
            let data = logLikeBytes(100_001, seed: 23)
            let client = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            try await client.send(.writeBlock, writeOp(hadoopBlock(allocated.located.block), targets: nodes.dropFirst().map(hadoopNode), checksum: .crc32c512))
            #expect(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self)?.status == .success)
            let packets = hadoopPackets(data, checksum: .crc32c512)
            #expect(try await sendAndAcknowledge(client, packets, nodes: nodes.count).count == packets.count)
            await client.close()
            var last = allocated.located.block
            last.numBytes = UInt64(data.count)
            try await complete(cluster, allocated, last: last, clientName: clientName)
            for node in nodes {
                #expect(try node.store.openForReading(last.blockID).reader.rawFrameSize == 4096)
            }
            let more = logLikeBytes(50_000, seed: 24)
            try await withClient(cluster) { strata in
                let stream = try await strata.append("/hadoop-frames")
                try await stream.write(more)
                try await stream.close()
                expectSameBytes(try await strata.readAll("/hadoop-frames"), data + more, "Strata's append to a block a Hadoop client wrote")
            }
        }
    }

    @Test func aCorruptedPacketIsRefusedWithErrorChecksum() async throws {
        try await withCluster { cluster in
            let clientName = "DFSClient_hadoop_corrupt"
            let allocated = try await allocate(cluster, "/hadoop-corrupt", clientName: clientName)
            let nodes = try allocated.located.locations.map { try node(cluster, $0) }
            let data = randomBytes(300_000, seed: 5)
            let checksum = HadoopChunkChecksum.crc32c512
            let client = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            try await client.send(.writeBlock, writeOp(hadoopBlock(allocated.located.block), targets: nodes.dropFirst().map(hadoopNode), checksum: checksum))
            #expect(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self)?.status == .success)
            var packets = hadoopPackets(data, checksum: checksum)
            // The third packet's data changes after its checksums were computed.
            let corrupted = 2
            var bytes = Array(packets[corrupted].data.readableBytesView)
            bytes[700] ^= 0x40
            packets[corrupted].data = ByteBuffer(bytes: bytes)
            let acks = try await sendAndAcknowledge(client, Array(packets[0...corrupted]), nodes: 3)
            #expect(acks.count == corrupted + 1)
            #expect(acks.last?.reply.first == .errorChecksum, "the first node refuses the packet")
            #expect(acks.last?.flag.first == UInt32(Hadoop_Hdfs_Status.errorChecksum.rawValue))
            #expect(await client.closedByPeer())
            // What was acknowledged before stays in the replica being written, and nothing of the bad packet.
            let replica = try #require(nodes[0].store.replica(allocated.located.block.blockID))
            #expect(!replica.isFinalized)
            #expect(replica.rawLength == UInt64(packets[corrupted].header.offsetInBlock))
            // The node goes on serving.
            let located = try await writeWithStrata(cluster, "/after-corrupt", data)
            let reader = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            let holder = located.blocks[0].locations.contains { $0.nodeID == nodes[0].nodeId }
            if holder {
                let read = try await hadoopReadBlock(reader, hadoopBlock(located.blocks[0].block), offset: 0, length: UInt64(data.count))
                expectSameBytes(read.data, data, "read after the refused write")
            }
            await reader.close()
        }
    }

    @Test func anUnreachableDownstreamNodeIsNamedAsFirstBadLink() async throws {
        try await withCluster { cluster in
            let allocated = try await allocate(cluster, "/hadoop-bad-link", clientName: "DFSClient_bad_link")
            let first = try node(cluster, allocated.located.locations[0])
            // A port nothing listens on: bound, then closed.
            let probe = try await ServerBootstrap(group: cluster.group).bind(host: "127.0.0.1", port: 0).get()
            let deadPort = probe.localAddress!.port!
            try await probe.close()
            let client = try await HadoopTransferTestClient.connect(to: first, group: cluster.group)
            try await client.send(
                .writeBlock, writeOp(hadoopBlock(allocated.located.block), targets: [hadoopNode(host: "127.0.0.1", port: deadPort)], checksum: .crc32c512))
            let response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(response.status == .error)
            #expect(response.firstBadLink == "127.0.0.1:\(deadPort)")
            await client.close()
        }
    }

    @Test(arguments: [1, 2]) func aDownstreamNodeStoppedMidWriteLosesNoAcknowledgedByte(_ position: Int) async throws {
        try await withCluster({ $0.dataNodes = 4 }) { cluster in
            let clientName = "DFSClient_hadoop_stop_\(position)"
            let allocated = try await allocate(cluster, "/hadoop-stop-\(position)", clientName: clientName)
            let located = allocated.located
            let nodes = try located.locations.map { try node(cluster, $0) }
            let data = logLikeBytes(900_000, seed: UInt64(30 + position))
            let checksum = HadoopChunkChecksum.crc32c512
            let packets = hadoopPackets(data, checksum: checksum)
            let client = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            try await client.send(.writeBlock, writeOp(hadoopBlock(located.block), targets: nodes.dropFirst().map(hadoopNode), checksum: checksum))
            #expect(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self)?.status == .success)
            // Half the packets acknowledged (not on a frame boundary), then a downstream node stops.
            let half = 7
            let acknowledgedAcks = try await sendAndAcknowledge(client, Array(packets[0..<half]), nodes: 3)
            #expect(acknowledgedAcks.count == half)
            let acknowledged = UInt64(packets[half].header.offsetInBlock)
            let victim = nodes[position]
            await victim.shutdown()
            // The rest: the first ack that is not all SUCCESS names the stopped node last.
            let rest = try await sendAndAcknowledge(client, Array(packets[half...]), nodes: 3)
            let failed = try #require(rest.last)
            #expect(failed.reply.last == .error && failed.reply.count == position + 1, "\(failed.reply)")
            await client.close()

            // Every acknowledged byte is in the surviving replicas.
            let survivors = nodes.filter { $0.nodeId != victim.nodeId }
            for survivor in survivors {
                let reader = try await HadoopTransferTestClient.connect(to: survivor, group: cluster.group)
                let read = try await hadoopReadBlock(reader, hadoopBlock(located.block), offset: 0, length: acknowledged)
                #expect(read.response.status == .success, "\(read.response.message)")
                expectSameBytes(Array(read.data.prefix(Int(acknowledged))), Array(data[0..<Int(acknowledged)]), "acknowledged bytes on a survivor")
                await reader.close()
            }

            // Pipeline recovery as Hadoop's client does it: a replacement node gets the
            // acknowledged part from a survivor (OP_TRANSFER_BLOCK), the block a new generation
            // stamp, the new pipeline's replicas are cut to the acknowledged bytes, and the rest is
            // sent again.
            let rpc = ServiceClient(host: "127.0.0.1", port: cluster.nameNodePort, group: cluster.group)
            defer { Task { await rpc.close() } }
            var bump = Strata_Wire_UpdateBlockForPipelineRequest()
            bump.path = allocated.path
            bump.fileID = allocated.fileId
            bump.block = located.block
            bump.existingNodeIds = survivors.map(\.nodeId)
            bump.failedNodeIds = [victim.nodeId]
            bump.wantReplacement = true
            let bumped: Strata_Wire_UpdateBlockForPipelineResponse = try await rpc.call(.updateBlockForPipeline, bump, user: Self.user, clientName: clientName)
            let newStamp = bumped.block.generationStamp
            #expect(newStamp > located.block.generationStamp)
            #expect(bumped.hasReplacement)
            let replacement = try node(cluster, bumped.replacement)
            var oldBlock = located.block
            oldBlock.numBytes = acknowledged
            let transfer = try await HadoopTransferTestClient.connect(to: survivors[0], group: cluster.group)
            var transferOp = Hadoop_Hdfs_OpTransferBlockProto()
            transferOp.header.baseHeader.block = hadoopBlock(oldBlock)
            transferOp.header.clientName = clientName
            transferOp.targets = [hadoopNode(replacement)]
            try await transfer.send(.transferBlock, transferOp)
            let transferred = try #require(try await transfer.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(transferred.status == .success, "\(transferred.message)")
            await transfer.close()

            let pipeline = survivors + [replacement]
            let recovery = try await HadoopTransferTestClient.connect(to: pipeline[0], group: cluster.group)
            try await recovery.send(
                .writeBlock,
                writeOp(
                    hadoopBlock(oldBlock), targets: pipeline.dropFirst().map(hadoopNode), checksum: checksum,
                    stage: .pipelineSetupStreamingRecovery, latestGenerationStamp: newStamp, acknowledgedBytes: acknowledged))
            let setup = try #require(try await recovery.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(setup.status == .success, "\(setup.message)")
            var update = Strata_Wire_UpdatePipelineRequest()
            update.path = allocated.path
            update.fileID = allocated.fileId
            update.oldBlock = located.block
            update.newBlock = bumped.block
            update.newBlock.numBytes = acknowledged
            update.nodeIds = pipeline.map(\.nodeId)
            let _: Strata_Wire_Empty = try await rpc.call(.updatePipeline, update, user: Self.user, clientName: clientName)
            let resent = try await sendAndAcknowledge(recovery, Array(packets[half...]), nodes: 3)
            #expect(resent.count == packets.count - half)
            await recovery.close()
            try await expectFinishedThenClose(cluster, allocated, on: pipeline, as: bumped.block, data, clientName: clientName, "the recovered file")
        }
    }

    @Test func closeRecoveryGivesFinishedReplicasTheNewGenerationStamp() async throws {
        try await withCluster { cluster in
            let clientName = "DFSClient_hadoop_close_recovery"
            let allocated = try await allocate(cluster, "/hadoop-close-recovery", clientName: clientName)
            let located = allocated.located
            let nodes = try located.locations.map { try node(cluster, $0) }
            let data = logLikeBytes(333_333, seed: 81)
            let checksum = HadoopChunkChecksum.crc32c512
            let client = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            try await client.send(.writeBlock, writeOp(hadoopBlock(located.block), targets: nodes.dropFirst().map(hadoopNode), checksum: checksum))
            #expect(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self)?.status == .success)
            let packets = hadoopPackets(data, checksum: checksum)
            #expect(try await sendAndAcknowledge(client, packets, nodes: 3).count == packets.count)
            await client.close()
            // As if the last packet's ack had been lost: the writer closes the block again on
            // two of the nodes under a new generation stamp, sending only the last packet.
            let rpc = ServiceClient(host: "127.0.0.1", port: cluster.nameNodePort, group: cluster.group)
            defer { Task { await rpc.close() } }
            let survivors = Array(nodes.prefix(2))
            var bump = Strata_Wire_UpdateBlockForPipelineRequest()
            bump.path = allocated.path
            bump.fileID = allocated.fileId
            bump.block = located.block
            bump.existingNodeIds = survivors.map(\.nodeId)
            bump.failedNodeIds = [nodes[2].nodeId]
            let bumped: Strata_Wire_UpdateBlockForPipelineResponse = try await rpc.call(.updateBlockForPipeline, bump, user: Self.user, clientName: clientName)
            var oldBlock = located.block
            oldBlock.numBytes = UInt64(data.count)
            let recovery = try await HadoopTransferTestClient.connect(to: survivors[0], group: cluster.group)
            try await recovery.send(
                .writeBlock,
                writeOp(
                    hadoopBlock(oldBlock), targets: [hadoopNode(survivors[1])], checksum: checksum, stage: .pipelineCloseRecovery,
                    latestGenerationStamp: bumped.block.generationStamp, acknowledgedBytes: UInt64(data.count)))
            let setup = try #require(try await recovery.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(setup.status == .success, "\(setup.message)")
            var update = Strata_Wire_UpdatePipelineRequest()
            update.path = allocated.path
            update.fileID = allocated.fileId
            update.oldBlock = located.block
            update.newBlock = bumped.block
            update.newBlock.numBytes = UInt64(data.count)
            update.nodeIds = survivors.map(\.nodeId)
            let _: Strata_Wire_Empty = try await rpc.call(.updatePipeline, update, user: Self.user, clientName: clientName)
            let lastPacket = packets[packets.count - 1]
            #expect(try await sendAndAcknowledge(recovery, [lastPacket], nodes: 2).count == 1)
            await recovery.close()
            try await expectFinishedThenClose(cluster, allocated, on: survivors, as: bumped.block, data, clientName: clientName, "the block closed again")
        }
    }

    @Test func appendContinuesABlockInsideItsLastFrame() async throws {
        try await withCluster { cluster in
            let first = logLikeBytes(300_000, seed: 41)
            let more = logLikeBytes(200_000, seed: 42)
            let located = try await writeWithStrata(cluster, "/hadoop-append", first)
            let block = try #require(located.blocks.first)
            let clientName = "DFSClient_hadoop_append"
            let rpc = ServiceClient(host: "127.0.0.1", port: cluster.nameNodePort, group: cluster.group)
            defer { Task { await rpc.close() } }
            var append = Strata_Wire_AppendRequest()
            append.path = "/hadoop-append"
            // The name node gives the last block a new generation stamp; its replicas keep the
            // previous one until the append's pipeline reopens them.
            let appended: Strata_Wire_AppendResponse = try await rpc.call(.append, append, user: Self.user, clientName: clientName)
            let lastBlock = appended.lastBlock
            #expect(lastBlock.block.blockID == block.block.blockID)
            #expect(lastBlock.block.generationStamp > appended.previousGenerationStamp)
            let nodes = try lastBlock.locations.map { try node(cluster, $0) }
            var current = lastBlock.block
            current.generationStamp = appended.previousGenerationStamp

            let checksum = HadoopChunkChecksum.crc32c512
            let client = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            try await client.send(
                .writeBlock,
                writeOp(
                    hadoopBlock(current), targets: nodes.dropFirst().map(hadoopNode), checksum: checksum, stage: .pipelineSetupAppend,
                    latestGenerationStamp: lastBlock.block.generationStamp, acknowledgedBytes: UInt64(first.count)))
            let response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(response.status == .success, "\(response.message)")
            let all = first + more
            // Hadoop's client first fills the partial last chunk (300,000 is not a multiple of 512).
            let fill = 512 - first.count % 512
            var packets = hadoopPackets(Array(all[0..<(first.count + fill)]), from: first.count, checksum: checksum)
            packets.removeLast()
            packets += hadoopPackets(all, from: first.count + fill, checksum: checksum, firstSequence: 1)
            let acks = try await sendAndAcknowledge(client, packets, nodes: nodes.count)
            #expect(acks.count == packets.count)
            await client.close()
            var last = lastBlock.block
            last.numBytes = UInt64(all.count)
            let allocated = AllocatedBlock(path: "/hadoop-append", fileId: appended.status.fileID, located: lastBlock)
            try await complete(cluster, allocated, last: last, clientName: clientName)
            try await withClient(cluster) { strata in
                expectSameBytes(try await strata.readAll("/hadoop-append"), all, "the appended file")
            }
            for node in nodes {
                #expect(node.store.replica(block.block.blockID)?.generationStamp == lastBlock.block.generationStamp)
            }
        }
    }

    // MARK: - OP_BLOCK_CHECKSUM

    @Test func blockChecksumsMakeTheFileChecksumWebHDFSGives() async throws {
        try await withCluster { cluster in
            let data = logLikeBytes(2_500_000, seed: 51)
            let located = try await writeWithStrata(cluster, "/hadoop-sum", data, blockSize: 1024 * 1024)
            #expect(located.blocks.count == 3)
            var fileMD5 = MD5()
            var crcPerBlock: UInt64 = 0
            for (index, block) in located.blocks.enumerated() {
                let client = try await HadoopTransferTestClient.connect(to: try node(cluster, block.locations[0]), group: cluster.group)
                var op = Hadoop_Hdfs_OpBlockChecksumProto()
                op.header.block = hadoopBlock(block.block)
                try await client.send(.blockChecksum, op)
                let response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
                #expect(response.status == .success, "\(response.message)")
                let sum = response.checksumResponse
                #expect(sum.bytesPerCrc == 512 && sum.crcType == .checksumCrc32C)
                #expect(sum.crcPerBlock == (block.block.numBytes + 511) / 512)
                #expect(sum.blockChecksum.count == 16)
                if index == 0 { crcPerBlock = sum.crcPerBlock }
                fileMD5.update(Array(sum.blockChecksum))
                await client.close()
            }
            var expected: [UInt8] = []
            for shift in stride(from: 24, through: 0, by: -8) { expected.append(UInt8(truncatingIfNeeded: 512 >> shift)) }
            for shift in stride(from: 56, through: 0, by: -8) { expected.append(UInt8(truncatingIfNeeded: crcPerBlock >> UInt64(shift))) }
            expected += fileMD5.finish()

            let http = HTTPClient(eventLoopGroupProvider: .shared(cluster.group))
            defer { _ = http.shutdown() }
            let url = "http://127.0.0.1:\(cluster.nameNodeHTTPPort)/webhdfs/v1/hadoop-sum?op=GETFILECHECKSUM&user.name=\(Self.user)"
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
            #expect(response.status == .ok)
            let body = try await response.body.collect(upTo: 1 << 20)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])
            let checksum = try #require(json["FileChecksum"] as? [String: Any])
            #expect(checksum["algorithm"] as? String == "MD5-of-\(crcPerBlock)MD5-of-512CRC32C")
            let hex = expected.map { String(format: "%02x", $0) }.joined()
            #expect(checksum["bytes"] as? String == hex)
        }
    }

    // MARK: - Malformed input

    @Test func malformedRequestsGetClearErrorsAndTheNodeKeepsServing() async throws {
        try await withCluster { cluster in
            let data = randomBytes(50_000, seed: 61)
            let located = try await writeWithStrata(cluster, "/hadoop-malformed", data)
            let block = located.blocks[0]
            let holder = try node(cluster, block.locations[0])

            // A version this node does not speak.
            var client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            try await client.send(.readBlock, readOp(hadoopBlock(block.block), offset: 0, length: 10), version: 27)
            var response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(response.status == .errorInvalid && response.message.contains("Version Mismatch (Expected: 28, Received: 27"), "\(response.message)")
            #expect(await client.closedByPeer())

            // An op that does not exist.
            client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            try await client.send([0, 28, 99, 0])
            response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(response.status == .errorInvalid && response.message.contains("Unknown op 99"), "\(response.message)")
            #expect(await client.closedByPeer())

            // An op message claiming 100 MiB.
            client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            var oversized = ByteBuffer(bytes: [0, 28, HadoopDataTransfer.Op.readBlock.rawValue])
            oversized.writeBytes([0x80, 0x80, 0x80, 0x32])  // varint 104857600
            try await client.send(oversized)
            response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(response.status == .errorInvalid && response.message.contains("over the limit"), "\(response.message)")
            #expect(await client.closedByPeer())

            // A message that is not an OpReadBlockProto.
            client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            try await client.send([0, 28, HadoopDataTransfer.Op.readBlock.rawValue, 3, 0xFF, 0xFF, 0xFF])
            response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(response.status == .errorInvalid, "\(response.message)")
            #expect(await client.closedByPeer())

            // An op Strata does not serve.
            client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            var copy = Hadoop_Hdfs_OpBlockChecksumProto()
            copy.header.block = hadoopBlock(block.block)
            try await client.send(.copyBlock, copy)
            response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self))
            #expect(response.status == .errorUnsupported)
            await client.close()

            // Bytes of no protocol at all: closed without an answer.
            client = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            try await client.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
            #expect(await client.closedByPeer())

            // A packet that claims more than 16 MiB, mid-write.
            let allocated = try await allocate(cluster, "/hadoop-oversized-packet", clientName: "DFSClient_malformed")
            let writer = try await HadoopTransferTestClient.connect(to: try node(cluster, allocated.located.locations[0]), group: cluster.group)
            try await writer.send(.writeBlock, writeOp(hadoopBlock(allocated.located.block), targets: [], checksum: .crc32c512))
            #expect(try await writer.receive(Hadoop_Hdfs_BlockOpResponseProto.self)?.status == .success)
            var huge = ByteBuffer()
            huge.writeInteger(UInt32(64 * 1024 * 1024))
            huge.writeInteger(UInt16(25))
            try await writer.send(huge)
            let ack = try #require(try await writer.receive(Hadoop_Hdfs_PipelineAckProto.self))
            #expect(ack.reply.first == .errorInvalid)
            #expect(await writer.closedByPeer())

            // The node still serves Hadoop reads and Strata's client.
            let reader = try await HadoopTransferTestClient.connect(to: holder, group: cluster.group)
            let read = try await hadoopReadBlock(reader, hadoopBlock(block.block), offset: 0, length: UInt64(data.count))
            expectSameBytes(read.data, data, "Hadoop read after malformed requests")
            await reader.close()
            try await withClient(cluster) { strata in expectSameBytes(try await strata.readAll("/hadoop-malformed"), data, "Strata read") }
        }
    }

    @Test func aWriterThatDisconnectsMidBlockLeavesWhatWasAcknowledgedAsAReplicaBeingWritten() async throws {
        try await withCluster { cluster in
            let allocated = try await allocate(cluster, "/hadoop-disconnect", clientName: "DFSClient_disconnect")
            let nodes = try allocated.located.locations.map { try node(cluster, $0) }
            let data = logLikeBytes(400_000, seed: 71)
            let checksum = HadoopChunkChecksum.crc32c512
            let packets = hadoopPackets(data, checksum: checksum)
            let client = try await HadoopTransferTestClient.connect(to: nodes[0], group: cluster.group)
            try await client.send(.writeBlock, writeOp(hadoopBlock(allocated.located.block), targets: nodes.dropFirst().map(hadoopNode), checksum: checksum))
            #expect(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self)?.status == .success)
            let acks = try await sendAndAcknowledge(client, Array(packets[0..<3]), nodes: 3)
            #expect(acks.count == 3)
            let acknowledged = UInt64(packets[3].header.offsetInBlock)
            // Half of the next packet, then the connection drops.
            let partial = try packets[3].encoded()
            try await client.send(partial.getSlice(at: 0, length: partial.readableBytes / 2)!)
            await client.close()
            for node in nodes {
                let settled = try await eventually {
                    guard let replica = node.store.replica(allocated.located.block.blockID) else { return false }
                    return !replica.isFinalized && replica.rawLength == acknowledged
                }
                #expect(settled, "node keeps the acknowledged bytes as a replica being written")
                let reader = try await HadoopTransferTestClient.connect(to: node, group: cluster.group)
                let read = try await hadoopReadBlock(reader, hadoopBlock(allocated.located.block), offset: 0, length: acknowledged)
                expectSameBytes(read.data, Array(data[0..<Int(acknowledged)]), "acknowledged bytes")
                await reader.close()
            }
        }
    }
}
