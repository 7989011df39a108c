import Foundation
import NIOCore
import NIOPosix
import StrataDataNode
import StrataHadoopWire
import StrataWire
import SwiftProtobuf
import Testing

/// A small Hadoop data transfer client, for tests: it speaks the DataTransferProtocol to a data
/// node's transfer port as Hadoop's Java client does (version 28, an op byte, the op's message
/// varint-delimited; packets; varint-delimited responses and acks).
final class HadoopTransferTestClient: @unchecked Sendable {
    private let channel: any Channel
    private var incoming: AsyncStream<ByteBuffer>.AsyncIterator
    private var buffer = ByteBuffer()

    private init(channel: any Channel, incoming: AsyncStream<ByteBuffer>) {
        self.channel = channel
        self.incoming = incoming.makeAsyncIterator()
    }

    static func connect(to node: DataNode, group: any EventLoopGroup) async throws -> HadoopTransferTestClient {
        try await connect(host: node.configuration.host, port: node.transferPort, group: group)
    }

    static func connect(host: String, port: Int, group: any EventLoopGroup) async throws -> HadoopTransferTestClient {
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(continuation)) }
            }
            .connect(host: host, port: port).get()
        return HadoopTransferTestClient(channel: channel, incoming: stream)
    }

    /// Passes every read to the stream; ends it when the connection closes.
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let continuation: AsyncStream<ByteBuffer>.Continuation
        init(_ continuation: AsyncStream<ByteBuffer>.Continuation) { self.continuation = continuation }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    func send(_ bytes: [UInt8]) async throws {
        try await send(ByteBuffer(bytes: bytes))
    }

    /// Sends an operation: version, op byte, message.
    func send(_ op: HadoopDataTransfer.Op, _ message: some SwiftProtobuf.Message, version: UInt16 = HadoopDataTransfer.version) async throws {
        var bytes = ByteBuffer()
        bytes.writeInteger(version)
        bytes.writeInteger(op.rawValue)
        try HadoopDataTransfer.writeDelimited(message, to: &bytes)
        try await send(bytes)
    }

    func send(_ packet: HadoopPacket) async throws {
        try await send(packet.encoded())
    }

    /// Reads until `parse` finds a whole message in what arrived; nil if the connection closed first.
    private func read<Value>(_ parse: (inout ByteBuffer) throws -> Value?) async throws -> Value? {
        while true {
            if let value = try parse(&buffer) { return value }
            guard var more = await incoming.next() else { return nil }
            buffer.writeBuffer(&more)
        }
    }

    /// The next varint-delimited message; nil if the connection closed first.
    func receive<Message: SwiftProtobuf.Message>(_ type: Message.Type) async throws -> Message? {
        guard let bytes = try await read({ try HadoopDataTransfer.readDelimited(from: &$0, maximumBytes: 1 << 20) }) else { return nil }
        return try HadoopDataTransfer.decode(type, from: bytes)
    }

    func receivePacket() async throws -> HadoopPacket? {
        try await read { try HadoopPacket.read(from: &$0) }
    }

    /// Whether the data node closed the connection (after whatever it still sends).
    func closedByPeer() async -> Bool {
        while await incoming.next() != nil {}
        return true
    }

    func close() async {
        try? await channel.close()
    }
}

// MARK: - Operations

/// A Strata block as Hadoop clients name it (any pool id: Strata has one pool).
func hadoopBlock(_ block: Strata_Wire_ExtendedBlock, poolId: String = "BP-strata-test") -> Hadoop_Hdfs_ExtendedBlockProto {
    var proto = Hadoop_Hdfs_ExtendedBlockProto()
    proto.poolID = poolId
    proto.blockID = block.blockID
    proto.generationStamp = block.generationStamp
    proto.numBytes = block.numBytes
    return proto
}

func hadoopNode(_ node: DataNode) -> Hadoop_Hdfs_DatanodeInfoProto {
    var info = Hadoop_Hdfs_DatanodeInfoProto()
    info.id.ipAddr = node.configuration.host
    info.id.hostName = "localhost"
    info.id.datanodeUuid = node.nodeId
    info.id.xferPort = UInt32(node.transferPort)
    info.id.infoPort = 0
    info.id.ipcPort = 0
    return info
}

func hadoopNode(host: String, port: Int) -> Hadoop_Hdfs_DatanodeInfoProto {
    var info = Hadoop_Hdfs_DatanodeInfoProto()
    info.id.ipAddr = host
    info.id.hostName = host
    info.id.datanodeUuid = "unreachable"
    info.id.xferPort = UInt32(port)
    return info
}

/// What an OP_READ_BLOCK returned.
struct HadoopRead {
    var response: Hadoop_Hdfs_BlockOpResponseProto
    /// The bytes of the packets, from `response.readOpChecksumInfo.chunkOffset` on.
    var data: [UInt8] = []
    var packets = 0
    var checksumsVerified = 0
}

