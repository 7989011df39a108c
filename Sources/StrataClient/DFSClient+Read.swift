import Foundation
import NIOCore
import StrataBlockFormat
import StrataCore
import StrataWire
import Synchronization

extension DFSClient {
    /// Reads `length` bytes (nil: to the end) of a file from `offset`, handing them to `sink` in
    /// order. Each block comes from its nearest replica; frames are verified and decoded here, and
    /// a replica that fails (unreachable, or damaged bytes, which are reported to the name node)
    /// is replaced by the next one without repeating bytes already delivered. Returns the bytes read.
    @discardableResult
    public func read(
        _ path: String, offset: UInt64 = 0, length: UInt64? = nil, into sink: ([UInt8]) async throws -> Void
    ) async throws -> UInt64 {
        try await withoutActuallyEscaping(sink) { sink in
            try await read(path, offset: offset, length: length, delivery: .inOrder(sink), progress: { _ in })
        }
    }

    /// Reads like `read(_:offset:length:into:)`, but has `sink` decode and place the bytes at
    /// their offsets in the file, several packets at once and in no particular order (for
    /// `pwrite` into a local file; see `PositionedSink`). `progress` is told, in order and from
    /// one task, how many more bytes are done. A piece may be written again after a replica
    /// fails (at the same offset, with the same bytes).
    @discardableResult
    public func readPositioned(
        _ path: String, offset: UInt64 = 0, length: UInt64? = nil, into sink: some PositionedSink,
        progress: (UInt64) -> Void = { _ in }
    ) async throws -> UInt64 {
        try await read(path, offset: offset, length: length, delivery: .positioned(sink), progress: progress)
    }

