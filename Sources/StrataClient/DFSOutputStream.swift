import Foundation
import NIOCore
import StrataCore
import StrataWire

/// Writes one file: raw bytes are cut into frames (compressed here, in parallel) and sent in
/// packets through a pipeline of data nodes, one block at a time. Used by one task.
///
/// `hflush` makes the bytes written so far visible to readers, `hsync` also makes them durable
/// on every replica; `close` finishes the last block and closes the file, returning once the
/// name node has recorded it.
public final class DFSOutputStream {
    let client: DFSClient
    /// The path the file was opened with; the name node follows the file by `fileId` if it
    /// is renamed while open.
    public let path: String
    let fileId: UInt64
    let blockSize: UInt64
    let rawFrameSize: Int
    /// Raw bytes after the last frame boundary of the current block (not yet in a full frame).
    private var pending: [UInt8]
    /// The block being written, its pipeline, and how far it is written.
    private var block: Strata_Wire_LocatedBlock?
    private var pipeline: PipelineConnection?
    private var appendStage = false
    /// The appended block's stamp before the append: its replicas must have it to be reopened.
    private let previousGenerationStamp: UInt64
    /// Raw bytes of the current block in full frames already sent.
    private var blockBytesInFullFrames: UInt64 = 0
    private var sequence: UInt64 = 0
    private let packetBuffers = PacketBuffers()
    /// Whether the data written so far compresses (see `CompressionProbe`).
    private let compressionProbe = CompressionProbe()
    /// Packets of the current block sent but not yet acknowledged by every node: pipeline
    /// recovery resends them.
    private var unacknowledged: [(packet: Strata_Wire_Packet, body: ByteBuffer)] = []
    /// Packets handed to `sendFrames` and being compressed, oldest first; each is sent once
    /// `encodeAhead` newer ones are queued behind it, so both cores always have frames to compress.
    private var encoding: [(packet: Strata_Wire_Packet, frames: Task<[[UInt8]], Never>)] = []
    /// Nodes that failed in the current block's pipeline, and how many nodes it started with.
    private var failedNodes: [String] = []
    private var pipelineWidth = 0
    private var closed = false
    public private(set) var bytesWritten: UInt64 = 0

    init(
        client: DFSClient, path: String, blockSize: UInt64, rawFrameSize: Int, initialLength: UInt64,
        lastBlock: Strata_Wire_LocatedBlock?, continuesLastBlock: Bool, pendingTail: [UInt8], previousGenerationStamp: UInt64 = 0,
        fileId: UInt64
    ) {
        self.client = client
        self.path = path
        self.fileId = fileId
        self.blockSize = blockSize
        self.rawFrameSize = rawFrameSize
        self.pending = pendingTail
        self.bytesWritten = initialLength
        self.previousGenerationStamp = previousGenerationStamp
        if let lastBlock {
            self.block = lastBlock
            // An append continues a partly filled last block where it ends; after a full one
            // the next write starts a new block.
            self.appendStage = continuesLastBlock
            self.blockBytesInFullFrames = continuesLastBlock ? lastBlock.block.numBytes - UInt64(pendingTail.count) : blockSize
        }
        client.openStreams.add(1, ordering: .relaxed)
    }

    deinit {
        pipeline?.close()
        client.openStreams.subtract(1, ordering: .relaxed)
    }

    private var blockBytes: UInt64 { blockBytesInFullFrames + UInt64(pending.count) }

    /// Raw bytes in a full packet: whole frames, about `Limits.packetRawBytes`.
    private var packetBytes: Int { max(rawFrameSize, Limits.packetRawBytes / rawFrameSize * rawFrameSize) }