func readOp(_ block: Hadoop_Hdfs_ExtendedBlockProto, offset: UInt64, length: UInt64, sendChecksums: Bool = true) -> Hadoop_Hdfs_OpReadBlockProto {
    var op = Hadoop_Hdfs_OpReadBlockProto()
    op.header.baseHeader.block = block
    op.header.clientName = "DFSClient_hadoop_test"
    op.offset = offset
    op.len = length
    if !sendChecksums { op.sendChecksums = false }
    return op
}

/// Reads a block range with OP_READ_BLOCK, checking the packets as Hadoop's client does: they
/// follow one another from the chunk offset, each chunk's CRC matches, the last is empty. Sends
/// the client's CHECKSUM_OK at the end.
func hadoopReadBlock(
    _ client: HadoopTransferTestClient, _ block: Hadoop_Hdfs_ExtendedBlockProto, offset: UInt64, length: UInt64, sendChecksums: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> HadoopRead {
    try await client.send(.readBlock, readOp(block, offset: offset, length: length, sendChecksums: sendChecksums))
    let response = try #require(try await client.receive(Hadoop_Hdfs_BlockOpResponseProto.self), sourceLocation: sourceLocation)
    var read = HadoopRead(response: response)
    guard response.status == .success else { return read }
    let info = response.readOpChecksumInfo
    let checksum = HadoopChunkChecksum(type: info.checksum.type, bytesPerChecksum: Int(info.checksum.bytesPerChecksum))
    var expectedOffset = Int64(info.chunkOffset)
    var expectedSequence: Int64 = 0
    while true {
        let packet = try #require(try await client.receivePacket(), "the stream ended before the last packet", sourceLocation: sourceLocation)
        #expect(packet.header.offsetInBlock == expectedOffset, sourceLocation: sourceLocation)
        #expect(packet.header.seqno == expectedSequence, sourceLocation: sourceLocation)
        if packet.header.lastPacketInBlock {
            #expect(packet.data.readableBytes == 0, "the last packet is empty", sourceLocation: sourceLocation)
            break
        }
        #expect(packet.data.readableBytes <= HadoopDataTransfer.readPacketDataBytes, sourceLocation: sourceLocation)
        let problem = checksum.verify(data: packet.data, checksums: packet.checksums, offsetInBlock: packet.header.offsetInBlock)
        #expect(problem == nil, "\(problem ?? "")", sourceLocation: sourceLocation)
        read.checksumsVerified += checksum.checksumSize == 0 ? 0 : checksum.chunkCount(packet.data.readableBytes)
        packet.data.withUnsafeReadableBytes { read.data.append(contentsOf: $0) }
        read.packets += 1
        expectedOffset += Int64(packet.data.readableBytes)
        expectedSequence += 1
    }
    var status = Hadoop_Hdfs_ClientReadStatusProto()
    status.status = sendChecksums ? .checksumOk : .success
    try await client.send(HadoopDataTransfer.delimited(status))
    return read
}

/// Packets of block data as Hadoop's client cuts them: `chunksPerPacket` chunks each (126 of
/// 512 bytes: a 64 KiB packet with its checksums), with the requested checksum.
func hadoopPackets(
    _ data: [UInt8], from offset: Int = 0, checksum: HadoopChunkChecksum, chunksPerPacket: Int = 126, firstSequence: Int64 = 0
) -> [HadoopPacket] {
    var packets: [HadoopPacket] = []
    var start = offset
    var sequence = firstSequence
    let packetBytes = chunksPerPacket * checksum.bytesPerChecksum
    while start < data.count {
        let end = min(data.count, start + packetBytes)
        var checksums = ByteBuffer()
        data[start..<end].withUnsafeBytes { checksum.writeChecksums(of: $0, to: &checksums) }
        packets.append(
            HadoopPacket(
                offsetInBlock: Int64(start), sequenceNumber: sequence, last: false, checksums: checksums,
                data: ByteBuffer(bytes: data[start..<end])))
        start = end
        sequence += 1
    }
    packets.append(HadoopPacket(offsetInBlock: Int64(data.count), sequenceNumber: sequence, last: true, checksums: ByteBuffer(), data: ByteBuffer()))
    return packets
}

func writeOp(
    _ block: Hadoop_Hdfs_ExtendedBlockProto, targets: [Hadoop_Hdfs_DatanodeInfoProto], checksum: HadoopChunkChecksum,
    stage: Hadoop_Hdfs_OpWriteBlockProto.BlockConstructionStage = .pipelineSetupCreate, latestGenerationStamp: UInt64 = 0,
    acknowledgedBytes: UInt64 = 0
) -> Hadoop_Hdfs_OpWriteBlockProto {
    var op = Hadoop_Hdfs_OpWriteBlockProto()
    op.header.baseHeader.block = block
    op.header.clientName = "DFSClient_hadoop_test"
    op.targets = targets
    op.stage = stage
    op.pipelineSize = UInt32(targets.count + 1)
    op.minBytesRcvd = acknowledgedBytes
    op.maxBytesRcvd = acknowledgedBytes
    op.latestGenerationStamp = latestGenerationStamp
    op.requestedChecksum = checksum.proto
    return op
}
