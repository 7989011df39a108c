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
    public let path: String
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
    private var closed = false
    public private(set) var bytesWritten: UInt64 = 0

    init(
        client: DFSClient, path: String, blockSize: UInt64, rawFrameSize: Int, initialLength: UInt64,
        lastBlock: Strata_Wire_LocatedBlock?, continuesLastBlock: Bool, pendingTail: [UInt8], previousGenerationStamp: UInt64 = 0
    ) {
        self.client = client
        self.path = path
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

    public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try await write(Array(bytes))
    }

    public func write(_ bytes: [UInt8]) async throws {
        guard !closed else { throw RemoteException.io("stream for \(path) is closed") }
        var start = 0
        while start < bytes.count {
            // No pipeline yet: the first block, the next one, or (after `append`) the reopened last one.
            if pipeline == nil || blockBytes >= blockSize { try await startBlock() }
            // Fill up to the block's end, then send whole packets.
            let room = Int(min(UInt64(bytes.count - start), blockSize - blockBytes))
            pending.append(contentsOf: bytes[start..<(start + room)])
            start += room
            let packetBytes = max(rawFrameSize, Limits.packetRawBytes / rawFrameSize * rawFrameSize)
            // The packet that ends a block is left for `finishBlock`, which flags it last.
            while pending.count > packetBytes || (pending.count == packetBytes && blockBytes < blockSize) {
                try await sendFrames(count: packetBytes, last: false, sync: false)
            }
            if blockBytes == blockSize {
                try await finishBlock()
            }
        }
        bytesWritten += UInt64(bytes.count)
    }

    /// Sends `count` bytes from the front of `pending` as frames; full frames leave `pending`.
    private func sendFrames(count: Int, last: Bool, sync: Bool) async throws {
        let raw = Array(pending[0..<count])
        let frames = await client.codecs.encodeFrames(raw, frameSize: rawFrameSize)
        var packet = Strata_Wire_Packet()
        packet.sequenceNumber = sequence
        packet.offsetInBlock = blockBytesInFullFrames
        packet.frameCount = UInt32(frames.count)
        packet.rawLength = UInt64(count)
        packet.last = last
        packet.sync = sync
        sequence += 1
        _ = try await pipeline!.send(packet, body: PacketBody.make(frames))
        // Only whole frames are done with; a short last frame is re-sent whole later.
        let whole = last ? count : count / rawFrameSize * rawFrameSize
        pending.removeFirst(whole)
        blockBytesInFullFrames += UInt64(whole)
    }

    /// Sends what is left of the current block with the last-packet flag and waits for every
    /// replica to finish it.
    private func finishBlock() async throws {
        guard let pipeline else { return }
        try await sendFrames(count: pending.count, last: true, sync: false)
        try await pipeline.waitForAcknowledgements()
        pipeline.close()
        self.pipeline = nil
    }

    /// Asks the name node for the next block (or reopens the appended one) and sets up its pipeline.
    private func startBlock() async throws {
        if appendStage, let block, pipeline == nil, blockBytes < blockSize {
            pipeline = try await PipelineConnection.open(
                block: block.block, stage: .append, targets: block.locations, rawFrameSize: Int(block.rawFrameSize),
                clientName: client.clientName, previousGenerationStamp: previousGenerationStamp, group: client.group)
            appendStage = false
            return
        }
        var excluded: [String] = []
        var delay = 0.005
        let deadline = Date().addingTimeInterval(client.configuration.retryWindowSeconds)
        while true {
            var request = Strata_Wire_AddBlockRequest()
            request.path = path
            if let block {
                request.previous = block.block
                request.previous.numBytes = blockBytes
            }
            request.excludeNodeIds = excluded
            request.writerNodeID = client.configuration.localNodeId
            let located: Strata_Wire_LocatedBlock
            do {
                let response: Strata_Wire_AddBlockResponse = try await client.call("addBlock", request)
                located = response.block
            } catch let error as RemoteException where error.exceptionClass == "NotReplicatedYetException" {
                if Date() > deadline { throw error }
                try await Task.sleep(for: .seconds(delay))
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
                abandon.block = located.block
                let _: Strata_Wire_Empty = try await client.call("abandonBlock", abandon)
                let bad = located.locations[min(error.failedNodeIndex, located.locations.count - 1)]
                excluded.append(bad.nodeID)
                if excluded.count >= 3 { throw RemoteException.io("could not set up a pipeline for \(path): \(error)") }
                continue
            }
            block = located
            blockBytesInFullFrames = 0
            sequence = 0
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
        try await pipeline.waitForAcknowledgements()
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
        if let block {
            request.last = block.block
            request.last.numBytes = blockBytes
        }
        let deadline = Date().addingTimeInterval(client.configuration.retryWindowSeconds)
        while true {
            let response: Strata_Wire_BoolResponse = try await client.call("complete", request)
            if response.result { return }
            if Date() > deadline {
                throw RemoteException.io("Unable to close file \(path) because the last block does not have enough number of replicas.")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
