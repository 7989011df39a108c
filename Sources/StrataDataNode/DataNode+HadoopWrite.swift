import NIOCore
import StrataBlockFormat
import StrataClient
import StrataCore
import StrataHadoopWire
import StrataWire
import Synchronization

/// OP_WRITE_BLOCK: a Hadoop client's pipeline write.
///
/// The first node (the one the client connects to) verifies each packet's chunk checksums,
/// builds Strata frames from the raw bytes (`HadoopFrameAssembler`, compressing each frame once)
/// and stores them; the packets that wait while it stores are taken as one batch. The rest of
/// the pipeline is Strata's own: the frames go to the client's other targets over a
/// `PipelineConnection`, where they are verified and stored as they are, rather than the Hadoop
/// op being forwarded for every node to verify chunks and compress the same bytes again. A
/// packet is acknowledged to the client, in order, once this node has written it and every node
/// after it has acknowledged the frames it became, so an acknowledged byte is in every replica's
/// file (HDFS's meaning of an ack).
///
/// Pipeline recovery stages cut the replica at the bytes the client says were acknowledged:
/// replicas are cut at the last whole frame below that (Strata's pipeline recovery works in
/// frames), and the bytes of the partial frame are taken from this node's replica and written
/// back into every replica of the new pipeline before the client is answered.
extension DataNode {
    /// What one packet became, handed to the task that acknowledges upstream.
    struct HadoopPacketResult: Sendable {
        var sequenceNumber: Int64
        var status: Hadoop_Hdfs_Status
        var message: String = ""
        var downstreamAck: EventLoopFuture<Strata_Wire_PipelineAck>?
        var downstreamFailure: PipelineError?
    }

    /// A write's replica and frame assembler, used by one task at a time.
    final class HadoopWriteTarget: @unchecked Sendable {
        let replica: ReplicaWriter
        let assembler: HadoopFrameAssembler

        init(replica: ReplicaWriter, assembler: HadoopFrameAssembler) {
            self.replica = replica
            self.assembler = assembler
        }
    }

    /// How a Hadoop stage maps onto Strata's replica operations.
    struct HadoopWriteSetup: Sendable {
        var block: Strata_Wire_ExtendedBlock
        var stage: Strata_Wire_WriteBlockOp.Stage
        var previousGenerationStamp: UInt64 = 0
        /// Bytes the client says every node acknowledged (the recovery stages).
        var acknowledgedBytes: UInt64 = 0
    }

