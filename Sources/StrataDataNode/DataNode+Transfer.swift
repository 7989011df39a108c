import NIOCore
import StrataBlockFormat
import StrataClient
import StrataCore
import StrataWire

extension DataNode {
    typealias Inbound = NIOAsyncChannelInboundStream<WireFrame>.AsyncIterator
    typealias Outbound = NIOAsyncChannelOutboundWriter<WireFrame>

    /// One transfer connection: its first message says what it wants.
    func serve(_ connection: TransferChannel) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                guard let first = try await frames.next() else { return }
                let header = try Strata_Wire_TransferHeader(buffer: first.header)
                switch header.op {
                case .writeBlock:
                    try await receive(header.write, frames: &frames, outbound: outbound)
                case .readBlock:
                    try await send(header.read, outbound: outbound)
                case .transferBlock:
                    try await transferPartialReplica(header.transfer, outbound: outbound)
                case .recoverReplica:
                    try await recoverReplica(header.recover, outbound: outbound)
                case .blockInfo:
                    var response = Strata_Wire_TransferResponse()
                    if let replica = store.replica(header.blockInfo.block.blockID) {
                        response.status = .success
                        response.rawLength = replica.rawLength
                        response.generationStamp = replica.generationStamp
                    } else {
                        response.status = .errorNotFound
                        response.message = "Replica not found for block \(header.blockInfo.block.blockID)"
                    }
                    try await outbound.write(try Self.responseFrame(response))
                case .blockLocalPath:
                    let sameHost = Self.isSameHost(local: connection.channel.localAddress, remote: connection.channel.remoteAddress)
                    try await outbound.write(try Self.responseFrame(localPath(header.blockLocalPath.block, sameHost: sameHost)))
                default:
                    var response = Strata_Wire_TransferResponse()
                    response.status = .errorInvalid
                    response.message = "unexpected \(header.op) at the start of a transfer"
                    try await outbound.write(try Self.responseFrame(response))
                }
            }
        } catch {
            logger.debug("transfer connection ended: \(error)")
        }
    }

    /// Where a finished replica's file is, for a short-circuit read by a client on this host
    /// (HDFS's `getBlockLocalPathInfo`). Replicas being written are read over the network: their
    /// last frame may be rewritten under a reader.
    func localPath(_ block: Strata_Wire_ExtendedBlock, sameHost: Bool) -> Strata_Wire_TransferResponse {
        var response = Strata_Wire_TransferResponse()
        guard sameHost else {
            response.status = .errorInvalid
            response.message = "short-circuit reads are for clients on this data node's host"
            return response
        }
        guard let replica = store.replica(block.blockID), replica.isFinalized, replica.generationStamp >= block.generationStamp,
            let path = store.path(of: block.blockID)
        else {
            response.status = .errorNotFound
            response.message = "no finished replica of block \(block.blockID)_\(block.generationStamp) for a local read"
            return response
        }
        response.status = .success
        response.localPath = path
        response.rawLength = replica.rawLength
        response.generationStamp = replica.generationStamp
        return response
    }

    /// Both ends of a connection on one host: the same address, or loopback.
    static func isSameHost(local: SocketAddress?, remote: SocketAddress?) -> Bool {
        guard let remoteIP = remote?.ipAddress else { return false }
        return remoteIP == local?.ipAddress || remoteIP.hasPrefix("127.") || remoteIP == "::1"
    }

    static func responseFrame(_ response: Strata_Wire_TransferResponse) throws -> WireFrame {
        var header = Strata_Wire_TransferHeader()
        header.op = .response
        header.response = response
        return try Transfer.frame(header)
    }

    // MARK: - Writes

    /// What this node did with one packet, handed to the task that acknowledges upstream.
    struct LocalResult: Sendable {
        var sequenceNumber: UInt64
        var status: Strata_Wire_PipelineAck.Status
        var message: String
        var downstreamAck: EventLoopFuture<Strata_Wire_PipelineAck>?
        var downstreamFailure: PipelineError?
    }

    /// A pipeline write: packets are passed downstream first, then stored here; a second task
    /// acknowledges each packet upstream once this node and every node after it have it.
    func receive(_ op: Strata_Wire_WriteBlockOp, frames: inout Inbound, outbound: Outbound) async throws {
        activeTransfers.add(1, ordering: .relaxed)
        defer { activeTransfers.subtract(1, ordering: .relaxed) }
        let frameSize = Int(op.rawFrameSize)
        guard frameSize >= Limits.minimumRawFrameSizeBytes && frameSize <= Limits.maximumRawFrameSizeBytes else {
            var response = Strata_Wire_TransferResponse()
            response.status = .errorInvalid
            response.message = "raw frame size \(frameSize) out of range"
            try await outbound.write(try Self.responseFrame(response))
            return
        }
        var downstream: PipelineConnection?
        if !op.targets.isEmpty {
            do {
                downstream = try await PipelineConnection.open(
                    block: op.block, stage: op.stage, targets: op.targets, rawFrameSize: frameSize, clientName: op.clientName,
                    previousGenerationStamp: op.previousGenerationStamp, group: group)
            } catch let error as PipelineError {
                var response = Strata_Wire_TransferResponse()
                response.status = .error
                response.firstBadNode = Int32(error.failedNodeIndex + 1)
                response.message = error.message
                try await outbound.write(try Self.responseFrame(response))
                return
            }
        }
        defer { downstream?.close() }
        let box: ReplicaWriter
        do {
            let store = self.store
            let options = configuration.frameOptions
            box = try await threadPool.runIfActive {
                switch op.stage {
                case .append:
                    return try store.reopenReplica(op.block, previousGenerationStamp: op.previousGenerationStamp, options: options)
                case .recover:
                    return try store.recoverForWriting(op.block, rawFrameSize: frameSize, options: options)
                default:
                    return try store.createReplica(op.block, rawFrameSize: frameSize, options: options)
                }
            }
        } catch {
            var response = Strata_Wire_TransferResponse()
            response.status = .error
            response.firstBadNode = 0
            response.message = "\(error)"
            try await outbound.write(try Self.responseFrame(response))
            return
        }
        var setup = Strata_Wire_TransferResponse()
        setup.status = .success
        setup.firstBadNode = -1
        try await outbound.write(try Self.responseFrame(setup))

        var finished = false
        defer {
            // The writer went away (or failed): the replica stays unfinished for recovery.
            if !finished { box.writer.abandon() }
            store.release(box.grant)
        }
        let (results, resultsContinuation) = AsyncStream.makeStream(of: LocalResult.self)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await Self.acknowledge(results, outbound: outbound, downstreamCount: op.targets.count) }
            defer { resultsContinuation.finish() }
            while let frame = try await frames.next() {
                guard let header = try? Strata_Wire_TransferHeader(buffer: frame.header), header.op == .packet else {
                    resultsContinuation.yield(LocalResult(sequenceNumber: 0, status: .error, message: "expected a packet"))
                    break
                }
                let packet = header.packet
                var result = LocalResult(sequenceNumber: packet.sequenceNumber, status: .success, message: "")
                if let downstream {
                    do {
                        result.downstreamAck = try await downstream.send(packet, body: frame.body)
                    } catch let error as PipelineError {
                        result.downstreamFailure = error
                    }
                }
                do {
                    let store = self.store
                    let id = op.block.blockID
                    let summary: BlockSummary? = try await threadPool.runIfActive {
                        guard let parts = PacketBody.frames(frame.body, count: Int(packet.frameCount)) else {
                            throw BlockFormatError(.invalidFrameHeader, "packet body does not hold \(packet.frameCount) whole frames")
                        }
                        // Readers of the open block must not see the last frame half rewritten.
                        return try store.withFileLock(id) {
                            // Recovery gave the replica to another writer: this one must not touch it.
                            guard !box.grant.isRevoked else {
                                throw RemoteException(.replicaNotFound, "replica \(id) was taken over by recovery")
                            }
                            for part in parts {
                                try part.withUnsafeReadableBytes { bytes in try box.writer.appendEncodedFrame(bytes) }
                            }
                            if packet.sync {
                                try box.writer.synchronize()
                            } else if !packet.last {
                                try box.writer.flush()
                                box.writer.startWriteback()
                            }
                            store.updateBeingWritten(id, rawLength: box.writer.rawLength)
                            guard packet.last else { return nil }
                            let summary = try box.writer.finish()
                            try store.finalize(id, summary: summary)
                            return summary
                        }
                    }
                    if summary != nil {
                        finished = true
                        await reportReceived(id)
                    }
                } catch let error as BlockFormatError {
                    result.status = error.isCorruption ? .errorChecksum : .error
                    result.message = "node \(nodeId): \(error)"
                } catch {
                    result.status = .error
                    result.message = "node \(nodeId): \(error)"
                }
                resultsContinuation.yield(result)
                if packet.last || result.status != .success { break }
            }
            resultsContinuation.finish()
            try await tasks.waitForAll()
        }

    }

    /// Acknowledges packets upstream in order: this node's status, then those of the nodes after it.
    static func acknowledge(_ results: AsyncStream<LocalResult>, outbound: Outbound, downstreamCount: Int) async throws {
        for await result in results {
            var ack = Strata_Wire_PipelineAck()
            ack.sequenceNumber = result.sequenceNumber
            ack.replies = [result.status]
            ack.message = result.message
            ack.firstBadNode = -1
            if downstreamCount > 0 {
                if let failure = result.downstreamFailure {
                    ack.replies += Array(repeating: .error, count: downstreamCount)
                    ack.message = failure.message
                } else if let future = result.downstreamAck {
                    do {
                        let downstreamAck = try await future.get()
                        ack.replies += downstreamAck.replies
                    } catch let error as PipelineError {
                        var replies = Array(repeating: Strata_Wire_PipelineAck.Status.success, count: downstreamCount)
                        replies[min(error.failedNodeIndex, downstreamCount - 1)] = error.isChecksumError ? .errorChecksum : .error
                        ack.replies += replies
                        ack.message = error.message
                    }
                }
            }
            if let bad = ack.replies.firstIndex(where: { $0 != .success }) { ack.firstBadNode = Int32(bad) }
            var header = Strata_Wire_TransferHeader()
            header.op = .ack
            header.ack = ack
            try await outbound.write(try Transfer.frame(header))
            if ack.firstBadNode >= 0 { return }
        }
    }

    // MARK: - Reads

    /// Sends the stored frames covering a raw range; the reader verifies and decodes them.
    func send(_ op: Strata_Wire_ReadBlockOp, outbound: Outbound) async throws {
        let id = op.block.blockID
        var response = Strata_Wire_TransferResponse()
        let snapshot: ReplicaSnapshot
        do {
            guard let replica = store.replica(id), replica.generationStamp >= op.block.generationStamp else {
                throw RemoteException(.replicaNotFound, "Replica not found for block \(id)_\(op.block.generationStamp)")
            }
            let store = self.store
            snapshot = try await threadPool.runIfActive { try store.openForReading(id) }
        } catch let error as BlockFormatError where error.isCorruption {
            await reportCorrupt(id, reason: error.description)
            response.status = .errorChecksum
            response.message = "\(error)"
            try await outbound.write(try Self.responseFrame(response))
            return
        } catch {
            response.status = .errorNotFound
            response.message = "\(error)"
            try await outbound.write(try Self.responseFrame(response))
            return
        }
        let reader = snapshot.reader
        let rawLength = reader.rawLength
        // A range past the replica's end is refused (as HDFS does): this replica lacks bytes the
        // reader expects, and the reader goes to another.
        guard op.offset <= rawLength, op.length <= rawLength - op.offset else {
            response.status = .errorInvalid
            response.message = "Offset \(op.offset) and length \(op.length) don't match block \(id) (blockLen \(rawLength))"
            try await outbound.write(try Self.responseFrame(response))
            return
        }
        let end = op.length == 0 ? rawLength : op.offset + op.length
        let frameSize = UInt64(reader.rawFrameSize)
        let firstFrame = Int(op.offset / frameSize)
        let endFrame = end == op.offset ? firstFrame : Int((end - 1) / frameSize) + 1
        response.status = .success
        response.rawLength = rawLength
        response.rawFrameSize = UInt32(reader.rawFrameSize)
        response.firstFrameOffset = UInt64(firstFrame) * frameSize
        response.generationStamp = reader.header.generationStamp
        try await outbound.write(try Self.responseFrame(response))
        // Frames go out a megabyte (raw) at a time, and the next packet is read from disk while
        // this one is sent, so the node's disk, its network and the reader's decoding all work
        // at once.
        let perPacket = max(1, 1024 * 1024 / Int(frameSize))
        let threadPool = self.threadPool
        func readPacket(from start: Int) -> Task<ByteBuffer, any Error> {
            let end = min(endFrame, start + perPacket)
            return Task { try await threadPool.runIfActive { PacketBody.make(try (start..<end).map { try snapshot.storedFrame($0) }) } }
        }
        var sequence: UInt64 = 0
        var index = firstFrame
        var reading = readPacket(from: index)
        defer { reading.cancel() }
        repeat {
            let batchEnd = min(endFrame, index + perPacket)
            let body: ByteBuffer
            do {
                body = try await reading.value
            } catch let error as BlockFormatError where error.isCorruption {
                await reportCorrupt(id, reason: error.description)
                var failure = Strata_Wire_TransferResponse()
                failure.status = .errorChecksum
                failure.message = "\(error)"
                try await outbound.write(try Self.responseFrame(failure))
                return
            }
            if batchEnd < endFrame { reading = readPacket(from: batchEnd) }
            var header = Strata_Wire_TransferHeader()
            header.op = .packet
            header.packet.sequenceNumber = sequence
            header.packet.offsetInBlock = UInt64(index) * frameSize
            header.packet.frameCount = UInt32(batchEnd - index)
            header.packet.last = batchEnd == endFrame
            try await outbound.write(try Transfer.frame(header, body: body))
            sequence += 1
            index = batchEnd
        } while index < endFrame
    }
}
