import Foundation
import Glibc
import StrataBlockFormat
import StrataCore
import StrataWire
import Synchronization

/// A data node's replicas on its local disk:
///
///     <directory>/current/finalized/<subdir>/blk_<id>_<generation stamp>   finished replicas
///     <directory>/current/rbw/blk_<id>_<generation stamp>                  replicas being written
///
/// (HDFS's layout, with the generation stamp in the name so a stale replica is known without
/// opening it.) Each file is a block file in Strata's block format. The store keeps an index of
/// its replicas in memory; files are opened per read or write.
public final class BlockStore: Sendable {
    public struct Replica: Sendable, Equatable {
        public var generationStamp: UInt64
        public var isFinalized: Bool
        public var rawLength: UInt64
        public var storedBytes: UInt64
    }

    public let directory: String
    let finalizedDirectory: String
    let beingWrittenDirectory: String
    private let replicas: Mutex<[UInt64: Replica]>
    /// Striped locks that keep readers from seeing a replica file half rewritten: a writer
    /// rewrites the partial last frame in place (and truncates after it), so its changes to a
    /// file and a reader's opening of it must not interleave (`withFileLock`).
    private let fileLocks: [NSLock] = (0..<64).map { _ in NSLock() }
    /// The writer allowed to change each replica being written (see `WriteGrant`).
    private let grants = Mutex<[UInt64: WriteGrant]>([:])

    public init(directory: String) throws {
        self.directory = directory
        finalizedDirectory = directory + "/current/finalized"
        beingWrittenDirectory = directory + "/current/rbw"
        let manager = FileManager.default
        try manager.createDirectory(atPath: finalizedDirectory, withIntermediateDirectories: true)
        try manager.createDirectory(atPath: beingWrittenDirectory, withIntermediateDirectories: true)
        var found: [UInt64: Replica] = [:]
        // Finished replicas: the trailer gives the raw length; an unreadable one is left out, so
        // the name node sees it missing and copies the block from elsewhere.
        for subdirectory in (try? manager.contentsOfDirectory(atPath: finalizedDirectory)) ?? [] {
            let path = finalizedDirectory + "/" + subdirectory
            for name in (try? manager.contentsOfDirectory(atPath: path)) ?? [] {
                guard let (id, stamp) = Self.parse(name) else { continue }
                let file = path + "/" + name
                guard let reader = try? BlockReader(path: file, expectedBlockId: id) else { continue }
                let size = (try? manager.attributesOfItem(atPath: file)[.size] as? UInt64) ?? 0
                Self.keepNewest(&found, id, Replica(generationStamp: stamp, isFinalized: true, rawLength: reader.rawLength, storedBytes: size))
            }
        }
        for name in (try? manager.contentsOfDirectory(atPath: beingWrittenDirectory)) ?? [] {
            guard let (id, stamp) = Self.parse(name) else { continue }
            let file = beingWrittenDirectory + "/" + name
            guard let reader = try? BlockReader(unfinishedPath: file, expectedBlockId: id) else { continue }
            let size = (try? manager.attributesOfItem(atPath: file)[.size] as? UInt64) ?? 0
            Self.keepNewest(&found, id, Replica(generationStamp: stamp, isFinalized: false, rawLength: reader.rawLength, storedBytes: size))
        }
        replicas = Mutex(found)
    }

    private static func keepNewest(_ found: inout [UInt64: Replica], _ id: UInt64, _ replica: Replica) {
        if let existing = found[id], existing.generationStamp >= replica.generationStamp { return }
        found[id] = replica
    }

    static func parse(_ name: String) -> (UInt64, UInt64)? {
        let parts = name.split(separator: "_")
        guard parts.count == 3, parts[0] == "blk", let id = UInt64(parts[1]), let stamp = UInt64(parts[2]) else { return nil }
        return (id, stamp)
    }

    static func fileName(_ id: UInt64, _ stamp: UInt64) -> String { "blk_\(id)_\(stamp)" }

    func finalizedPath(_ id: UInt64, _ stamp: UInt64) -> String {
        // Spread finished replicas over 256 directories so none grows huge.
        finalizedDirectory + "/subdir" + String(id % 256, radix: 16) + "/" + Self.fileName(id, stamp)
    }

