import NIOCore
import NIOPosix
import StrataCore
import StrataWire
import Synchronization

/// A write pipeline failed: which node (index in the pipeline, 0 = the first) and why.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public var failedNodeIndex: Int
    public var message: String
    public var isChecksumError = false
    public var description: String { "write pipeline failed at node \(failedNodeIndex): \(message)" }
}

/// The sending end of a block write pipeline: packets of frames go to the first node, which
/// passes them down the pipeline; acknowledgements come back in order. At most
/// `Limits.maximumUnacknowledgedPackets` packets, and `Limits.maximumUnacknowledgedBytes`, are in flight.
public final class PipelineConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<PipelineHandler>
    private let progress: AcknowledgementProgress
    public let nodeCount: Int

    private init(channel: any Channel, handler: NIOLoopBound<PipelineHandler>, progress: AcknowledgementProgress, nodeCount: Int) {
        self.channel = channel
        self.handler = handler
        self.progress = progress
        self.nodeCount = nodeCount
    }

    /// The sequence number of the last packet every node acknowledged (-1: none yet).
    public var lastAcknowledgedSequence: Int64 { progress.last.load(ordering: .acquiring) }

    /// Connects to `targets[0]` and asks it to set up a pipeline through the rest.
    public static func open(
        block: Strata_Wire_ExtendedBlock, stage: Strata_Wire_WriteBlockOp.Stage, targets: [Strata_Wire_DatanodeInfo],
        rawFrameSize: Int, clientName: String, previousGenerationStamp: UInt64 = 0, group: any EventLoopGroup
    ) async throws -> PipelineConnection {
        precondition(!targets.isEmpty)
        let first = targets[0]
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.allocator, value: TransferBuffers.allocator)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WireFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WireFrameEncoder(preamble: .transfer)))
                        try channel.pipeline.syncOperations.addHandler(PipelineHandler())
                    }
                }
                .connect(host: first.ipAddress, port: Int(first.transferPort)).get()
        } catch {
            throw PipelineError(failedNodeIndex: 0, message: "cannot connect to \(first.ipAddress):\(first.transferPort): \(error)")
        }
        let progress = AcknowledgementProgress()
        let handler: NIOLoopBound<PipelineHandler>
        do {
            handler = try await channel.eventLoop.submit {
                let handler = try channel.pipeline.syncOperations.handler(type: PipelineHandler.self)
                handler.progress = progress
                return NIOLoopBound(handler, eventLoop: channel.eventLoop)
            }.get()
        } catch {
            // The node closed the connection as soon as it opened.
            channel.close(promise: nil)
            throw PipelineError(failedNodeIndex: 0, message: "connection to \(first.ipAddress):\(first.transferPort) closed: \(error)")
        }
        var header = Strata_Wire_TransferHeader()
        header.op = .writeBlock
        header.write.block = block
        header.write.stage = stage
        header.write.targets = Array(targets.dropFirst())
        header.write.clientName = clientName
        header.write.rawFrameSize = UInt32(rawFrameSize)
        header.write.previousGenerationStamp = previousGenerationStamp
        let setup = channel.eventLoop.makePromise(of: Strata_Wire_TransferResponse.self)
        channel.eventLoop.execute {
            // A connection that already failed fails the setup at once rather than never.
            if let failure = handler.value.failure { setup.fail(failure) } else { handler.value.setupPromise = setup }
        }
        channel.writeAndFlush(try Transfer.frame(header), promise: nil)
        let response: Strata_Wire_TransferResponse
        do {
            response = try await setup.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw PipelineError(failedNodeIndex: 0, message: "\(error)")
        }
        guard response.status == .success else {
            channel.close(promise: nil)
            throw PipelineError(
                failedNodeIndex: response.firstBadNode >= 0 ? Int(response.firstBadNode) : 0,
                message: response.message.isEmpty ? "pipeline setup refused (\(response.status))" : response.message)
        }
        return PipelineConnection(channel: channel, handler: handler, progress: progress, nodeCount: targets.count)
    }

    /// Sends one packet. Returns a future for its acknowledgement; waits first while the window
    /// of unacknowledged packets is full. Throws once the pipeline has failed.
    public func send(_ packet: Strata_Wire_Packet, body: ByteBuffer) async throws -> EventLoopFuture<Strata_Wire_PipelineAck> {
        let handler = self.handler
        let size = body.readableBytes
        // Wait while the window is full: too many packets, or too many bytes (a writer keeps
        // every unacknowledged packet to resend it after a pipeline failure).
        while true {
            let oldest: EventLoopFuture<Strata_Wire_PipelineAck>? = try await channel.eventLoop.submit {
                let state = handler.value
                let full = state.outstanding.count >= Limits.maximumUnacknowledgedPackets
                    || state.outstandingBytes + size > Limits.maximumUnacknowledgedBytes
                return full ? state.outstanding.first?.promise.futureResult : nil
            }.get()
            guard let oldest else { break }
            _ = try await oldest.get()
        }
        var header = Strata_Wire_TransferHeader()
        header.op = .packet
        header.packet = packet
        let frame = try Transfer.frame(header, body: body)
        let sequence = packet.sequenceNumber
        let channel = self.channel
        return try await channel.eventLoop.submit {
            if let failure = handler.value.failure { throw failure }
            let promise = channel.eventLoop.makePromise(of: Strata_Wire_PipelineAck.self)
            handler.value.outstanding.append((sequence, size, promise))
            handler.value.outstandingBytes += size
            channel.writeAndFlush(frame, promise: nil)
            return promise.futureResult
        }.get()
    }

    /// Waits until every packet sent so far is acknowledged by every node.
    public func waitForAcknowledgements() async throws {
        let handler = self.handler
        let last: EventLoopFuture<Strata_Wire_PipelineAck>? = try await channel.eventLoop.submit {
            let state = handler.value
            // Everything acknowledged: done, even if the connection closed since (a node closes
            // it once it has finished the block). Packets the failure took with it were not.
            guard let last = state.outstanding.last else {
                if state.lostPackets, let failure = state.failure { throw failure }
                return nil
            }
            if let failure = state.failure { throw failure }
            return last.promise.futureResult
        }.get()
        if let last { _ = try await last.get() }
    }

    public func close() {
        channel.close(promise: nil)
    }

    /// Returns once the connection is closed, by either end.
    public func waitUntilClosed() async {
        try? await channel.closeFuture.get()
    }
}