    /// Reads like `readPositioned(_:offset:length:into:progress:)`, handing each decoded piece to
    /// `write` with its offset in the file, from the client's codec threads.
    @discardableResult
    public func readPositioned(
        _ path: String, offset: UInt64 = 0, length: UInt64? = nil,
        write: @escaping @Sendable (_ offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws -> Void,
        progress: (UInt64) -> Void = { _ in }
    ) async throws -> UInt64 {
        try await readPositioned(path, offset: offset, length: length, into: ClosureSink(write: write, codecs: codecs), progress: progress)
    }

    /// Reads like `read(_:offset:length:into:)`, handing the bytes over in order as buffers of
    /// about a megabyte: each packet's frames are decoded, in parallel, straight into one buffer,
    /// which goes to `sink` without being copied again (WebHDFS OPEN writes them to the HTTP
    /// response as they are).
    @discardableResult
    public func readBuffers(
        _ path: String, offset: UInt64 = 0, length: UInt64? = nil, into sink: (ByteBuffer) async throws -> Void
    ) async throws -> UInt64 {
        try await withoutActuallyEscaping(sink) { sink in
            try await read(path, offset: offset, length: length, delivery: .buffers(sink), progress: { _ in })
        }
    }

    /// How `fetch` hands over decoded bytes.
    enum Delivery {
        /// In order, as arrays, from the reading task.
        case inOrder(([UInt8]) async throws -> Void)
        /// In order, a packet's bytes in one buffer, from the reading task.
        case buffers((ByteBuffer) async throws -> Void)
        /// Decoded and written at their offsets by a sink's jobs.
        case positioned(any PositionedSink)
    }

    func read(
        _ path: String, offset: UInt64, length: UInt64?, delivery: Delivery, progress: (UInt64) -> Void
    ) async throws -> UInt64 {
        var located = try await blockLocations(path, offset: offset, length: length ?? 0)
        var fileLength = located.fileLength
        if located.hasLastBlock, let visible = try? await visibleLength(of: located.lastBlock) {
            // A file being written: its last block is as long as its replicas have it.
            fileLength = located.lastBlock.offset + visible
            located.lastBlock.block.numBytes = visible
            located.blocks.append(located.lastBlock)
        }
        guard offset <= fileLength else {
            throw RemoteException(.eof, "Cannot seek after EOF: offset \(offset) is past the end of \(path) (\(fileLength) bytes)")
        }
        let end = length.map { min(fileLength, offset + $0) } ?? fileLength
        var position = offset
        for (blockIndex, var block) in located.blocks.enumerated() where block.offset + block.block.numBytes > position && block.offset < end {
            let blockEnd = min(end, block.offset + block.block.numBytes)
            // The retry window runs from the last progress: a long read that loses its replica
            // late (a slow reader, a busy node) still gets the whole window to resume.
            var deadline = clock.now + .seconds(configuration.retryWindowSeconds)
            var failures: [String] = []
            // Replicas that sent damaged bytes are not asked again; ones that failed otherwise
            // (a dropped connection) may be, once the name node lists them again.
            var corruptNodes: Set<String> = []
            // Try each replica; with none, ask the name node again (its data nodes may still be
            // reporting after a restart).
            while position < blockEnd {
                if block.locations.isEmpty {
                    // Every replica damaged: no wait brings a good one back.
                    guard clock.now < deadline, !block.corrupt else {
                        let reason = block.corrupt ? "all replicas are corrupt" : failures.isEmpty ? "no live replica" : failures.suffix(6).joined(separator: "; ")
                        throw RemoteException(
                            .blockMissing, "Could not obtain block: \(block.block.blockID) file=\(path) (\(reason))")
                    }
                    try await clock.sleep(milliseconds: 500)
                    let refreshed = try await blockLocations(path, offset: position, length: 1)
                    // The block may be the open last one, which the name node lists apart.
                    let candidates = refreshed.blocks + (refreshed.hasLastBlock ? [refreshed.lastBlock] : [])
                    if let match = candidates.first(where: { $0.block.blockID == block.block.blockID }) {
                        block.locations = match.locations.filter { !corruptNodes.contains($0.nodeID) }
                        block.corrupt = match.corrupt
                    }
                    continue
                }
                let node = block.locations.removeFirst()
                let startPosition = position
                defer { if position > startPosition { deadline = clock.now + .seconds(configuration.retryWindowSeconds) } }
                do {
                    if case .positioned(let sink) = delivery, configuration.shortCircuitReads, Self.isThisHost(node.ipAddress) {
                        // This block and the next ones with a replica on this host, read in one go.
                        var reads = [LocalRead(block: block, node: node, from: position - block.offset, to: blockEnd - block.offset)]
                        for next in located.blocks[(blockIndex + 1)...] {
                            guard next.offset < end, !next.corrupt, let local = next.locations.first(where: { Self.isThisHost($0.ipAddress) }) else { break }
                            reads.append(LocalRead(block: next, node: local, from: 0, to: min(end, next.offset + next.block.numBytes) - next.offset))
                        }
                        do {
                            try await fetchLocal(reads, sink: sink) { count in
                                position += count
                                progress(count)
                            }
                        } catch let error as SinkError {
                            throw error
                        } catch {
                            // The data node reads it instead (and reports a replica that is really damaged).
                            logger.debug("short-circuit read failed; reading through the data node", metadata: [
                                "block": "\(block.block.blockID)", "node": "\(node.ipAddress):\(node.transferPort)", "error": "\(error)"])
                        }
                    }
                    if position < blockEnd {
                        try await fetch(block, node: node, from: position - block.offset, to: blockEnd - block.offset, delivery: delivery) { count in
                            position += count
                            progress(count)
                        }
                    }
                } catch let error as BlockFormatError where error.isCorruption {
                    failures.append("\(node.nodeID): \(error)")
                    corruptNodes.insert(node.nodeID)
                    await reportBadReplica(block.block, node: node, reason: error.description)
                } catch let error as SinkError {
                    throw error.underlying
                } catch {
                    failures.append("\(node.nodeID): \(error)")
                }
            }
        }
        return position - offset
    }

    /// Reads a whole file (or a range) into memory.
    public func readAll(_ path: String, offset: UInt64 = 0, length: UInt64? = nil) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        try await read(path, offset: offset, length: length) { bytes += $0 }
        return bytes
    }