    func beingWrittenPath(_ id: UInt64, _ stamp: UInt64) -> String {
        beingWrittenDirectory + "/" + Self.fileName(id, stamp)
    }

    public func replica(_ id: UInt64) -> Replica? {
        replicas.withLock { $0[id] }
    }

    public var count: Int { replicas.withLock { $0.count } }

    /// The path of a replica's file.
    public func path(of id: UInt64) -> String? {
        guard let replica = replica(id) else { return nil }
        return replica.isFinalized ? finalizedPath(id, replica.generationStamp) : beingWrittenPath(id, replica.generationStamp)
    }

    /// A new replica file to write, in the being-written directory. An older replica of the
    /// same block (a lower generation stamp) is removed; an equal or newer one is an error.
    public func createReplica(
        _ block: Strata_Wire_ExtendedBlock, rawFrameSize: Int, options: FrameEncoderOptions
    ) throws -> ReplicaWriter {
        let id = block.blockID
        let stale: Replica? = try replicas.withLock { (replicas) throws(RemoteException) -> Replica? in
            if let existing = replicas[id] {
                if existing.generationStamp >= block.generationStamp {
                    throw RemoteException(
                        .replicaAlreadyExists,
                        "Block \(id)_\(block.generationStamp) already exists in state \(existing.isFinalized ? "FINALIZED" : "RBW")")
                }
                replicas[id] = nil
                return existing
            }
            return nil
        }
        if let stale { removeFile(id, stale) }
        let path = beingWrittenPath(id, block.generationStamp)
        unlink(path)
        let writer = try BlockWriter(
            creating: path, blockId: id, generationStamp: block.generationStamp, rawFrameSizeBytes: rawFrameSize, options: options)
        replicas.withLock { $0[id] = Replica(generationStamp: block.generationStamp, isFinalized: false, rawLength: 0, storedBytes: 0) }
        return ReplicaWriter(writer, grant: grantWrite(id))
    }