/// How far acknowledgements have come, readable from any thread.
final class AcknowledgementProgress: Sendable {
    let last = Atomic<Int64>(-1)
}

final class PipelineHandler: ChannelInboundHandler {
    typealias InboundIn = WireFrame

    var progress: AcknowledgementProgress?
    var setupPromise: EventLoopPromise<Strata_Wire_TransferResponse>?
    var outstanding: [(sequence: UInt64, bytes: Int, promise: EventLoopPromise<Strata_Wire_PipelineAck>)] = []
    var outstandingBytes = 0
    var failure: PipelineError?
    /// The failure came with packets not yet acknowledged (they were failed with it).
    var lostPackets = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let header = try? Strata_Wire_TransferHeader(buffer: frame.header) else {
            fail(PipelineError(failedNodeIndex: 0, message: "malformed message from the pipeline"), context: context)
            return
        }
        if let setup = setupPromise {
            setupPromise = nil
            setup.succeed(header.response)
            return
        }
        guard header.op == .ack else {
            fail(PipelineError(failedNodeIndex: 0, message: "unexpected \(header.op) in the pipeline"), context: context)
            return
        }
        let ack = header.ack
        guard let first = outstanding.first, first.sequence == ack.sequenceNumber else {
            fail(PipelineError(failedNodeIndex: 0, message: "acknowledgement for packet \(ack.sequenceNumber) out of order"), context: context)
            return
        }
        if let bad = ack.replies.firstIndex(where: { $0 != .success }) {
            var error = PipelineError(failedNodeIndex: bad, message: ack.message.isEmpty ? "node \(bad) failed to store packet \(ack.sequenceNumber)" : ack.message)
            error.isChecksumError = ack.replies[bad] == .errorChecksum
            fail(error, context: context)
            return
        }
        outstanding.removeFirst()
        outstandingBytes -= first.bytes
        progress?.last.store(Int64(ack.sequenceNumber), ordering: .releasing)
        first.promise.succeed(ack)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(PipelineError(failedNodeIndex: 0, message: "connection to the pipeline closed"), context: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(PipelineError(failedNodeIndex: 0, message: "\(error)"), context: context)
    }

    private func fail(_ error: PipelineError, context: ChannelHandlerContext?) {
        if failure == nil { failure = error }
        if !outstanding.isEmpty { lostPackets = true }
        setupPromise?.fail(error)
        setupPromise = nil
        let waiting = outstanding
        outstanding = []
        outstandingBytes = 0
        for entry in waiting { entry.promise.fail(failure!) }
        context?.close(promise: nil)
    }
}

/// Packet bodies: frames back to back, each self-delimiting by its header.
public enum PacketBody {
    public static func make(_ frames: [[UInt8]], allocator: ByteBufferAllocator = TransferBuffers.allocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: frames.reduce(0) { $0 + $1.count })
        for frame in frames { buffer.writeBytes(frame) }
        return buffer
    }

    /// Splits a body into its frames (as views into it); nil if the frames do not tile it.
    public static func frames(_ body: ByteBuffer, count: Int) -> [ByteBuffer]? {
        var remaining = body
        var frames: [ByteBuffer] = []
        frames.reserveCapacity(count)
        for _ in 0..<count {
            guard remaining.readableBytes >= 24,
                let stored = remaining.getInteger(at: remaining.readerIndex + 4, endianness: .little, as: UInt32.self),
                let frame = remaining.readSlice(length: 24 + Int(stored))
            else { return nil }
            frames.append(frame)
        }
        return remaining.readableBytes == 0 ? frames : nil
    }
}