    /// Raw bytes [from, to) of one block, from its replicas in order.
    func readBlockRange(_ block: Strata_Wire_LocatedBlock, from: UInt64, to: UInt64) async throws -> [UInt8] {
        var lastError: (any Error)?
        for node in block.locations {
            var bytes: [UInt8] = []
            do {
                try await withoutActuallyEscaping({ (piece: [UInt8]) in bytes += piece }) { sink in
                    try await fetch(block, node: node, from: from, to: to, delivery: .inOrder(sink)) { _ in }
                }
                return bytes
            } catch {
                lastError = error
            }
        }
        throw lastError ?? RemoteException.io("block \(block.block.blockID) has no replica to read")
    }

    /// How many bytes the replicas of a block being written hold.
    func visibleLength(of block: Strata_Wire_LocatedBlock) async throws -> UInt64 {
        var header = Strata_Wire_TransferHeader()
        header.op = .blockInfo
        header.blockInfo.block = block.block
        for node in block.locations {
            if let response = try? await TransferRequest.exchange(header, with: node, group: group), response.status == .success {
                return response.rawLength
            }
        }
        return 0
    }

    struct SinkError: Error {
        var underlying: any Error
    }

    /// Streams the frames covering raw bytes [from, to) of a block from one data node, verifies
    /// and decodes them (in parallel), and hands the requested bytes to `deliver` in order.
    func fetch(
        _ block: Strata_Wire_LocatedBlock, node: Strata_Wire_DatanodeInfo, from: UInt64, to: UInt64, delivery: Delivery,
        delivered: (UInt64) -> Void
    ) async throws {
        let channel = try await Transfer.connect(host: node.ipAddress, port: Int(node.transferPort), group: group)
        try await channel.executeThenClose { inbound, outbound in
            var header = Strata_Wire_TransferHeader()
            header.op = .readBlock
            header.read.block = block.block
            header.read.offset = from
            header.read.length = to - from
            try await outbound.write(try Transfer.frame(header))
            var frames = inbound.makeAsyncIterator()
            guard let first = try await frames.next() else {
                throw RemoteException.io("data node \(node.ipAddress):\(node.transferPort) closed the connection")
            }
            let response = try Strata_Wire_TransferHeader(buffer: first.header).response
            switch response.status {
            case .success: break
            case .errorChecksum: throw BlockFormatError(.storedChecksumMismatch, response.message, blockId: block.block.blockID)
            default: throw RemoteException.io("data node \(node.ipAddress):\(node.transferPort): \(response.message)")
            }
            let frameSize = Int(response.rawFrameSize)
            guard frameSize >= Limits.minimumRawFrameSizeBytes && frameSize <= Limits.maximumRawFrameSizeBytes else {
                throw RemoteException.io("data node sent frame size \(frameSize)")
            }
            // Packets are decoded ahead of delivery (one for an in-order sink, a few for buffers,
            // more when the sink's jobs also write them), so decoding the next ones overlaps
            // handing this one to the sink (for `get`, writing it to a file).
            var rawPosition = response.firstFrameOffset
            var receivedPosition = response.firstFrameOffset
            let ahead: Int
            switch delivery {
            case .inOrder: ahead = 1
            case .buffers: ahead = Self.decodeAhead
            case .positioned: ahead = Self.positionedAhead
            }
            func deliverDecoded(_ packet: DecodedPacket, rawEnd: UInt64) async throws {
                let lower = max(from, rawPosition)
                let upper = min(to, rawEnd)
                let decoded: [[UInt8]]
                switch packet {
                case .written:
                    // Written by the decoding tasks already.
                    rawPosition = rawEnd
                    if upper > lower { delivered(upper - lower) }
                    return
                case .contiguous(let buffer):
                    guard case .buffers(let deliver) = delivery else { return }
                    let packetStart = rawPosition
                    rawPosition = rawEnd
                    guard upper > lower, let slice = buffer.getSlice(
                        at: buffer.readerIndex + Int(lower - packetStart), length: Int(upper - lower)) else { return }
                    do {
                        try await deliver(slice)
                    } catch {
                        throw SinkError(underlying: error)
                    }
                    delivered(upper - lower)
                    return
                case .frames(let frames):
                    decoded = frames
                }
                guard case .inOrder(let deliver) = delivery else { return }
                for raw in decoded {
                    let frameStart = rawPosition
                    rawPosition += UInt64(raw.count)
                    let sliceStart = Int(max(from, frameStart) - frameStart)
                    let sliceEnd = Int(min(to, rawPosition) - frameStart)
                    guard sliceStart < sliceEnd else { continue }
                    do {
                        try await deliver(sliceStart == 0 && sliceEnd == raw.count ? raw : Array(raw[sliceStart..<sliceEnd]))
                    } catch {
                        throw SinkError(underlying: error)
                    }
                    delivered(UInt64(sliceEnd - sliceStart))
                }
            }
            try await Self.decoding(ahead: ahead, deliver: deliverDecoded) { enqueue in
                while receivedPosition < to {
                    guard let frame = try await frames.next() else {
                        throw RemoteException.io("data node \(node.ipAddress):\(node.transferPort) ended the block early")
                    }
                    let reply = try Strata_Wire_TransferHeader(buffer: frame.header)
                    if reply.op == .response {
                        if reply.response.status == .errorChecksum {
                            throw BlockFormatError(.storedChecksumMismatch, reply.response.message, blockId: block.block.blockID)
                        }
                        throw RemoteException.io(reply.response.message)
                    }
                    guard reply.op == .packet, let parts = PacketBody.frames(frame.body, count: Int(reply.packet.frameCount)) else {
                        throw RemoteException.io("malformed packet from \(node.ipAddress):\(node.transferPort)")
                    }
                    // Each frame header states its raw length (checked again when it is decoded).
                    let packetStart = receivedPosition
                    for part in parts {
                        receivedPosition += UInt64(part.getInteger(at: part.readerIndex, endianness: .little, as: UInt32.self) ?? 0)
                    }
                    let blockId = block.block.blockID
                    let next: Task<DecodedPacket, any Error>
                    switch delivery {
                    case .inOrder:
                        next = Task { .frames(try await self.decodeFrames(parts, frameSize: frameSize, blockId: blockId)) }
                    case .buffers:
                        let rawLength = Int(receivedPosition - packetStart)
                        next = Task { .contiguous(try await self.decodePacket(parts, rawLength: rawLength, frameSize: frameSize, blockId: blockId)) }
                    case .positioned(let sink):
                        let window = DecodeWindow(from: from, to: to, blockOffset: block.offset, frameSize: frameSize, blockId: blockId)
                        let codecs = self.codecs
                        next = Task {
                            try await sink.perform(bufferSize: parts.count * frameSize) { buffer, write in
                                var decoded = 0
                                for part in parts {
                                    decoded += try part.withUnsafeReadableBytes { try window.decode($0, codecs: codecs, into: buffer, at: decoded) }
                                }
                                try window.write(buffer, count: decoded, rawOffset: packetStart, to: write)
                            }
                            return .written
                        }
                    }
                    try await enqueue(next, receivedPosition)
                    if reply.packet.last { break }
                }
            }
            if rawPosition < to {
                throw RemoteException.io("data node \(node.ipAddress):\(node.transferPort) sent \(rawPosition) of \(to) bytes")
            }
        }
    }

