import Foundation
import NIOCore
import StrataBlockFormat
import StrataClient
import StrataCore
import StrataHadoopWire
import StrataWire

/// A Hadoop data transfer connection: requests, packets and read statuses in; responses, packets
/// and acks out as bytes.
typealias HadoopTransferChannel = NIOAsyncChannel<HadoopTransferInbound, ByteBuffer>

/// Hadoop's DataTransferProtocol on the transfer port, beside Strata's own.
///
/// Hadoop clients (the Java client, hdfs-native) read and write block data as raw bytes with a
/// CRC per 512-byte chunk; Strata stores replicas as compressed, checksummed frames. The data
/// node translates: a read decodes frames (as Strata's own read path does) and computes chunk
/// CRC32Cs; a write verifies the client's chunk checksums (CRC32C or CRC32) and builds frames,
/// compressing each once. Blocks are named by id alone: Strata has one block pool, so any pool id
/// a client sends is accepted.
extension DataNode {
    typealias HadoopInbound = NIOAsyncChannelInboundStream<HadoopTransferInbound>.AsyncIterator
    typealias HadoopOutbound = NIOAsyncChannelOutboundWriter<ByteBuffer>

    /// The transfer port's recognition of Hadoop data transfers (`TransferServer.start`).
    var hadoopTransferProtocol: SharedTransferProtocol {
        SharedTransferProtocol(magic: HadoopDataTransfer.magic) { [self] channel in
            // A writer may shut down its sending side once its last packet is out and still wait
            // for the acknowledgements (hdfs-native does): the inbound stream ends, the outbound
            // stays open for the acks.
            try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HadoopTransferDecoder()))
            let connection = try HadoopTransferChannel(wrappingChannelSynchronously: channel)
            return { [self] in await self.serveHadoop(connection) }
        }
    }

    /// One Hadoop connection: operations one after another until the client closes it, an
    /// operation ends it (a write), or it breaks the protocol.
    func serveHadoop(_ connection: HadoopTransferChannel) async {
        let remote = String(describing: connection.channel.remoteAddress)
        do {
            try await connection.executeThenClose { inbound, outbound in
                var messages = inbound.makeAsyncIterator()
                while let message = try await messages.next() {
                    switch message {
                    case .request(let op, let body):
                        guard try await serveHadoop(op, body, messages: &messages, outbound: outbound) else { return }
                    case .malformed(let error):
                        logger.info("refusing a malformed Hadoop data transfer", metadata: ["from": "\(remote)", "reason": "\(error)"])
                        try await outbound.write(Self.hadoopResponse(.errorInvalid, error.message))
                        return
                    case .packet, .readStatus:
                        try await outbound.write(Self.hadoopResponse(.errorInvalid, "expected an operation"))
                        return
                    }
                }
            }
        } catch {
            logger.debug("Hadoop transfer connection ended: \(error)")
        }
    }

    /// Serves one operation; returns whether the connection may carry another.
    func serveHadoop(_ op: HadoopDataTransfer.Op, _ body: ByteBuffer, messages: inout HadoopInbound, outbound: HadoopOutbound) async throws -> Bool {
        do {
            switch op {
            case .readBlock:
                return try await hadoopRead(HadoopDataTransfer.decode(Hadoop_Hdfs_OpReadBlockProto.self, from: body), messages: &messages, outbound: outbound)
            case .writeBlock:
                try await hadoopWrite(HadoopDataTransfer.decode(Hadoop_Hdfs_OpWriteBlockProto.self, from: body), messages: &messages, outbound: outbound)
                return false
            case .blockChecksum:
                try await hadoopBlockChecksum(HadoopDataTransfer.decode(Hadoop_Hdfs_OpBlockChecksumProto.self, from: body), outbound: outbound)
                return true
            case .transferBlock:
                try await hadoopTransfer(HadoopDataTransfer.decode(Hadoop_Hdfs_OpTransferBlockProto.self, from: body), outbound: outbound)
                return true
            default:
                try await outbound.write(Self.hadoopResponse(.errorUnsupported, "\(op) is not supported by Strata's data nodes"))
                return true
            }
        } catch let error as HadoopTransferError {
            try await outbound.write(Self.hadoopResponse(.errorInvalid, "\(op): \(error.message)"))
            return false
        }
    }

    static func hadoopResponse(
        _ status: Hadoop_Hdfs_Status, _ message: String = "", _ configure: (inout Hadoop_Hdfs_BlockOpResponseProto) -> Void = { _ in }
    ) throws -> ByteBuffer {
        var response = Hadoop_Hdfs_BlockOpResponseProto()
        response.status = status
        if !message.isEmpty { response.message = message }
        configure(&response)
        return try HadoopDataTransfer.delimited(response)
    }

    /// A block as HDFS names it in messages: `<pool>:blk_<id>_<generation stamp>`.
    static func hadoopName(_ block: Hadoop_Hdfs_ExtendedBlockProto) -> String {
        (block.poolID.isEmpty ? "" : block.poolID + ":") + "blk_\(block.blockID)_\(block.generationStamp)"
    }

    /// The replica a Hadoop request names, opened for reading; its generation stamp may be newer
    /// than the request's (as HDFS allows), not older.
    func openForHadoop(_ block: Hadoop_Hdfs_ExtendedBlockProto) async throws -> ReplicaSnapshot {
        let id = block.blockID
        guard let replica = store.replica(id) else {
            throw RemoteException(.replicaNotFound, "Replica not found for \(Self.hadoopName(block))")
        }
        guard replica.generationStamp >= block.generationStamp else {
            throw RemoteException(
                .replicaNotFound,
                "Replica gen stamp < block genstamp, block=\(Self.hadoopName(block)), replica generation stamp \(replica.generationStamp)")
        }
        let store = self.store
        return try await threadPool.runIfActive { try store.openForReading(id) }
    }

    /// Raw bytes decoded for one OP_READ_BLOCK batch (about a MiB of frames).
    static let hadoopReadBatchBytes = 1 << 20
    /// Batches decoded ahead of the socket.
    static let hadoopReadBatchesAhead = 2

    /// One packet of a Hadoop read: where its data starts in the block, its chunk checksums.
    struct HadoopReadPacket: Sendable {
        var offset: UInt64
        var checksums: ByteBuffer
        var data: ByteBuffer
    }

    /// Decodes frames `frames` of a replica (verifying them as Strata's reads do) and cuts the
    /// part of them inside `range` into packets of up to `readPacketDataBytes`, with their chunk
    /// checksums. The packets are slices of one buffer: no byte is copied after decoding.
    static func hadoopPackets(
        _ snapshot: ReplicaSnapshot, frames: Range<Int>, range: Range<UInt64>, checksum: HadoopChunkChecksum
    ) throws -> [HadoopReadPacket] {
        let reader = snapshot.reader
        let frameSize = Int(reader.rawFrameSize)
        let stored = try snapshot.storedFrames(frames)
        let rawCount = frames.reduce(0) { $0 + reader.rawLength(ofFrame: $1) }
        var raw = ByteBuffer()
        raw.reserveCapacity(rawCount)
        let decoder = FrameDecoder()
        try stored.withUnsafeBytes { bytes in
            var position = 0
            for index in frames {
                guard position + FrameHeader.encodedSize <= bytes.count else {
                    throw BlockFormatError(.truncated, "frame \(index) lies past the bytes read", blockId: reader.header.blockId)
                }
                let header = try FrameHeader.decode(UnsafeRawBufferPointer(rebasing: bytes[position...]))
                guard position + header.frameLength <= bytes.count, Int(header.rawLength) == reader.rawLength(ofFrame: index) else {
                    throw BlockFormatError(.invalidFrameHeader, "frame \(index) does not match the replica's frame index", blockId: reader.header.blockId)
                }
                let frame = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + header.frameLength)])
                try raw.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(header.rawLength)) { output in
                    try decoder.decode(frame: frame, maximumRawLength: frameSize, into: output)
                    return Int(header.rawLength)
                }
                position += header.frameLength
            }
        }
        let rawStart = UInt64(frames.lowerBound) * UInt64(frameSize)
        let from = max(range.lowerBound, rawStart)
        let to = min(range.upperBound, rawStart + UInt64(raw.readableBytes))
        var packets: [HadoopReadPacket] = []
        var offset = from
        while offset < to {
            let count = min(HadoopDataTransfer.readPacketDataBytes, Int(to - offset))
            let data = raw.getSlice(at: Int(offset - rawStart), length: count)!
            var checksums = ByteBuffer()
            checksums.reserveCapacity(checksum.chunkCount(count) * checksum.checksumSize)
            data.withUnsafeReadableBytes { checksum.writeChecksums(of: $0, to: &checksums) }
            packets.append(HadoopReadPacket(offset: offset, checksums: checksums, data: data))
            offset += UInt64(count)
        }
        return packets
    }

    // MARK: - OP_READ_BLOCK

    /// Sends `len` bytes from `offset` as HDFS's data nodes do: the response with the checksum
    /// and the chunk-aligned start, packets of 64 KiB with a CRC32C per 512-byte chunk (none with
    /// `sendChecksums` false), an empty last packet; then reads the client's status.
    func hadoopRead(_ op: Hadoop_Hdfs_OpReadBlockProto, messages: inout HadoopInbound, outbound: HadoopOutbound) async throws -> Bool {
        activeTransfers.add(1, ordering: .relaxed)
        defer { activeTransfers.subtract(1, ordering: .relaxed) }
        let block = op.header.baseHeader.block
        let name = Self.hadoopName(block)
        let snapshot: ReplicaSnapshot
        do {
            snapshot = try await openForHadoop(block)
        } catch let error as BlockFormatError where error.isCorruption {
            await reportCorrupt(block.blockID, reason: error.description)
            try await outbound.write(Self.hadoopResponse(.errorChecksum, "opReadBlock \(name) received exception \(error)"))
            return false
        } catch {
            try await outbound.write(Self.hadoopResponse(.error, "opReadBlock \(name) received exception \(error)"))
            return false
        }
        let length = snapshot.reader.rawLength
        guard op.offset <= length, op.len <= length - op.offset else {
            try await outbound.write(
                Self.hadoopResponse(.errorInvalid, "Offset \(op.offset) and length \(op.len) don't match block \(name) ( blockLen \(length) )"))
            return false
        }
        let checksum = op.sendChecksums ? HadoopChunkChecksum.crc32c512 : .none512
        let chunk = UInt64(checksum.bytesPerChecksum)
        let start = op.offset - op.offset % chunk
        var end = op.offset + op.len
        if end % chunk != 0 { end = min(length, end + chunk - end % chunk) }
        try await outbound.write(
            Self.hadoopResponse(.success) { response in
                response.readOpChecksumInfo.checksum = checksum.proto
                response.readOpChecksumInfo.chunkOffset = start
            })
        // Frames are decoded a batch at a time on the I/O pool, two batches ahead of the socket,
        // each batch coming back as packets with their checksums: a handful of thread hops and
        // socket writes per MiB, and both cores decoding while the client keeps up.
        let frameSize = UInt64(snapshot.reader.rawFrameSize)
        let framesPerBatch = max(1, Self.hadoopReadBatchBytes / Int(frameSize))
        let threadPool = self.threadPool
        let range = start..<end
        var nextFrame = Int(start / frameSize)
        let endFrame = end == 0 ? 0 : Int((end - 1) / frameSize) + 1
        func decodeBatch() -> Task<[HadoopReadPacket], any Error>? {
            guard nextFrame < endFrame else { return nil }
            let frames = nextFrame..<min(endFrame, nextFrame + framesPerBatch)
            nextFrame = frames.upperBound
            return Task {
                try await threadPool.runIfActive {
                    try Self.hadoopPackets(snapshot, frames: frames, range: range, checksum: checksum)
                }
            }
        }
        var batches: [Task<[HadoopReadPacket], any Error>] = []
        defer { for batch in batches { batch.cancel() } }
        while batches.count < Self.hadoopReadBatchesAhead, let batch = decodeBatch() { batches.append(batch) }
        var sequence: Int64 = 0
        while !batches.isEmpty {
            let packets: [HadoopReadPacket]
            do {
                packets = try await batches.removeFirst().value
            } catch let error as BlockFormatError where error.isCorruption {
                // The client sees the stream end early and reads another replica.
                await reportCorrupt(block.blockID, reason: error.description)
                return false
            }
            if let batch = decodeBatch() { batches.append(batch) }
            var buffers: [ByteBuffer] = []
            buffers.reserveCapacity(packets.count * 2)
            for packet in packets {
                let wire = HadoopPacket(
                    offsetInBlock: Int64(packet.offset), sequenceNumber: sequence, last: false, checksums: packet.checksums, data: packet.data)
                buffers += try wire.wireBuffers()
                sequence += 1
            }
            try await outbound.write(contentsOf: buffers)
        }
        let last = HadoopPacket(offsetInBlock: Int64(end), sequenceNumber: sequence, last: true, checksums: ByteBuffer(), data: ByteBuffer())
        try await outbound.write(last.encoded())
        // The client's verdict: it may also just close the connection.
        guard case .readStatus(let bytes)? = try await messages.next() else { return false }
        let status = try HadoopDataTransfer.decode(Hadoop_Hdfs_ClientReadStatusProto.self, from: bytes)
        if status.status != .success && status.status != .checksumOk {
            logger.info("a Hadoop reader reported \(status.status) for \(name)")
        }
        return true
    }

    // MARK: - OP_BLOCK_CHECKSUM

    /// Answers with the block's MD5 of its 512-byte chunk CRC32Cs, as WebHDFS's file checksum
    /// computes it per block (`BlockChecksumDigest`), over the block's first `numBytes` bytes (all
    /// of them when the request gives none).
    func hadoopBlockChecksum(_ op: Hadoop_Hdfs_OpBlockChecksumProto, outbound: HadoopOutbound) async throws {
        activeTransfers.add(1, ordering: .relaxed)
        defer { activeTransfers.subtract(1, ordering: .relaxed) }
        let block = op.header.block
        let name = Self.hadoopName(block)
        do {
            let snapshot = try await openForHadoop(block)
            let length = snapshot.reader.rawLength
            let requested = block.numBytes == 0 ? length : min(block.numBytes, length)
            // The bytes decoded as a read decodes them, a batch of frames at a time; the digest
            // computes its own chunk CRCs.
            let frameSize = Int(snapshot.reader.rawFrameSize)
            let frameCount = requested == 0 ? 0 : Int((requested - 1) / UInt64(frameSize)) + 1
            let framesPerBatch = max(1, Self.hadoopReadBatchBytes / frameSize)
            let (md5, crcCount) = try await threadPool.runIfActive {
                var digest = BlockChecksumDigest()
                for first in stride(from: 0, to: frameCount, by: framesPerBatch) {
                    let frames = first..<min(frameCount, first + framesPerBatch)
                    for packet in try Self.hadoopPackets(snapshot, frames: frames, range: 0..<requested, checksum: .none512) {
                        packet.data.withUnsafeReadableBytes { digest.update($0) }
                    }
                }
                let md5 = digest.finish()
                return (md5, digest.crcCount)
            }
            try await outbound.write(
                Self.hadoopResponse(.success) { response in
                    response.checksumResponse.bytesPerCrc = UInt32(BlockChecksumDigest.bytesPerCRC)
                    response.checksumResponse.crcPerBlock = crcCount
                    response.checksumResponse.blockChecksum = Data(md5)
                    response.checksumResponse.crcType = .checksumCrc32C
                })
        } catch let error as BlockFormatError where error.isCorruption {
            await reportCorrupt(block.blockID, reason: error.description)
            try await outbound.write(Self.hadoopResponse(.errorChecksum, "opBlockChecksum \(name) received exception \(error)"))
        } catch {
            try await outbound.write(Self.hadoopResponse(.error, "opBlockChecksum \(name) received exception \(error)"))
        }
    }

    // MARK: - OP_TRANSFER_BLOCK

    /// Copies a replica being written to the nodes a writer adds to its pipeline (HDFS's
    /// `transferBlock`, before a recovery with the new node). Frames go as they are, over
    /// Strata's pipeline, up to the last whole frame within the acknowledged bytes: the recovery
    /// that follows resends the rest of the frame from the writer's side (`hadoopWrite`).
    func hadoopTransfer(_ op: Hadoop_Hdfs_OpTransferBlockProto, outbound: HadoopOutbound) async throws {
        activeTransfers.add(1, ordering: .relaxed)
        defer { activeTransfers.subtract(1, ordering: .relaxed) }
        let block = op.header.baseHeader.block
        let name = Self.hadoopName(block)
        do {
            guard !op.targets.isEmpty else { throw RemoteException.illegalArgument("no targets to transfer \(name) to") }
            let snapshot = try await openForHadoop(block)
            let reader = snapshot.reader
            let acknowledged = min(block.numBytes, reader.rawLength)
            let frames = Int(acknowledged / UInt64(reader.rawFrameSize))
            var strataBlock = Strata_Wire_ExtendedBlock()
            strataBlock.blockID = block.blockID
            strataBlock.generationStamp = reader.header.generationStamp
            strataBlock.numBytes = UInt64(frames) * UInt64(reader.rawFrameSize)
            try await send(snapshot, frames: frames, as: strataBlock, stage: .transfer, to: op.targets.map(Self.strataNode), finish: false)
            try await outbound.write(Self.hadoopResponse(.success))
        } catch {
            logger.warning("Hadoop block transfer failed", metadata: ["block": "\(name)", "error": "\(error)"])
            try await outbound.write(Self.hadoopResponse(.error, "opTransferBlock \(name) received exception \(error)"))
        }
    }

    /// A Hadoop pipeline target as Strata's pipeline names it.
    static func strataNode(_ node: Hadoop_Hdfs_DatanodeInfoProto) -> Strata_Wire_DatanodeInfo {
        var info = Strata_Wire_DatanodeInfo()
        info.nodeID = node.id.datanodeUuid
        info.hostname = node.id.hostName
        info.ipAddress = node.id.ipAddr.isEmpty ? node.id.hostName : node.id.ipAddr
        info.transferPort = node.id.xferPort
        return info
    }
}