    public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try await write(Array(bytes))
    }

    public func write(_ bytes: [UInt8]) async throws {
        try await write(contentsOf: bytes)
    }

    /// Writes the readable bytes of a buffer (a piece of an HTTP body, say) without an
    /// intermediate array.
    public func write(_ buffer: ByteBuffer) async throws {
        try await write(contentsOf: buffer.readableBytesView)
    }

    private func write<Bytes: RandomAccessCollection>(contentsOf bytes: Bytes) async throws where Bytes.Element == UInt8 {
        guard !closed else { throw RemoteException.io("stream for \(path) is closed") }
        var start = bytes.startIndex
        while start != bytes.endIndex {
            // No pipeline yet: the first block, the next one, or (after `append`) the reopened last one.
            if pipeline == nil || blockBytes >= blockSize { try await startBlock() }
            // Fill the packet being gathered, up to the block's end: a full packet is then handed
            // to compression as it is, without being copied again.
            let room = min(UInt64(bytes.distance(from: start, to: bytes.endIndex)), blockSize - blockBytes, UInt64(max(packetBytes - pending.count, 0)))
            let end = bytes.index(start, offsetBy: Int(room))
            pending.append(contentsOf: bytes[start..<end])
            start = end
            if blockBytes == blockSize {
                // The packet that ends a block goes out with the last-packet flag.
                try await finishBlock()
            } else if pending.count >= packetBytes {
                try await sendFrames(count: packetBytes, last: false, sync: false)
            }
        }
        bytesWritten += UInt64(bytes.count)
    }

    /// Sends `count` bytes from the front of `pending` as frames; full frames leave `pending`.
    private func sendFrames(count: Int, last: Bool, sync: Bool) async throws {
        let codecs = client.codecs
        var packet = Strata_Wire_Packet()
        packet.sequenceNumber = sequence
        packet.offsetInBlock = blockBytesInFullFrames
        packet.frameCount = UInt32((count + rawFrameSize - 1) / rawFrameSize)
        packet.rawLength = UInt64(count)
        packet.last = last
        packet.sync = sync
        sequence += 1
        // Only whole frames are done with; a short last frame is re-sent whole later.
        let whole = last ? count : count / rawFrameSize * rawFrameSize
        let raw: [UInt8]
        if whole == pending.count {
            // The usual case: the packet is everything pending; it is handed over whole.
            raw = pending
            pending = packetBuffers.take(capacity: packetBytes)
        } else {
            var copy = packetBuffers.take(capacity: count)
            copy.append(contentsOf: pending[0..<count])
            raw = copy
            pending.removeFirst(whole)
        }
        blockBytesInFullFrames += UInt64(whole)
        // The packet before this one goes out now that its frames are ready; this one is
        // compressed while the caller gathers the next (a put reads its input, WebHDFS receives
        // the request body), so compression overlaps everything else.
        let frameSize = rawFrameSize
        let buffers = packetBuffers
        let probe = compressionProbe
        let probing = probe.probing
        encoding.append((packet, Task {
            let frames = await codecs.encodeFrames(raw, frameSize: frameSize, probing: probing)
            buffers.giveBack(raw)
            probe.record(frames)
            return frames
        }))
        try await transmitEncoded(keeping: last || sync ? 0 : Self.encodeAhead)
    }

    /// Packets compressed ahead of the one being sent.
    static let encodeAhead = 2

    /// Sends the oldest packets being compressed, once their frames are ready, until at most
    /// `keeping` are left.
    private func transmitEncoded(keeping: Int = 0) async throws {
        while encoding.count > keeping {
            let (packet, frames) = encoding.removeFirst()
            try await transmit(packet, body: PacketBody.make(await frames.value))
        }
    }

    /// Sends what is left of the current block with the last-packet flag and waits for every
    /// replica to finish it.
    private func finishBlock() async throws {
        guard pipeline != nil else { return }
        try await sendFrames(count: pending.count, last: true, sync: false)
        try await waitForAcknowledgements()
        self.pipeline?.close()
        self.pipeline = nil
    }

    // MARK: - Pipeline recovery

    /// Sends a packet, keeping it until every node has acknowledged it; a failed pipeline is
    /// recovered (which resends it).
    private func transmit(_ packet: Strata_Wire_Packet, body: ByteBuffer) async throws {
        forgetAcknowledged()
        unacknowledged.append((packet, body))
        do {
            _ = try await pipeline!.send(packet, body: body)
        } catch let error as PipelineError {
            try await recoverPipeline(after: error)
        }
    }

    private func forgetAcknowledged() {
        guard let pipeline else { return }
        let acknowledged = pipeline.lastAcknowledgedSequence
        if let firstUnacknowledged = unacknowledged.firstIndex(where: { Int64($0.packet.sequenceNumber) > acknowledged }) {
            unacknowledged.removeFirst(firstUnacknowledged)
        } else {
            unacknowledged.removeAll()
        }
    }

    /// Waits until every node has acknowledged every packet, recovering the pipeline on failure.
    private func waitForAcknowledgements() async throws {
        try await transmitEncoded()
        while let pipeline {
            do {
                try await pipeline.waitForAcknowledgements()
                unacknowledged.removeAll()
                return
            } catch let error as PipelineError {
                try await recoverPipeline(after: error)
            }
        }
    }

    /// Replaces a failed pipeline (HDFS pipeline recovery): the failed node is dropped, the
    /// block takes a new generation stamp, a replacement node gets a copy of the acknowledged
    /// frames from a surviving node, every node cuts its replica to the acknowledged length, and
    /// the packets not acknowledged are sent again. Acknowledged bytes are never lost: every
    /// surviving node holds them.
    private func recoverPipeline(after error: PipelineError) async throws {
        var failure = error
        for _ in 0..<Limits.maximumPipelineRecoveries {
            guard var current = block else { throw failure }
            forgetAcknowledged()
            pipeline?.close()
            pipeline = nil
            // Every packet, the block's last included, was acknowledged: the block is finished
            // on every node and nothing needs recovering.
            if unacknowledged.isEmpty && encoding.isEmpty && blockBytesInFullFrames % UInt64(rawFrameSize) != 0 { return }
            let nodes = current.locations
            let bad = min(max(failure.failedNodeIndex, 0), nodes.count - 1)
            failedNodes.append(nodes[bad].nodeID)
            var survivors = nodes
            survivors.remove(at: bad)
            client.logger.warning("write pipeline failed; recovering", metadata: [
                "path": "\(path)", "block": "\(current.block.blockID)", "node": "\(nodes[bad].ipAddress):\(nodes[bad].transferPort)",
                "error": "\(failure.message)"])
            guard !survivors.isEmpty else {
                throw RemoteException.io(
                    "All datanodes of block \(current.block.blockID) of \(path) are bad. Aborting. Last failure: \(failure.message)")
            }
            // Packets start on frame boundaries: every survivor holds at least up to the first
            // packet not acknowledged.
            let resumeAt = unacknowledged.first?.packet.offsetInBlock ?? encoding.first?.packet.offsetInBlock ?? blockBytesInFullFrames
            var request = Strata_Wire_UpdateBlockForPipelineRequest()
            request.path = path
            request.fileID = fileId
            request.block = current.block
            request.existingNodeIds = survivors.map(\.nodeID)
            request.failedNodeIds = failedNodes
            request.wantReplacement = survivors.count < pipelineWidth
            let response: Strata_Wire_UpdateBlockForPipelineResponse = try await client.call(.updateBlockForPipeline, request)
            var targets = survivors
            if response.hasReplacement {
                if try await copyAcknowledged(of: current.block, length: resumeAt, from: survivors[0], to: response.replacement) {
                    targets.append(response.replacement)
                } else {
                    failedNodes.append(response.replacement.nodeID)
                }
            }
            var recovered = response.block
            recovered.numBytes = resumeAt
            current.locations = targets
            block = current
            do {
                pipeline = try await PipelineConnection.open(
                    block: recovered, stage: .recover, targets: targets, rawFrameSize: rawFrameSize, clientName: client.clientName,
                    previousGenerationStamp: current.block.generationStamp, group: client.group)
            } catch let error as PipelineError {
                // The name node still records the old stamp: the next attempt starts from it.
                failure = error
                continue
            }
            var update = Strata_Wire_UpdatePipelineRequest()
            update.path = path
            update.fileID = fileId
            update.oldBlock = current.block
            update.newBlock = recovered
            update.nodeIds = targets.map(\.nodeID)
            let _: Strata_Wire_Empty = try await client.call(.updatePipeline, update)
            current.block.generationStamp = recovered.generationStamp
            block = current
            do {
                for entry in unacknowledged {
                    _ = try await pipeline!.send(entry.packet, body: entry.body)
                }
                if unacknowledged.isEmpty && encoding.isEmpty && !pending.isEmpty {
                    // Bytes flushed earlier in a partial frame were cut: send them again.
                    let frames = await client.codecs.encodeFrames(pending, frameSize: rawFrameSize)
                    var packet = Strata_Wire_Packet()
                    packet.sequenceNumber = sequence
                    packet.offsetInBlock = blockBytesInFullFrames
                    packet.frameCount = UInt32(frames.count)
                    packet.rawLength = UInt64(pending.count)
                    sequence += 1
                    let body = PacketBody.make(frames)
                    unacknowledged.append((packet, body))
                    _ = try await pipeline!.send(packet, body: body)
                }
                client.logger.info("write pipeline recovered", metadata: [
                    "path": "\(path)", "block": "\(current.block.blockID)", "generationStamp": "\(recovered.generationStamp)",
                    "nodes": "\(targets.map { "\($0.ipAddress):\($0.transferPort)" })", "resentPackets": "\(unacknowledged.count)"])
                return
            } catch let error as PipelineError {
                failure = error
            }
        }
        throw RemoteException.io("could not recover the write pipeline of \(path): \(failure.message)")
    }

    /// Copies the first `length` raw bytes of a block's replica from a surviving node to a
    /// replacement node. False when the copy failed (the pipeline goes on without it).
    private func copyAcknowledged(
        of block: Strata_Wire_ExtendedBlock, length: UInt64, from source: Strata_Wire_DatanodeInfo, to target: Strata_Wire_DatanodeInfo
    ) async throws -> Bool {
        // Nothing acknowledged yet: the replacement joins with an empty replica.
        guard length > 0 else { return true }
        var header = Strata_Wire_TransferHeader()
        header.op = .transferBlock
        header.transfer.block = block
        header.transfer.block.numBytes = length
        header.transfer.targets = [target]
        header.transfer.clientName = client.clientName
        do {
            let response = try await TransferRequest.exchange(header, with: source, group: client.group)
            if response.status == .success { return true }
            client.logger.warning("copy to the replacement node failed", metadata: ["block": "\(block.blockID)", "error": "\(response.message)"])
        } catch {
            client.logger.warning("copy to the replacement node failed", metadata: ["block": "\(block.blockID)", "error": "\(error)"])
        }
        return false
    }

    /// Asks the name node for the next block (or reopens the appended one) and sets up its pipeline.
    private func startBlock() async throws {
        if appendStage, let block, pipeline == nil, blockBytes < blockSize {
            pipeline = try await PipelineConnection.open(
                block: block.block, stage: .append, targets: block.locations, rawFrameSize: Int(block.rawFrameSize),
                clientName: client.clientName, previousGenerationStamp: previousGenerationStamp, group: client.group)
            appendStage = false
            unacknowledged = []
            failedNodes = []
            pipelineWidth = block.locations.count
            return
        }
        var excluded: [String] = []
        var delay = 0.005
        let deadline = client.clock.now + .seconds(client.configuration.retryWindowSeconds)
        while true {
            var request = Strata_Wire_AddBlockRequest()
            request.path = path
            request.fileID = fileId
            if let block {
                request.previous = block.block
                request.previous.numBytes = blockBytes
            }
            request.excludeNodeIds = excluded
            request.writerNodeID = client.configuration.localNodeId
            let located: Strata_Wire_LocatedBlock
            do {
                let response: Strata_Wire_AddBlockResponse = try await client.call(.addBlock, request)
                located = response.block
            } catch let error as RemoteException where error.exceptionClass == .notReplicatedYet {
                if client.clock.now > deadline { throw error }
                try await client.clock.sleep(for: .seconds(delay))
                delay = min(delay * 2, 0.4)
                continue
            }
            do {
                pipeline = try await PipelineConnection.open(
                    block: located.block, stage: .create, targets: located.locations, rawFrameSize: Int(located.rawFrameSize),
                    clientName: client.clientName, group: client.group)
            } catch let error as PipelineError {
                // Give the block back and try again without the node that failed (HDFS does the same).
                var abandon = Strata_Wire_AbandonBlockRequest()
                abandon.path = path
                abandon.fileID = fileId
                abandon.block = located.block
                let _: Strata_Wire_Empty = try await client.call(.abandonBlock, abandon)
                let bad = located.locations[min(error.failedNodeIndex, located.locations.count - 1)]
                excluded.append(bad.nodeID)
                if excluded.count >= 3 { throw RemoteException.io("could not set up a pipeline for \(path): \(error)") }
                continue
            }
            block = located
            blockBytesInFullFrames = 0
            sequence = 0
            unacknowledged = []
            failedNodes = []
            pipelineWidth = located.locations.count
            return
        }
    }

    /// Makes everything written so far visible to new readers (HDFS `hflush`).
    public func hflush() async throws {
        try await flush(sync: false)
    }

    /// Makes everything written so far durable on every replica (HDFS `hsync`).
    public func hsync() async throws {
        try await flush(sync: true)
    }

    private func flush(sync: Bool) async throws {
        guard !closed, let pipeline else { return }
        if !pending.isEmpty || sync {
            try await sendFrames(count: pending.count, last: false, sync: sync)
        }
        _ = pipeline
        try await waitForAcknowledgements()
    }

    /// Finishes the last block and closes the file.
    public func close() async throws {
        guard !closed else { return }
        closed = true
        // An append that wrote nothing still reopens and finishes the last block: the name node
        // gave it a new generation stamp, and replicas left with the old one would be stale.
        if appendStage { try await startBlock() }
        if pipeline != nil { try await finishBlock() }
        var request = Strata_Wire_CompleteRequest()
        request.path = path
        request.fileID = fileId
        if let block {
            request.last = block.block
            request.last.numBytes = blockBytes
        }
        let deadline = client.clock.now + .seconds(client.configuration.retryWindowSeconds)
        while true {
            let response: Strata_Wire_BoolResponse = try await client.call(.complete, request)
            if response.result { return }
            if client.clock.now > deadline {
                throw RemoteException.io("Unable to close file \(path) because the last block does not have enough number of replicas.")
            }
            try await client.clock.sleep(milliseconds: 100)
        }
    }
}