    /// A block to read straight from its replica file on this host: the data node holding the
    /// replica here, and the raw bytes [from, to) of the block wanted.
    struct LocalRead: Sendable {
        var block: Strata_Wire_LocatedBlock
        var node: Strata_Wire_DatanodeInfo
        var from: UInt64
        var to: UInt64
    }

    /// Reads raw ranges of consecutive blocks straight from their replica files on this host
    /// (HDFS short-circuit local read): each block's data node names the file of its finished
    /// replica, the frames are read here and decoded, verified and written at their offsets like
    /// frames that came over the network. The blocks share one window of packets in the sink's
    /// hands, and the next block's replica is opened while this one's packets are handed out, so
    /// the window does not drain at each block boundary (eight times per GiB of 128 MiB blocks).
    /// `delivered` counts the bytes in file order. Throws when a replica cannot be read this way
    /// (the caller then asks its data node), having delivered a prefix of the ranges at most.
    func fetchLocal(_ reads: [LocalRead], sink: any PositionedSink, delivered: (UInt64) -> Void) async throws {
        let codecs = self.codecs
        var opening: Task<LocalReplica, any Error>? = reads.first.map { read in Task { try await self.openLocal(read) } }
        defer { opening?.cancel() }
        var fromFiles: UInt64 = 0
        // Each job is queued with the count of wanted bytes it covers, handed back in order.
        try await Self.decoding(ahead: Self.positionedAhead, deliver: { _, count in
            if count > 0 { delivered(count) }
        }) { enqueue in
            for (position, read) in reads.enumerated() {
                guard let pending = opening else { break }
                let reader: LocalReplica
                do {
                    reader = try await pending.value
                } catch {
                    // A later block that cannot be read this way (the open last block of a file
                    // being written, say) ends the run there: the caller reads it otherwise.
                    if position == 0 { throw error }
                    break
                }
                opening = position + 1 < reads.count ? Task { [reads] in try await self.openLocal(reads[position + 1]) } : nil
                guard read.to > read.from else { continue }
                let frameSize = reader.value.rawFrameSize
                let firstFrame = Int(read.from / UInt64(frameSize))
                let endFrame = Int((read.to - 1) / UInt64(frameSize)) + 1
                let perPacket = max(1, 1024 * 1024 / frameSize)
                let window = DecodeWindow(from: read.from, to: read.to, blockOffset: read.block.offset, frameSize: frameSize, blockId: read.block.block.blockID)
                var index = firstFrame
                while index < endFrame {
                    let (start, end) = (index, min(endFrame, index + perPacket))
                    let rawStart = UInt64(start) * UInt64(frameSize)
                    let rawEnd = min(reader.value.rawLength, UInt64(end) * UInt64(frameSize))
                    let wanted = min(read.to, rawEnd) - max(read.from, rawStart)
                    // The job reads the packet's frames with one read, on the sink's thread that
                    // decodes and writes them.
                    try await enqueue(Task {
                        try await sink.perform(bufferSize: (end - start) * frameSize) { buffer, write in
                            let stored = try reader.value.storedFrames(start..<end)
                            let base = reader.value.frameOffsets[start]
                            var decoded = 0
                            try stored.withUnsafeBytes { bytes in
                                for frame in start..<end {
                                    let lower = Int(reader.value.frameOffsets[frame] - base)
                                    let upper = lower + reader.value.frameLength(ofFrame: frame)
                                    decoded += try window.decode(UnsafeRawBufferPointer(rebasing: bytes[lower..<upper]), codecs: codecs, into: buffer, at: decoded)
                                }
                            }
                            try window.write(buffer, count: decoded, rawOffset: rawStart, to: write)
                        }
                        return .written
                    }, wanted)
                    index = end
                }
                fromFiles += read.to - read.from
            }
        }
        shortCircuitCount.add(fromFiles, ordering: .relaxed)
    }