    /// Runs `body` holding the lock for a replica's file. Writers hold it while they change the
    /// file (a packet's frames, finishing, moving it); `openForReading` holds it while it takes
    /// a consistent view. Held for one packet at most, so a reader never waits long.
    public func withFileLock<Result>(_ id: UInt64, _ body: () throws -> Result) rethrows -> Result {
        let lock = fileLocks[Int(id % UInt64(fileLocks.count))]
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Opens a replica for reading, consistently even while it is written or appended to: the
    /// file is opened and its last frame copied under the file lock. Frames before the last never
    /// change again (a writer only rewrites the partial last frame), so they are read from the
    /// file later; the last is served from the copy. Without this a reader could see a frame half
    /// rewritten, and report a good replica as corrupt.
    public func openForReading(_ id: UInt64) throws -> ReplicaSnapshot {
        try withFileLock(id) {
            let reader = try self.reader(id)
            let last = reader.frameCount > 0 ? try reader.storedFrame(reader.frameCount - 1) : nil
            return ReplicaSnapshot(reader: reader, lastFrame: last)
        }
    }

    /// Reopens a finished replica for append: it moves to the being-written directory under its
    /// new generation stamp.
    public func reopenReplica(
        _ block: Strata_Wire_ExtendedBlock, previousGenerationStamp: UInt64, options: FrameEncoderOptions
    ) throws -> ReplicaWriter {
        try withFileLock(block.blockID) {
            try reopenReplicaLocked(block, previousGenerationStamp: previousGenerationStamp, options: options)
        }
    }

    private func reopenReplicaLocked(
        _ block: Strata_Wire_ExtendedBlock, previousGenerationStamp: UInt64, options: FrameEncoderOptions
    ) throws -> ReplicaWriter {
        let id = block.blockID
        guard let existing = replica(id), existing.isFinalized, existing.generationStamp < block.generationStamp,
            previousGenerationStamp == 0 || existing.generationStamp == previousGenerationStamp
        else {
            throw RemoteException(
                .replicaNotFound, "Cannot append to replica \(id)_\(previousGenerationStamp): no such finished replica")
        }
        let to = try moveToBeingWritten(id, existing, newGenerationStamp: block.generationStamp)
        replicas.withLock {
            $0[id] = Replica(generationStamp: block.generationStamp, isFinalized: false, rawLength: existing.rawLength, storedBytes: existing.storedBytes)
        }
        return ReplicaWriter(try BlockWriter(reopening: to, newGenerationStamp: block.generationStamp, options: options), grant: grantWrite(id))
    }

    // MARK: - Recovery

    /// Hands the right to write a replica to a new writer, revoking any earlier writer's.
    private func grantWrite(_ id: UInt64) -> WriteGrant {
        let grant = WriteGrant(blockId: id)
        grants.withLock { grants in
            grants[id]?.revoke()
            grants[id] = grant
        }
        return grant
    }

    /// Revokes the write right of whoever writes a replica now. Call under the file lock.
    private func revokeWriter(_ id: UInt64) {
        grants.withLock { $0.removeValue(forKey: id)?.revoke() }
    }

    /// A writer is done with a replica (finished or gone).
    public func release(_ grant: WriteGrant) {
        grants.withLock { grants in
            if grants[grant.blockId] === grant { grants[grant.blockId] = nil }
        }
    }

    /// Pipeline recovery: this node's replica of a block, finished or not and under an older
    /// generation stamp, is cut to `block.numBytes` (the bytes every node acknowledged, a frame
    /// boundary) and reopened under the block's new stamp; the writer resends what follows.
    /// Whoever was writing the replica loses the right to. A node with no replica joins with an
    /// empty one when nothing was acknowledged yet.
    public func recoverForWriting(_ block: Strata_Wire_ExtendedBlock, rawFrameSize: Int, options: FrameEncoderOptions) throws -> ReplicaWriter {
        let id = block.blockID
        guard block.numBytes % UInt64(rawFrameSize) == 0 else {
            throw RemoteException.illegalArgument("pipeline recovery of block \(id) must resume on a frame boundary, not at \(block.numBytes)")
        }
        return try withFileLock(id) {
            revokeWriter(id)
            guard let existing = replica(id) else {
                if block.numBytes == 0 { return try createReplica(block, rawFrameSize: rawFrameSize, options: options) }
                throw RemoteException(.replicaNotFound, "Cannot recover replica \(id): this node has none")
            }
            guard existing.generationStamp < block.generationStamp else {
                throw RemoteException(
                    .replicaAlreadyExists,
                    "Cannot recover replica \(id)_\(existing.generationStamp) to generation stamp \(block.generationStamp)")
            }
            guard existing.rawLength >= block.numBytes else {
                throw RemoteException.io(
                    "Cannot recover replica \(id): it holds \(existing.rawLength) bytes, fewer than the \(block.numBytes) acknowledged")
            }
            let to = try moveToBeingWritten(id, existing, newGenerationStamp: block.generationStamp)
            let writer = try BlockWriter(recovering: to, newGenerationStamp: block.generationStamp, rawLength: block.numBytes, options: options)
            replicas.withLock {
                $0[id] = Replica(generationStamp: block.generationStamp, isFinalized: false, rawLength: block.numBytes, storedBytes: existing.storedBytes)
            }
            return ReplicaWriter(writer, grant: grantWrite(id))
        }
    }

    /// What lease recovery learns of a replica (`beginRecovery`).
    public struct RecoveryState: Sendable {
        public var generationStamp: UInt64
        /// Raw bytes in whole frames whose checksums hold at the end.
        public var rawLength: UInt64
        public var isFinalized: Bool
    }

    /// Lease recovery, first step: stops whoever writes the replica and tells its stamp, state
    /// and length. An unfinished replica's last frame is verified: a torn one does not count.
    public func beginRecovery(_ id: UInt64, recoveryGenerationStamp: UInt64) throws -> RecoveryState {
        try withFileLock(id) {
            revokeWriter(id)
            guard let existing = replica(id) else {
                throw RemoteException(.replicaNotFound, "Replica not found for block \(id)")
            }
            guard existing.generationStamp <= recoveryGenerationStamp else {
                throw RemoteException.io(
                    "Replica \(id) has generation stamp \(existing.generationStamp), newer than recovery \(recoveryGenerationStamp)")
            }
            if existing.isFinalized {
                return RecoveryState(generationStamp: existing.generationStamp, rawLength: existing.rawLength, isFinalized: true)
            }
            let reader = try BlockReader(unfinishedPath: beingWrittenPath(id, existing.generationStamp), expectedBlockId: id)
            var length = reader.rawLength
            if reader.frameCount > 0 {
                do {
                    _ = try reader.storedFrame(reader.frameCount - 1)
                } catch {
                    length -= UInt64(reader.rawLength(ofFrame: reader.frameCount - 1))
                }
            }
            return RecoveryState(generationStamp: existing.generationStamp, rawLength: length, isFinalized: false)
        }
    }

    /// Lease recovery, last step: the replica is cut to the length every replica agreed on,
    /// takes the recovery's generation stamp and is finished. Done already: nothing to do.
    @discardableResult
    public func finishRecovery(_ id: UInt64, recoveryGenerationStamp: UInt64, rawLength: UInt64) throws -> Replica {
        try withFileLock(id) {
            revokeWriter(id)
            guard let existing = replica(id) else {
                throw RemoteException(.replicaNotFound, "Replica not found for block \(id)")
            }
            if existing.generationStamp == recoveryGenerationStamp && existing.isFinalized && existing.rawLength == rawLength {
                return existing
            }
            guard existing.generationStamp < recoveryGenerationStamp, existing.rawLength >= rawLength else {
                throw RemoteException.io(
                    "Cannot recover replica \(id)_\(existing.generationStamp) (\(existing.rawLength) bytes) to "
                        + "\(rawLength) bytes at generation stamp \(recoveryGenerationStamp)")
            }
            let to = try moveToBeingWritten(id, existing, newGenerationStamp: recoveryGenerationStamp)
            let writer = try BlockWriter(recovering: to, newGenerationStamp: recoveryGenerationStamp, rawLength: rawLength)
            let summary = try writer.finish()
            try finalize(id, summary: summary)
            return replica(id)!
        }
    }

    /// Renames a replica's file into the being-written directory under a new generation stamp.
    private func moveToBeingWritten(_ id: UInt64, _ existing: Replica, newGenerationStamp: UInt64) throws -> String {
        let from = existing.isFinalized ? finalizedPath(id, existing.generationStamp) : beingWrittenPath(id, existing.generationStamp)
        let to = beingWrittenPath(id, newGenerationStamp)
        guard rename(from, to) == 0 else {
            throw RemoteException.io("cannot move \(from) to \(to): \(String(cString: strerror(errno)))")
        }
        try LocalFile.synchronizeDirectory(beingWrittenDirectory)
        return to
    }

    /// Records the progress of a replica being written (for readers of an open file).
    public func updateBeingWritten(_ id: UInt64, rawLength: UInt64) {
        replicas.withLock { replicas in
            if var replica = replicas[id], !replica.isFinalized {
                replica.rawLength = rawLength
                replicas[id] = replica
            }
        }
    }

    /// Moves a written replica to the finished directory, durably.
    public func finalize(_ id: UInt64, summary: BlockSummary) throws {
        let from = beingWrittenPath(id, summary.generationStamp)
        let to = finalizedPath(id, summary.generationStamp)
        let directory = (to as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard rename(from, to) == 0 else {
            throw RemoteException.io("cannot move \(from) to \(to): \(String(cString: strerror(errno)))")
        }
        try LocalFile.synchronizeDirectory(directory)
        try LocalFile.synchronizeDirectory(beingWrittenDirectory)
        replicas.withLock {
            $0[id] = Replica(generationStamp: summary.generationStamp, isFinalized: true, rawLength: summary.rawLength, storedBytes: summary.storedLength)
        }
    }

    /// Opens a replica for reading: a finished one, or the whole frames of one being written.
    public func reader(_ id: UInt64) throws -> BlockReader {
        guard let replica = replica(id) else {
            throw RemoteException(.replicaNotFound, "Replica not found for block \(id)")
        }
        if replica.isFinalized {
            return try BlockReader(path: finalizedPath(id, replica.generationStamp), expectedBlockId: id)
        }
        return try BlockReader(unfinishedPath: beingWrittenPath(id, replica.generationStamp), expectedBlockId: id)
    }

    /// Deletes a replica and returns what it was; nil if there was none (or only a newer one,
    /// which is kept).
    @discardableResult
    public func remove(_ id: UInt64, generationStamp: UInt64? = nil) -> Replica? {
        let removed = replicas.withLock { replicas -> Replica? in
            guard let replica = replicas[id] else { return nil }
            if let generationStamp, generationStamp != 0, replica.generationStamp > generationStamp { return nil }
            replicas[id] = nil
            return replica
        }
        guard let removed else { return nil }
        removeFile(id, removed)
        return removed
    }

    private func removeFile(_ id: UInt64, _ replica: Replica) {
        unlink(replica.isFinalized ? finalizedPath(id, replica.generationStamp) : beingWrittenPath(id, replica.generationStamp))
    }

    /// Every replica, for a full block report.
    public func report() -> [Strata_Wire_ReportedBlock] {
        replicas.withLock { replicas in
            replicas.map { id, replica in Self.reported(id, replica) }
        }
    }

    static func reported(_ id: UInt64, _ replica: Replica) -> Strata_Wire_ReportedBlock {
        var reported = Strata_Wire_ReportedBlock()
        reported.block.blockID = id
        reported.block.generationStamp = replica.generationStamp
        reported.block.numBytes = replica.rawLength
        reported.state = replica.isFinalized ? .finalized : .beingWritten
        reported.storedBytes = replica.storedBytes
        return reported
    }

    /// Disk capacity and free space of the volume, and bytes used by replicas.
    public func usage() -> (capacity: UInt64, used: UInt64, remaining: UInt64) {
        var info = statvfs()
        let capacity: UInt64
        let available: UInt64
        if statvfs(directory, &info) == 0 {
            capacity = UInt64(info.f_blocks) * UInt64(info.f_frsize)
            available = UInt64(info.f_bavail) * UInt64(info.f_frsize)
        } else {
            capacity = 0
            available = 0
        }
        let used = replicas.withLock { $0.values.reduce(0) { $0 + $1.storedBytes } }
        return (capacity, used, available)
    }
}

/// A replica opened by `BlockStore.openForReading`: the reader, and a copy of the last frame as
/// it was when the replica was opened. Used by one task at a time.
public final class ReplicaSnapshot: @unchecked Sendable {
    public let reader: BlockReader
    private let lastFrame: [UInt8]?

    init(reader: BlockReader, lastFrame: [UInt8]?) {
        self.reader = reader
        self.lastFrame = lastFrame
    }

    /// The stored bytes of frame `index`, verified (see `BlockReader.storedFrame`).
    public func storedFrame(_ index: Int) throws(BlockFormatError) -> [UInt8] {
        if index == reader.frameCount - 1, let lastFrame { return lastFrame }
        return try reader.storedFrame(index)
    }

    /// The stored bytes of frames `range`, back to back and not yet verified, read with one
    /// `pread` (the copy of the last frame in place of the file's). Several tasks may call it at
    /// once.
    public func storedFrames(_ range: Range<Int>) throws(BlockFormatError) -> [UInt8] {
        guard let lastFrame, range.upperBound == reader.frameCount else { return try reader.storedFrames(range) }
        let before = range.lowerBound..<(range.upperBound - 1)
        return (before.isEmpty ? [] : try reader.storedFrames(before)) + lastFrame
    }
}

/// The right to write one replica. Recovery revokes it, so a writer cut off from its pipeline
/// never changes the file again: writers check it under the replica's file lock.
public final class WriteGrant: Sendable {
    public let blockId: UInt64
    private let revoked = Atomic<Bool>(false)

    init(blockId: UInt64) {
        self.blockId = blockId
    }

    public var isRevoked: Bool { revoked.load(ordering: .acquiring) }
    func revoke() { revoked.store(true, ordering: .releasing) }
}

/// A block writer for a replica, with its grant; used by one task at a time, which may hand it
/// to the I/O thread pool.
public final class ReplicaWriter: @unchecked Sendable {
    public let writer: BlockWriter
    public let grant: WriteGrant

    init(_ writer: BlockWriter, grant: WriteGrant) {
        self.writer = writer
        self.grant = grant
    }
}