    func hadoopWrite(_ op: Hadoop_Hdfs_OpWriteBlockProto, messages: inout HadoopInbound, outbound: HadoopOutbound) async throws {
        activeTransfers.add(1, ordering: .relaxed)
        defer { activeTransfers.subtract(1, ordering: .relaxed) }
        let hadoopBlock = op.header.baseHeader.block
        let name = Self.hadoopName(hadoopBlock)
        let checksum: HadoopChunkChecksum
        do {
            checksum = try HadoopChunkChecksum(requested: op.requestedChecksum)
        } catch {
            try await outbound.write(Self.hadoopResponse(.errorInvalid, "opWriteBlock \(name): \(error)"))
            return
        }
        var setup = HadoopWriteSetup(block: Strata_Wire_ExtendedBlock(), stage: .create)
        setup.block.blockID = hadoopBlock.blockID
        switch op.stage {
        case .pipelineSetupCreate:
            setup.block.generationStamp = hadoopBlock.generationStamp
        case .pipelineSetupAppend:
            setup.stage = .append
            setup.block.generationStamp = op.latestGenerationStamp
            // Strata's name node gives an appended block its new generation stamp when it grants
            // the append, so the block a client names may already carry it (hdfs-native sends it
            // as both the block's and the latest stamp) while this replica still has the stamp
            // it was finished with: the replica's own stamp is the one it is reopened from, as
            // long as it is not newer than the client's.
            if let stored = store.replica(hadoopBlock.blockID)?.generationStamp, stored <= hadoopBlock.generationStamp {
                setup.previousGenerationStamp = stored
            } else {
                setup.previousGenerationStamp = hadoopBlock.generationStamp
            }
        case .pipelineSetupStreamingRecovery, .pipelineSetupAppendRecovery, .pipelineCloseRecovery:
            setup.stage = .recover
            setup.block.generationStamp = op.latestGenerationStamp
            setup.acknowledgedBytes = op.minBytesRcvd
        default:
            try await outbound.write(Self.hadoopResponse(.errorUnsupported, "opWriteBlock \(name): stage \(op.stage) is not supported by Strata's data nodes"))
            return
        }
        guard setup.block.generationStamp >= hadoopBlock.generationStamp, setup.block.generationStamp > 0 || op.stage == .pipelineSetupCreate else {
            try await outbound.write(
                Self.hadoopResponse(.errorInvalid, "opWriteBlock \(name): new generation stamp \(op.latestGenerationStamp) is older than the block's"))
            return
        }

        let target: HadoopWriteTarget
        do {
            target = try await openHadoopReplica(&setup)
        } catch {
            logger.info("Hadoop write refused", metadata: ["block": "\(name)", "stage": "\(op.stage)", "error": "\(error)"])
            try await outbound.write(Self.hadoopResponse(.error, "opWriteBlock \(name) received exception \(error)"))
            return
        }
        let finished = HadoopWriteFlag()
        defer {
            // The writer went away (or failed): the replica stays unfinished for recovery.
            if !finished.isSet { target.replica.writer.abandon() }
            store.release(target.replica.grant)
        }
        let frameSize = target.assembler.rawFrameSize
        var downstream: PipelineConnection?
        if !op.targets.isEmpty {
            do {
                downstream = try await PipelineConnection.open(
                    block: setup.block, stage: setup.stage, targets: op.targets.map(Self.strataNode), rawFrameSize: frameSize,
                    clientName: op.header.clientName, previousGenerationStamp: setup.previousGenerationStamp, group: group)
            } catch let error as PipelineError {
                let bad = op.targets[min(max(error.failedNodeIndex, 0), op.targets.count - 1)]
                try await outbound.write(
                    Self.hadoopResponse(.error, "opWriteBlock \(name): \(error.message)") { response in
                        response.firstBadLink = "\(bad.id.ipAddr):\(bad.id.xferPort)"
                    })
                return
            }
        }
        defer { downstream?.close() }
        var strataSequence: UInt64 = 0
        if setup.stage == .recover, let partial = target.assembler.partialFrame() {
            // The acknowledged bytes of the partial frame the recovery cut off go back into every
            // replica before the client is told the pipeline is up.
            do {
                _ = try await storeHadoopFrames(partial.frames, in: target, sync: false, last: false)
            } catch {
                try await outbound.write(Self.hadoopResponse(.error, "opWriteBlock \(name) received exception \(error)"))
                return
            }
            if let downstream {
                var strataPacket = Strata_Wire_Packet()
                strataPacket.sequenceNumber = strataSequence
                strataPacket.offsetInBlock = UInt64(partial.firstFrame) * UInt64(frameSize)
                strataPacket.frameCount = UInt32(partial.frames.count)
                strataSequence += 1
                var failure: (index: Int, message: String)?
                do {
                    _ = try await downstream.send(strataPacket, body: PacketBody.make(partial.frames)).get()
                } catch let error as PipelineError {
                    failure = (error.failedNodeIndex, error.message)
                } catch {
                    failure = (0, "\(error)")
                }
                if let failure {
                    let bad = op.targets[min(max(failure.index, 0), op.targets.count - 1)]
                    try await outbound.write(
                        Self.hadoopResponse(.error, "opWriteBlock \(name): \(failure.message)") { response in
                            response.firstBadLink = "\(bad.id.ipAddr):\(bad.id.xferPort)"
                        })
                    return
                }
            }
        }
        try await outbound.write(Self.hadoopResponse(.success) { $0.firstBadLink = "" })

        let downstreamCount = op.targets.count
        let (results, resultsContinuation) = AsyncStream.makeStream(of: [HadoopPacketResult].self)
        let pipelineBroken = HadoopWriteFlag()
        let queue = HadoopWriteQueue()
        let firstSequence = strataSequence
        let pipeline = downstream
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                try await Self.acknowledgeHadoop(results, outbound: outbound, downstreamCount: downstreamCount)
                pipelineBroken.set()
            }
            tasks.addTask { [self] in
                defer {
                    resultsContinuation.finish()
                    queue.writerEnded()
                }
                var sequence = firstSequence
                var wakeups = queue.writerWakeups.makeAsyncIterator()
                // Packets whose bytes are in the frame still being filled, not yet stored: they are
                // acknowledged with the batch that stores that frame.
                var carried: [(item: HadoopWriteQueue.Item, end: UInt64?)] = []
                while true {
                    let (items, closed) = queue.take()
                    if items.isEmpty && carried.isEmpty {
                        if closed { return }
                        _ = await wakeups.next()
                        continue
                    }
                    let outcome = await writeHadoopBatch(
                        carried: carried, items, to: target, downstream: pipeline, moreWaiting: { queue.hasItems },
                        strataSequence: &sequence, results: resultsContinuation)
                    carried = outcome.carried
                    if outcome.finished { finished.set() }
                    if outcome.stop { return }
                }
            }
            defer { queue.close() }
            var readerWakeups = queue.readerWakeups.makeAsyncIterator()
            // Where the next packet's new bytes start (the writer task owns the assembler).
            var expected = target.assembler.rawLength
            // After a failed ack the client rebuilds its pipeline: this connection takes no more.
            while !pipelineBroken.isSet, let message = try await messages.next() {
                let packet: HadoopPacket
                switch message {
                case .packet(let received):
                    packet = received
                case .malformed(let error):
                    logger.info("Hadoop write broke the protocol", metadata: ["block": "\(name)", "reason": "\(error)"])
                    queue.push(.refused(HadoopPacketResult(sequenceNumber: HadoopDataTransfer.heartbeatSequenceNumber, status: .errorInvalid, message: error.message)))
                    return
                default:
                    return
                }
                let header = packet.header
                if header.seqno == HadoopDataTransfer.heartbeatSequenceNumber && header.dataLen == 0 && !header.lastPacketInBlock {
                    queue.push(.heartbeat(header.seqno))
                    continue
                }
                if let problem = checksum.verify(data: packet.data, checksums: packet.checksums, offsetInBlock: header.offsetInBlock) {
                    logger.warning("Hadoop write packet refused", metadata: ["block": "\(name)", "reason": "\(problem)"])
                    queue.push(.refused(HadoopPacketResult(sequenceNumber: header.seqno, status: .errorChecksum, message: problem)))
                    break
                }
                // A packet starts where the replica ends; one resent after a recovery may start
                // earlier, and only its new bytes count.
                guard header.offsetInBlock >= 0, UInt64(header.offsetInBlock) <= expected,
                    UInt64(header.offsetInBlock) + UInt64(header.dataLen) >= expected || header.dataLen == 0
                else {
                    let message = "packet at offset \(header.offsetInBlock) of \(header.dataLen) bytes does not continue \(name) at \(expected)"
                    queue.push(.refused(HadoopPacketResult(sequenceNumber: header.seqno, status: .errorInvalid, message: message)))
                    break
                }
                var data = packet.data
                data.moveReaderIndex(forwardBy: min(data.readableBytes, Int(expected - min(expected, UInt64(header.offsetInBlock)))))
                expected += UInt64(data.readableBytes)
                let full = queue.push(.packet(sequenceNumber: header.seqno, data: data, last: header.lastPacketInBlock, sync: header.syncBlock))
                if header.lastPacketInBlock { break }
                if full {
                    // The writer is behind: wait for it to take what waits (or to stop).
                    while queue.isFull, !pipelineBroken.isSet {
                        guard await readerWakeups.next() != nil else { break }
                    }
                }
            }
            queue.close()
            try await tasks.waitForAll()
        }
    }

    /// What a batch of packets came to.
    struct HadoopBatchOutcome {
        var finished = false
        /// The write is over (the last packet, a refusal or a failure).
        var stop = false
        /// Packets (and heartbeats after them) left unacknowledged because their bytes are in the
        /// frame still being filled, which was not stored: the next batch stores and
        /// acknowledges them.
        var carried: [(item: HadoopWriteQueue.Item, end: UInt64?)] = []
    }

    /// Stores a batch of verified packets as one: their bytes become frames once, go down the
    /// pipeline as one Strata packet and into this node's replica; every packet of the batch is
    /// acknowledged once both are done. A refusal in the batch is answered after the packets
    /// before it.
    ///
    /// The frame still being filled is stored too (uncompressed, to be replaced by the next
    /// frames), so that an acknowledged packet is on every node's disk, unless more packets
    /// already wait (`moreWaiting`, asked once the batch's full frames are compressed): then the
    /// packets whose bytes lie in that frame are carried to the next batch, which comes at once,
    /// and the frame is not written again and again while a fast writer fills it. `carried`:
    /// such packets from the batch before, whose bytes the assembler already holds.
    func writeHadoopBatch(
        carried: [(item: HadoopWriteQueue.Item, end: UInt64?)], _ items: [HadoopWriteQueue.Item], to target: HadoopWriteTarget, downstream: PipelineConnection?,
        moreWaiting: @escaping @Sendable () -> Bool, strataSequence: inout UInt64, results: AsyncStream<[HadoopPacketResult]>.Continuation
    ) async -> HadoopBatchOutcome {
        var outcome = HadoopBatchOutcome()
        var refusal: HadoopPacketResult?
        var taken: [HadoopWriteQueue.Item] = []
        for item in items {
            if case .refused(let result) = item {
                refusal = result
                break
            }
            taken.append(item)
        }
        let packets = taken.compactMap { item -> (data: ByteBuffer, last: Bool, sync: Bool)? in
            if case .packet(_, let data, let last, let sync) = item { return (data, last, sync) }
            return nil
        }
        let last = packets.contains { $0.last }
        let sync = packets.contains { $0.sync }
        let mustStore = last || sync || refusal != nil
        let frameSize = UInt64(target.assembler.rawFrameSize)
        var shared = HadoopPacketResult(sequenceNumber: 0, status: .success)
        // Where each packet's bytes end in the block, and the end of what this batch stores.
        var ends: [UInt64] = []
        var stored = UInt64.max
        do {
            // Heartbeats alone store nothing.
            if !packets.isEmpty || !carried.isEmpty {
                let (firstFrame, frames, packetEnds, storedThrough) = try await threadPool.runIfActive {
                    var ends: [UInt64] = []
                    for packet in packets {
                        packet.data.withUnsafeReadableBytes { target.assembler.append($0) }
                        ends.append(target.assembler.rawLength)
                    }
                    let (firstFrame, frames) = target.assembler.encodeBatch(last: last) { mustStore || !moreWaiting() }
                    return (firstFrame, frames, ends, target.assembler.storedThrough)
                }
                ends = packetEnds
                if !storedThrough.partialStored { stored = storedThrough.fullFramesEnd }
                // The last packet finishes the replicas (and a sync packet syncs them) even when
                // it brings no frame: a block that ends on a frame boundary.
                if !frames.isEmpty || last || sync {
                    if let downstream {
                        var strataPacket = Strata_Wire_Packet()
                        strataPacket.sequenceNumber = strataSequence
                        strataPacket.offsetInBlock = UInt64(firstFrame) * frameSize
                        strataPacket.frameCount = UInt32(frames.count)
                        strataPacket.last = last
                        strataPacket.sync = sync
                        strataSequence += 1
                        do {
                            shared.downstreamAck = try await downstream.send(strataPacket, body: PacketBody.make(frames))
                        } catch let error as PipelineError {
                            shared.downstreamFailure = error
                        }
                    }
                    outcome.finished = try await storeHadoopFrames(frames, in: target, sync: sync, last: last)
                    if outcome.finished {
                        // Reported before the last packet is acknowledged: the client's `complete`
                        // then finds this replica reported.
                        await reportReceived(target.replica.grant.blockId)
                    }
                }
            }
        } catch let error as BlockFormatError {
            shared.status = error.isCorruption ? .errorChecksum : .error
            shared.message = "node \(nodeId): \(error)"
        } catch {
            shared.status = .error
            shared.message = "node \(nodeId): \(error)"
        }
        // Acknowledged in order: the carried packets, then this batch's, up to the first whose
        // bytes were not stored (on success); that one and everything after it are carried.
        var answered: [HadoopPacketResult] = []
        defer { if !answered.isEmpty { results.yield(answered) } }
        var packetIndex = 0
        let ordered = carried + taken.map { item -> (item: HadoopWriteQueue.Item, end: UInt64?) in
            guard case .packet = item else { return (item, nil) }
            defer { packetIndex += 1 }
            return (item, packetIndex < ends.count ? ends[packetIndex] : nil)
        }
        for (position, entry) in ordered.enumerated() {
            if shared.status == .success, let end = entry.end, end > stored {
                outcome.carried = Array(ordered[position...])
                break
            }
            switch entry.item {
            case .heartbeat(let sequenceNumber):
                answered.append(HadoopPacketResult(sequenceNumber: sequenceNumber, status: .success))
            case .packet(let sequenceNumber, _, let last, _):
                var result = shared
                result.sequenceNumber = sequenceNumber
                answered.append(result)
                if last { outcome.stop = true }
            case .refused:
                break
            }
        }
        if shared.status != .success { outcome.stop = true }
        if let refusal {
            answered.append(refusal)
            outcome.stop = true
        }
        return outcome
    }

    /// Stores a packet's frames in this node's replica: the first replaces the partial frame the
    /// replica ends with, if any. Returns whether the replica was finished (`last`).
    func storeHadoopFrames(_ frames: [[UInt8]], in target: HadoopWriteTarget, sync: Bool, last: Bool) async throws -> Bool {
        let store = self.store
        let id = target.replica.grant.blockId
        return try await threadPool.runIfActive {
            // Readers of the open block must not see the last frame half rewritten.
            try store.withFileLock(id) {
                // Recovery gave the replica to another writer: this one must not touch it.
                guard !target.replica.grant.isRevoked else {
                    throw RemoteException(.replicaNotFound, "replica \(id) was taken over by recovery")
                }
                let writer = target.replica.writer
                for frame in frames {
                    try frame.withUnsafeBytes { bytes in try writer.appendEncodedFrame(bytes) }
                }
                if sync {
                    try writer.synchronize()
                } else if !last {
                    writer.startWriteback()
                }
                store.updateBeingWritten(id, rawLength: writer.rawLength)
                guard last else { return false }
                let summary = try writer.finish()
                try store.finalize(id, summary: summary)
                return true
            }
        }
    }

    /// The cluster's frame size (the name node's server defaults), which blocks written by
    /// Hadoop clients use like those Strata's client writes: Strata's append re-encodes a block's
    /// last frame assuming it.
    func clusterRawFrameSize() async throws -> Int {
        if let defaults = cachedServerDefaults.withLock({ $0 }) { return Int(defaults.rawFrameSize) }
        let defaults: Strata_Wire_ServerDefaults = try await nameNode.call(.getServerDefaults, Strata_Wire_Empty(), user: Self.rpcUser)
        guard Int(defaults.rawFrameSize) >= Limits.minimumRawFrameSizeBytes, Int(defaults.rawFrameSize) <= Limits.maximumRawFrameSizeBytes else {
            throw RemoteException.io("the name node's frame size \(defaults.rawFrameSize) is out of range")
        }
        cachedServerDefaults.withLock { $0 = defaults }
        return Int(defaults.rawFrameSize)
    }

    /// Opens this node's replica for a Hadoop write's stage, with the frame assembler that
    /// continues it; `setup.block.numBytes` becomes where the rest of the pipeline resumes.
    func openHadoopReplica(_ setup: inout HadoopWriteSetup) async throws -> HadoopWriteTarget {
        let store = self.store
        let options = configuration.frameOptions
        let block = setup.block
        let id = block.blockID
        // Appends and recoveries keep the frame size the replica has.
        let newFrameSize = setup.stage == .create || store.replica(id) == nil ? try await clusterRawFrameSize() : Limits.defaultRawFrameSizeBytes
        switch setup.stage {
        case .append:
            let previous = setup.previousGenerationStamp
            return try await threadPool.runIfActive {
                // The partial last frame's bytes, which the first new frame repeats.
                let snapshot = try store.openForReading(id)
                let frameSize = snapshot.reader.rawFrameSize
                let length = snapshot.reader.rawLength
                let whole = length - length % UInt64(frameSize)
                let pending = try snapshot.reader.read(offset: whole, length: Int(length - whole))
                let replica = try store.reopenReplica(block, previousGenerationStamp: previous, options: options)
                guard replica.writer.rawLength == length else {
                    replica.writer.abandon()
                    store.release(replica.grant)
                    throw RemoteException.io("replica \(id) changed while it was reopened for append")
                }
                let assembler = HadoopFrameAssembler(
                    rawFrameSize: frameSize, fullFrames: Int(whole / UInt64(frameSize)), pending: pending, options: options)
                return HadoopWriteTarget(replica: replica, assembler: assembler)
            }
        case .recover:
            let acknowledged = setup.acknowledgedBytes
            let (target, resumeAt) = try await threadPool.runIfActive { () throws -> (HadoopWriteTarget, UInt64) in
                var frameSize = newFrameSize
                var pending: [UInt8] = []
                if store.replica(id) != nil {
                    let snapshot = try store.openForReading(id)
                    frameSize = snapshot.reader.rawFrameSize
                    guard snapshot.reader.rawLength >= acknowledged else {
                        throw RemoteException.io(
                            "Cannot recover replica \(id): it holds \(snapshot.reader.rawLength) bytes, fewer than the \(acknowledged) acknowledged")
                    }
                    let whole = acknowledged - acknowledged % UInt64(frameSize)
                    pending = try snapshot.reader.read(offset: whole, length: Int(acknowledged - whole))
                }
                let whole = acknowledged - UInt64(pending.count)
                var cut = block
                cut.numBytes = whole
                let replica = try store.recoverForWriting(cut, rawFrameSize: frameSize, options: options)
                let assembler = HadoopFrameAssembler(
                    rawFrameSize: frameSize, fullFrames: Int(whole / UInt64(frameSize)), pending: pending, options: options)
                return (HadoopWriteTarget(replica: replica, assembler: assembler), whole)
            }
            setup.block.numBytes = resumeAt
            return target
        default:
            return try await threadPool.runIfActive {
                let frameSize = newFrameSize
                let replica = try store.createReplica(block, rawFrameSize: frameSize, options: options)
                return HadoopWriteTarget(
                    replica: replica, assembler: HadoopFrameAssembler(rawFrameSize: frameSize, fullFrames: 0, pending: [], options: options))
            }
        }
    }

    /// A flag one task sets and others read (the acknowledging task stopped; the replica was
    /// finished).
    final class HadoopWriteFlag: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .acquiring) }
        func set() { value.store(true, ordering: .releasing) }
    }

    /// Packets the receiving loop verified, waiting for the writer task, which takes all that
    /// wait at once. Bounded: the receiving loop waits while more than
    /// `maximumBytes` of data wait.
    final class HadoopWriteQueue: Sendable {
        enum Item: Sendable {
            case packet(sequenceNumber: Int64, data: ByteBuffer, last: Bool, sync: Bool)
            case heartbeat(Int64)
            /// A packet refused (bad checksum, wrong offset, malformed): answered after the
            /// packets before it, and the write ends.
            case refused(HadoopPacketResult)
        }

        static let maximumBytes = Limits.maximumUnacknowledgedBytes

        private let state = Mutex<(items: [Item], bytes: Int, closed: Bool)>(([], 0, false))
        let writerWakeups: AsyncStream<Void>
        private let wakeWriter: AsyncStream<Void>.Continuation
        let readerWakeups: AsyncStream<Void>
        private let wakeReader: AsyncStream<Void>.Continuation

        init() {
            (writerWakeups, wakeWriter) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            (readerWakeups, wakeReader) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }

        /// Adds an item for the writer; returns whether the queue is now over its bound.
        @discardableResult
        func push(_ item: Item) -> Bool {
            let full = state.withLock { state in
                state.items.append(item)
                if case .packet(_, let data, _, _) = item { state.bytes += data.readableBytes }
                return state.bytes > Self.maximumBytes
            }
            wakeWriter.yield()
            return full
        }

        var isFull: Bool { state.withLock { $0.bytes > Self.maximumBytes } }

        /// Whether items wait for the writer.
        var hasItems: Bool { state.withLock { !$0.items.isEmpty } }

        /// Everything waiting, and whether the receiving loop is done.
        func take() -> (items: [Item], closed: Bool) {
            let taken = state.withLock { state in
                defer {
                    state.items = []
                    state.bytes = 0
                }
                return (state.items, state.closed)
            }
            wakeReader.yield()
            return taken
        }

        /// No more items come.
        func close() {
            state.withLock { $0.closed = true }
            wakeWriter.yield()
        }

        /// The writer stopped: a receiving loop waiting for room goes on (and finds the write over).
        func writerEnded() {
            wakeReader.finish()
        }
    }

    /// Acknowledges packets to the client in order: this node's status, then those of the nodes
    /// after it (a node that failed, and none after it). Stops after a failure.
    static func acknowledgeHadoop(_ results: AsyncStream<[HadoopPacketResult]>, outbound: HadoopOutbound, downstreamCount: Int) async throws {
        // A batch's acknowledgements go out in one write.
        for await batch in results {
            var acks: [ByteBuffer] = []
            var failed = false
            for result in batch {
                var replies = [result.status]
                if downstreamCount > 0 && result.status == .success {
                    if let failure = result.downstreamFailure {
                        replies += Self.hadoopReplies(failedAt: failure, downstreamCount: downstreamCount)
                    } else if let future = result.downstreamAck {
                        do {
                            let ack = try await future.get()
                            replies += ack.replies.map(Self.hadoopStatus)
                        } catch let error as PipelineError {
                            replies += Self.hadoopReplies(failedAt: error, downstreamCount: downstreamCount)
                        }
                    } else {
                        // A heartbeat: the nodes after this one are alive as far as it knows.
                        replies += Array(repeating: .success, count: downstreamCount)
                    }
                }
                var ack = Hadoop_Hdfs_PipelineAckProto()
                ack.seqno = result.sequenceNumber
                ack.reply = replies
                // The flag carries each status in its low 4 bits (ECN and SLOW bits left 0).
                ack.flag = replies.map { UInt32($0.rawValue) }
                ack.downstreamAckTimeNanos = 0
                acks.append(try HadoopDataTransfer.delimited(ack))
                if replies.contains(where: { $0 != .success }) {
                    failed = true
                    break
                }
            }
            try await outbound.write(contentsOf: acks)
            if failed { return }
        }
    }

    /// Replies for the nodes after this one when the one at `failedAt.failedNodeIndex` (among
    /// them) failed: those before it succeeded, and none after it is listed, so a client blames
    /// the failed node (Hadoop clients take the last reply that is not SUCCESS).
    static func hadoopReplies(failedAt error: PipelineError, downstreamCount: Int) -> [Hadoop_Hdfs_Status] {
        let index = min(max(error.failedNodeIndex, 0), downstreamCount - 1)
        return Array(repeating: .success, count: index) + [error.isChecksumError ? .errorChecksum : .error]
    }

    static func hadoopStatus(_ status: Strata_Wire_PipelineAck.Status) -> Hadoop_Hdfs_Status {
        switch status {
        case .success: .success
        case .errorChecksum: .errorChecksum
        default: .error
        }
    }
}