    /// Asks a block's data node on this host for its finished replica's file and opens it.
    func openLocal(_ read: LocalRead) async throws -> LocalReplica {
        var header = Strata_Wire_TransferHeader()
        header.op = .blockLocalPath
        header.blockLocalPath.block = read.block.block
        let response = try await TransferRequest.exchange(header, with: read.node, group: group)
        guard response.status == .success, !response.localPath.isEmpty else {
            throw RemoteException.io("no local path for block \(read.block.block.blockID): \(response.message)")
        }
        let blockId = read.block.block.blockID
        let path = response.localPath
        let reader = try await CodecPool.onCodecThread { () throws -> LocalReplica in
            LocalReplica(try BlockReader(path: path, expectedBlockId: blockId))
        }
        guard reader.value.header.generationStamp >= read.block.block.generationStamp, reader.value.rawLength >= read.to else {
            throw RemoteException.io("replica file \(path) is not the block's (stamp \(reader.value.header.generationStamp), \(reader.value.rawLength) bytes)")
        }
        return reader
    }

    /// A replica file open for a short-circuit read; its jobs call only `storedFrames` (a
    /// positioned read) and its constant layout from several threads.
    final class LocalReplica: @unchecked Sendable {
        let value: BlockReader
        init(_ value: BlockReader) { self.value = value }
    }

