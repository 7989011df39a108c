import Logging
import NIOCore
import NIOPosix
import StrataClient
import StrataWire
import Testing

/// The writer's end of a pipeline against a scripted first node: what it may count as
/// acknowledged when the connection ends.
@Suite struct PipelineConnectionTests {
    /// A first node that accepts the pipeline, then either acknowledges the first packet and
    /// closes (as a node does once its block is finished) or closes without acknowledging it
    /// (as a node that is killed does).
    static func withScriptedNode(
        acknowledging: Bool, _ body: (PipelineConnection) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await TransferServer.start(host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test")) { connection in
            try? await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                guard try await frames.next() != nil else { return }
                var setup = Strata_Wire_TransferHeader()
                setup.op = .response
                setup.response.status = .success
                try await outbound.write(try Transfer.frame(setup))
                guard let packet = try await frames.next(), acknowledging else { return }
                var ack = Strata_Wire_TransferHeader()
                ack.op = .ack
                ack.ack.sequenceNumber = try Strata_Wire_TransferHeader(buffer: packet.header).packet.sequenceNumber
                ack.ack.replies = [.success]
                ack.ack.firstBadNode = -1
                try await outbound.write(try Transfer.frame(ack))
            }
        }
        var node = Strata_Wire_DatanodeInfo()
        node.ipAddress = "127.0.0.1"
        node.transferPort = UInt32(server.port)
        var block = Strata_Wire_ExtendedBlock()
        block.blockID = 1
        block.generationStamp = 1
        do {
            let pipeline = try await PipelineConnection.open(
                block: block, stage: .create, targets: [node], rawFrameSize: 4096, clientName: "test", group: group)
            try await body(pipeline)
            pipeline.close()
        } catch {
            await server.close()
            try await group.shutdownGracefully()
            throw error
        }
        await server.close()
        try await group.shutdownGracefully()
    }

    static func packet() -> Strata_Wire_Packet {
        var packet = Strata_Wire_Packet()
        packet.sequenceNumber = 0
        packet.frameCount = 1
        packet.rawLength = 3
        return packet
    }

    /// A packet lost with the connection is not acknowledged, however late the writer asks: the
    /// writer must recover the pipeline and send it again.
    @Test func packetsLostWithTheConnectionAreNotAcknowledged() async throws {
        try await Self.withScriptedNode(acknowledging: false) { pipeline in
            let ack = try await pipeline.send(Self.packet(), body: ByteBuffer(bytes: [1, 2, 3]))
            await pipeline.waitUntilClosed()
            await #expect(throws: PipelineError.self) { try await ack.get() }
            #expect(pipeline.lastAcknowledgedSequence == -1)
            await #expect(throws: PipelineError.self) { try await pipeline.waitForAcknowledgements() }
        }
    }

    /// Every packet acknowledged, then the connection closed: nothing is missing.
    @Test func aConnectionClosedAfterEveryAcknowledgementIsDone() async throws {
        try await Self.withScriptedNode(acknowledging: true) { pipeline in
            let ack = try await pipeline.send(Self.packet(), body: ByteBuffer(bytes: [1, 2, 3]))
            _ = try await ack.get()
            #expect(pipeline.lastAcknowledgedSequence == 0)
            // The node closes the connection after its acknowledgement.
            await pipeline.waitUntilClosed()
            try await pipeline.waitForAcknowledgements()
        }
    }
}