    /// Whether an address is one of this host's (loopback or any interface's).
    static func isThisHost(_ address: String) -> Bool {
        address.hasPrefix("127.") || address == "::1" || address == "localhost" || hostAddresses.contains(address)
    }

    static let hostAddresses: Set<String> = {
        var addresses: Set<String> = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return addresses }
        defer { freeifaddrs(list) }
        var entry: UnsafeMutablePointer<ifaddrs>? = first
        while let current = entry {
            if let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) || address.pointee.sa_family == sa_family_t(AF_INET6) {
                var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                let length = address.pointee.sa_family == sa_family_t(AF_INET) ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size
                if getnameinfo(address, socklen_t(length), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                    addresses.insert(String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                }
            }
            entry = current.pointee.ifa_next
        }
        return addresses
    }()

    /// Packets a buffer read decodes ahead of the one it delivers.
    static let decodeAhead = 3

    /// Packets of a positioned read in the sink's hands at once beyond the oldest: its jobs wait
    /// on the disk as well as decode, and finish out of order, so enough of them keep both the
    /// cores and the disk busy while the oldest waits (a `get` of 1 GiB on two cores with six
    /// I/O threads: 0.80 s with 3, 0.76-0.79 s with 6, 0.69-0.73 s with 12).
    static let positionedAhead = 12

    /// Runs `produce`, which starts a task decoding each packet and hands it to `enqueue` with a
    /// mark that `deliver` gets back with it (the network read: the raw offset where the packet
    /// ends; the short-circuit read: how many wanted bytes it holds); packets go to `deliver` in
    /// order, at most `ahead` of them decoding meanwhile, and the rest once `produce` returns. On
    /// failure every packet still decoding is cancelled and waited for: a positioned read's writes
    /// must not land after the read has returned (the caller may have closed its file).
    static func decoding(
        ahead: Int, deliver: (DecodedPacket, _ mark: UInt64) async throws -> Void,
        produce: (_ enqueue: (Task<DecodedPacket, any Error>, _ mark: UInt64) async throws -> Void) async throws -> Void
    ) async throws {
        var queue: [(task: Task<DecodedPacket, any Error>, mark: UInt64)] = []
        do {
            try await withoutActuallyEscaping(deliver) { deliver in
                try await produce { task, mark in
                    queue.append((task, mark))
                    while queue.count > ahead {
                        let oldest = queue.removeFirst()
                        try await deliver(try await oldest.task.value, oldest.mark)
                    }
                }
                while !queue.isEmpty {
                    let oldest = queue.removeFirst()
                    try await deliver(try await oldest.task.value, oldest.mark)
                }
            }
        } catch {
            for unfinished in queue {
                unfinished.task.cancel()
                _ = try? await unfinished.task.value
            }
            throw error
        }
    }

    /// Memory that concurrent decodes write disjoint parts of.
    struct DecodeTarget: @unchecked Sendable {
        var bytes: UnsafeMutableRawBufferPointer
    }

    /// A packet's frames, decoded.
    enum DecodedPacket: Sendable {
        /// One array per frame.
        case frames([[UInt8]])
        /// The packet's raw bytes in one buffer.
        case contiguous(ByteBuffer)
        /// Already handed to a positioned sink.
        case written
    }

    /// Verifies and decodes a packet's frames in parallel into one buffer of `rawLength` bytes
    /// (the sum of the lengths their headers state). Runs on the codec threads.
    func decodePacket(_ frames: [ByteBuffer], rawLength: Int, frameSize: Int, blockId: UInt64) async throws -> ByteBuffer {
        let codecs = self.codecs
        return try await CodecPool.onCodecThread { () throws -> ByteBuffer in
            var offsets: [Int] = []
            var position = 0
            for frame in frames {
                offsets.append(position)
                position += Int(frame.getInteger(at: frame.readerIndex, endianness: .little, as: UInt32.self) ?? 0)
            }
            guard position == rawLength else {
                throw BlockFormatError(.invalidFrameHeader, "packet frames hold \(position) raw bytes, not \(rawLength)", blockId: blockId)
            }
            let starts = offsets
            var buffer = ByteBufferAllocator().buffer(capacity: rawLength)
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: rawLength) { writable in
                // Each frame decodes into its own part of the buffer.
                let output = DecodeTarget(bytes: writable)
                let failure = Mutex<(any Error)?>(nil)
                DispatchQueue.concurrentPerform(iterations: frames.count) { index in
                    let end = index + 1 < starts.count ? starts[index + 1] : rawLength
                    let target = UnsafeMutableRawBufferPointer(rebasing: output.bytes[starts[index]..<end])
                    do {
                        let raw = try Self.decode(frames[index], frameSize: frameSize, codecs: codecs, blockId: blockId, into: target)
                        if raw.count != target.count {
                            throw BlockFormatError(.invalidFrameHeader, "frame decoded to \(raw.count) bytes, not \(target.count)", blockId: blockId)
                        }
                    } catch {
                        failure.withLock { if $0 == nil { $0 = error } }
                    }
                }
                if let error = failure.withLock({ $0 }) { throw error }
                return rawLength
            }
            return buffer
        }
    }

    /// Verifies and decodes frames concurrently, keeping their order.
    /// Each frame decodes on a codec thread, not on the tasks' threads: in a process that also
    /// serves (a data node answering GETFILECHECKSUM), a long read must not hold up its
    /// heartbeats and transfers.
    func decodeFrames(_ frames: [ByteBuffer], frameSize: Int, blockId: UInt64) async throws -> [[UInt8]] {
        let codecs = self.codecs
        if frames.count == 1 {
            let frame = frames[0]
            return [try await CodecPool.onCodecThread { try Self.decode(frame, frameSize: frameSize, codecs: codecs, blockId: blockId) }]
        }
        return try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (index, frame) in frames.enumerated() {
                group.addTask {
                    (index, try await CodecPool.onCodecThread { try Self.decode(frame, frameSize: frameSize, codecs: codecs, blockId: blockId) })
                }
            }
            var decoded = [[UInt8]](repeating: [], count: frames.count)
            for try await (index, raw) in group { decoded[index] = raw }
            return decoded
        }
    }

    /// The part of a block a positioned read wants, and where it goes in the file.
    struct DecodeWindow: Sendable {
        /// Raw offsets in the block.
        var from: UInt64
        var to: UInt64
        /// The block's offset in the file.
        var blockOffset: UInt64
        var frameSize: Int
        var blockId: UInt64

        /// Verifies and decodes a frame into `buffer` from `position` on; returns its raw length.
        /// Every frame but a block's last holds exactly `frameSize` raw bytes, so a packet's
        /// frames decoded one after another lie at their raw offsets.
        func decode(_ frame: UnsafeRawBufferPointer, codecs: CodecPool, into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws -> Int {
            guard position % frameSize == 0 else {
                throw BlockFormatError(.invalidFrameHeader, "a frame follows one of fewer than \(frameSize) raw bytes", blockId: blockId)
            }
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[position...])
            return try DFSClient.decode(frame, frameSize: frameSize, codecs: codecs, blockId: blockId, into: target).count
        }

        /// Writes the part of the first `count` bytes of `buffer` (raw bytes of the block from
        /// `rawOffset` on) within the window, with one call of `write`, at its offset in the
        /// file (failures of `write` come back as `SinkError`).
        func write(
            _ buffer: UnsafeMutableRawBufferPointer, count: Int, rawOffset: UInt64, to write: (UnsafeRawBufferPointer, UInt64) throws -> Void
        ) throws {
            let start = max(from, rawOffset)
            let end = min(to, rawOffset + UInt64(count))
            guard start < end else { return }
            do {
                try write(UnsafeRawBufferPointer(rebasing: buffer[Int(start - rawOffset)..<Int(end - rawOffset)]), blockOffset + start)
            } catch {
                throw SinkError(underlying: error)
            }
        }
    }

    /// Verifies and decodes one frame into `output`; returns the part of it holding the raw bytes.
    static func decode(
        _ frame: ByteBuffer, frameSize: Int, codecs: CodecPool, blockId: UInt64, into output: UnsafeMutableRawBufferPointer
    ) throws -> UnsafeRawBufferPointer {
        try frame.withUnsafeReadableBytes { try decode($0, frameSize: frameSize, codecs: codecs, blockId: blockId, into: output) }
    }

    static func decode(
        _ frame: UnsafeRawBufferPointer, frameSize: Int, codecs: CodecPool, blockId: UInt64, into output: UnsafeMutableRawBufferPointer
    ) throws -> UnsafeRawBufferPointer {
        let header = try FrameHeader.decode(frame)
        guard header.rawLength > 0, Int(header.rawLength) <= frameSize, Int(header.rawLength) <= output.count else {
            throw BlockFormatError(.invalidFrameHeader, "frame of \(header.rawLength) raw bytes in a block of \(frameSize)-byte frames", blockId: blockId)
        }
        let target = UnsafeMutableRawBufferPointer(rebasing: output[0..<Int(header.rawLength)])
        _ = try codecs.withDecoder { try $0.decode(frame: frame, maximumRawLength: frameSize, into: target) }
        return UnsafeRawBufferPointer(target)
    }

    static func decode(_ frame: ByteBuffer, frameSize: Int, codecs: CodecPool, blockId: UInt64) throws -> [UInt8] {
        try frame.withUnsafeReadableBytes { bytes in
            let header = try FrameHeader.decode(bytes)
            guard header.rawLength > 0, Int(header.rawLength) <= frameSize else {
                throw BlockFormatError(.invalidFrameHeader, "frame of \(header.rawLength) raw bytes in a block of \(frameSize)-byte frames", blockId: blockId)
            }
            var raw = [UInt8](repeating: 0, count: Int(header.rawLength))
            try raw.withUnsafeMutableBytes { output in
                _ = try codecs.withDecoder { try $0.decode(frame: bytes, maximumRawLength: frameSize, into: output) }
            }
            return raw
        }
    }

    func reportBadReplica(_ block: Strata_Wire_ExtendedBlock, node: Strata_Wire_DatanodeInfo, reason: String) async {
        var request = Strata_Wire_ReportBadBlocksRequest()
        var bad = Strata_Wire_ReportBadBlocksRequest.BadReplica()
        bad.block = block
        bad.nodeID = node.nodeID
        bad.reason = reason
        request.replicas = [bad]
        let _: Strata_Wire_Empty? = try? await call(.reportBadBlocks, request, retrying: false)
    }
}
