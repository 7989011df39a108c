import Foundation
import StrataCore

/// The name node's durable journal: every namespace edit is a record with a transaction id,
/// committed to `journal.sqlite` (SQLite, WAL mode, `synchronous=FULL`) before anyone is told it
/// happened, plus checkpoint images (`image-<txid>`) that fold old edits into one snapshot.
///
/// Startup: `readCheckpoint` rebuilds the namespace from the newest image, then
/// `forEachEdit(after: checkpointTransactionId)` replays the edits made since. While running, the
/// name node applies an edit in memory and calls `submit` while still holding its namespace lock,
/// so transaction ids follow the order edits were applied; it answers the client from `onDurable`.
///
/// Commits are grouped (see `GroupCommitter`): one writer thread commits everything queued in one
/// transaction, so the cost of an fsync is shared by all edits that arrived while the last one ran.
///
/// A directory is used by one journal at a time (an `flock` on `journal.lock`), so two name nodes
/// started on the same directory cannot interleave edits.
public final class Journal: @unchecked Sendable {
    public static let databaseFileName = "journal.sqlite"
    static let lockFileName = "journal.lock"

    public let directory: String
    public let databasePath: String
    private let lockFile: LocalFile
    private let database: JournalDatabase
    private let committer: GroupCommitter
    /// Held for a whole checkpoint, image read or close, so they never overlap.
    private let checkpointLock = NSLock()
    /// Guards `checkpoint` and `isClosed`.
    private let stateLock = NSLock()
    /// The newest image's id, nil when there is no image (an image at id 0 is possible).
    private var checkpoint: UInt64?
    private var isClosed = false

    /// Opens or creates `directory/journal.sqlite` and finds the newest checkpoint image in
    /// `directory`, removing temporary images left by a crash.
    ///
    /// The directory must exist: creating it would let a mistyped path start an empty namespace.
    ///
    /// - Parameters:
    ///   - maximumQueuedRecords: records submitted but not yet committed, at most; `submit` waits
    ///     beyond it.
    ///   - maximumQueuedBytes: bytes of such records, at most.
    public init(
        directory: String,
        maximumQueuedRecords: Int = JournalLimits.maximumQueuedRecords,
        maximumQueuedBytes: Int = JournalLimits.maximumQueuedBytes
    ) throws(JournalError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JournalError(.io, "no such directory", path: directory)
        }
        self.directory = directory
        self.databasePath = directory + "/" + Self.databaseFileName

        let lockPath = directory + "/" + Self.lockFileName
        do { lockFile = try LocalFile(path: lockPath, mode: .createOrTruncate) } catch { throw JournalError(error) }
        if flock(lockFile.descriptor, LOCK_EX | LOCK_NB) != 0 {
            let detail =
                errno == EWOULDBLOCK
                ? "another journal (another name node?) has this directory open"
                : String(cString: strerror(errno))
            throw JournalError(.directoryInUse, detail, path: lockPath)
        }

        let images = try Self.scanImages(directory: directory)
        database = try JournalDatabase(path: databasePath)
        // SQLite makes the write-ahead log's directory entry durable but not the database file's;
        // without this a crash soon after creating a journal could lose the file and its edits.
        do { try LocalFile.synchronizeDirectory(directory) } catch { throw JournalError(error) }
        let stored = database.storedCheckpointTransactionId
        if stored > 0 && (images.last ?? 0) < stored {
            throw JournalError(
                .missingImage,
                "the database says edits up to \(stored) were folded into \(CheckpointImage.fileName(transactionId: stored)), "
                    + "but the newest image is \(images.last.map { CheckpointImage.fileName(transactionId: $0) } ?? "absent")",
                path: directory)
        }
        checkpoint = images.last
        let lastDurable = max(database.highestTransactionIdAtOpen ?? 0, images.last ?? 0)
        let database = self.database
        committer = GroupCommitter(
            lastDurableTransactionId: lastDurable, maximumRecords: maximumQueuedRecords, maximumBytes: maximumQueuedBytes,
            commit: { (batch) throws(JournalError) in try database.append(batch) })
        committer.start()
    }

    deinit { close() }

    /// The highest transaction id made durable so far (for a journal just opened: the highest on
    /// disk, in the database or the newest image; 0 for a new journal).
    public var lastDurableTransactionId: UInt64 { committer.lastDurableTransactionId }

    /// The id the most recent `submit` returned (durable or not).
    public var lastSubmittedTransactionId: UInt64 { committer.lastSubmittedTransactionId }

    /// The newest checkpoint image's transaction id (0 if there is none).
    public var checkpointTransactionId: UInt64 { stateLock.withLock { checkpoint ?? 0 } }

    /// How many transactions the writer thread has committed since the journal was opened. With
    /// group commit this is usually far below the number of records.
    public var commitCount: UInt64 { committer.commitCount }

    /// Queues one edit record and returns its transaction id at once. Ids are consecutive in call
    /// order, so call this while holding the lock under which the edit was applied.
    ///
    /// `onDurable` runs on the journal's writer thread once the record is committed to disk, or
    /// with the error if that commit failed. Keep it short (it delays the next commit), and do not
    /// call `flush` or `close` from it.
    ///
    /// Waits while `maximumQueuedRecords` or `maximumQueuedBytes` are reached (back-pressure).
    /// Throws, without ever calling `onDurable`, if the record is over
    /// `JournalLimits.maximumRecordBytes`, if an earlier commit failed, or if the journal is closed.
    ///
    /// With a `reservation` (from `reserveRoom`) it never waits: the caller waited for room before
    /// taking its lock. A caller that submits under a lock other threads need should always
    /// reserve first, so that a stalled disk never holds that lock.
    @discardableResult
    public func submit(
        _ record: [UInt8], reservation: JournalReservation? = nil,
        onDurable: @escaping @Sendable (Result<UInt64, JournalError>) -> Void
    ) throws(JournalError) -> UInt64 {
        guard record.count <= JournalLimits.maximumRecordBytes else {
            throw JournalError(
                .recordTooLarge,
                "edit record of \(record.count) bytes; at most \(JournalLimits.maximumRecordBytes) bytes allowed",
                path: databasePath)
        }
        return try committer.submit(record, reserved: reservation?.room, onDurable: onDurable)
    }

    /// Waits, suspending the task rather than blocking a thread, until the queue has room for a
    /// record (back-pressure), and reserves that room for the caller's next `submit`. The records
    /// a caller submits with one reservation may go past the bound by the few records of one
    /// change; dropping a reservation unused gives its room back. Throws if the journal has failed
    /// or is closed.
    public func reserveRoom() async throws(JournalError) -> JournalReservation {
        JournalReservation(room: try await committer.reserveRoom())
    }

    /// Runs `hook` on the writer thread before every commit from now on (nil: none). Tests use a
    /// hook that blocks to stall the journal's disk.
    public func setCommitHookForTesting(_ hook: (@Sendable () -> Void)?) {
        committer.setCommitHook(hook)
    }

    /// Submits `record` and waits until it is durable; returns its transaction id. Waits for room
    /// in the queue without blocking a thread.
    public func append(_ record: [UInt8]) async throws(JournalError) -> UInt64 {
        let reservation = try await reserveRoom()
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<UInt64, JournalError>, Never>) in
            do throws(JournalError) {
                try submit(record, reservation: reservation) { continuation.resume(returning: $0) }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }

    /// Blocks until everything submitted so far is durable and its `onDurable` has run; throws if
    /// any of it failed to commit.
    public func flush() throws(JournalError) {
        try committer.flush()
    }

    /// Calls `body` with every edit whose id is above `after`, in id order, reading through a
    /// cursor so memory stays bounded however many edits there are.
    ///
    /// Throws if an edit in that range is missing (for instance `after` lies before the newest
    /// checkpoint, whose edits were deleted): replaying around a gap would build a wrong namespace.
    /// Edits that become durable during the call may or may not be included.
    public func forEachEdit(after: UInt64, _ body: (UInt64, [UInt8]) throws -> Void) throws {
        try checkOpen()
        try JournalDatabase.forEachEdit(path: databasePath, after: after, through: lastDurableTransactionId, body)
    }

    /// Writes a checkpoint image holding `records` (the caller's serialized namespace, which must
    /// reflect exactly the edits up to and including `transactionId`), then deletes what it makes
    /// redundant.
    ///
    /// Steps, in an order that leaves a consistent state after a crash at any point:
    /// 1. wait until the edits up to `transactionId` are durable (an image must never contain an
    ///    edit that could still fail to commit);
    /// 2. write `image-<txid>.tmp`, fdatasync it, rename it to `image-<txid>`, fsync the directory;
    /// 3. delete edits up to `transactionId` from the database;
    /// 4. remove older images.
    ///
    /// A crash before the rename leaves the old image and all edits; after it, the new image and
    /// (some of) the edits, which replay from the new image skips.
    public func writeCheckpoint(transactionId: UInt64, records: some Sequence<[UInt8]>) throws(JournalError) {
        checkpointLock.lock()
        defer { checkpointLock.unlock() }
        try checkOpen()
        let current = stateLock.withLock { checkpoint }
        if let current, transactionId < current {
            throw JournalError(
                .invalidArgument, "checkpoint at \(transactionId) is older than the current one at \(current)", path: directory)
        }
        let lastSubmitted = committer.lastSubmittedTransactionId
        guard transactionId <= lastSubmitted else {
            throw JournalError(
                .invalidArgument, "checkpoint at \(transactionId) is beyond the last edit, \(lastSubmitted)", path: directory)
        }
        try committer.waitUntilDurable(transactionId)

        let finalPath = directory + "/" + CheckpointImage.fileName(transactionId: transactionId)
        let temporaryPath = finalPath + CheckpointImage.temporarySuffix
        do throws(JournalError) {
            try CheckpointImage.write(path: temporaryPath, transactionId: transactionId, records: records)
            if rename(temporaryPath, finalPath) != 0 {
                throw JournalError(SystemCallError(call: "rename", path: temporaryPath, errorNumber: errno))
            }
        } catch {
            unlink(temporaryPath)
            throw error
        }
        do { try LocalFile.synchronizeDirectory(directory) } catch { throw JournalError(error) }
        stateLock.withLock { checkpoint = transactionId }

        try database.dropEdits(through: transactionId)
        var removed = false
        for older in try Self.scanImages(directory: directory) where older < transactionId {
            let path = directory + "/" + CheckpointImage.fileName(transactionId: older)
            if unlink(path) != 0 && errno != ENOENT {
                throw JournalError(SystemCallError(call: "unlink", path: path, errorNumber: errno))
            }
            removed = true
        }
        if removed {
            do { try LocalFile.synchronizeDirectory(directory) } catch { throw JournalError(error) }
        }
    }

    /// Streams the newest checkpoint image's records to `body`, each after its checksum is
    /// verified, and returns the image's transaction id (0, without calling `body`, if there is no
    /// image). A damaged image throws a `JournalError` naming the file; it is never skipped in
    /// favour of an older one, because the edits that older image would need may be gone.
    @discardableResult
    public func readCheckpoint(_ body: ([UInt8]) throws -> Void) throws -> UInt64 {
        checkpointLock.lock()
        defer { checkpointLock.unlock() }
        try checkOpen()
        guard let transactionId = stateLock.withLock({ checkpoint }) else { return 0 }
        let path = directory + "/" + CheckpointImage.fileName(transactionId: transactionId)
        return try CheckpointImage.read(path: path, expectedTransactionId: transactionId, body)
    }

    /// Commits everything submitted so far, stops the writer thread and closes the files. Later
    /// calls throw `.closed`. Safe to call more than once; must not be called from `onDurable`.
    public func close() {
        checkpointLock.lock()
        defer { checkpointLock.unlock() }
        let wasClosed = stateLock.withLock {
            defer { isClosed = true }
            return isClosed
        }
        guard !wasClosed else { return }
        committer.close()
        database.close()
        // Closing the descriptor releases the directory lock.
        try? lockFile.close()
    }

    // MARK: - Internal

    private func checkOpen() throws(JournalError) {
        if stateLock.withLock({ isClosed }) {
            throw JournalError(.closed, "the journal is closed", path: directory)
        }
    }

    /// Ids of the final images in `directory`, ascending; removes temporary images on the way
    /// (a temporary image is never needed: it was not yet renamed, so the old state is intact).
    private static func scanImages(directory: String) throws(JournalError) -> [UInt64] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw JournalError(.io, "cannot list directory: \(error)", path: directory)
        }
        var images: [UInt64] = []
        for name in names {
            if let transactionId = CheckpointImage.transactionId(fileName: name) {
                images.append(transactionId)
            } else if CheckpointImage.isTemporary(fileName: name) {
                let path = directory + "/" + name
                if unlink(path) != 0 && errno != ENOENT {
                    throw JournalError(SystemCallError(call: "unlink", path: path, errorNumber: errno))
                }
            }
        }
        return images.sorted()
    }

    /// Runs `body` while the writer thread cannot commit, so submissions pile up into one batch.
    func withCommitsPausedForTesting<T>(_ body: () throws -> T) rethrows -> T {
        try database.locked(body)
    }

    /// Submitters waiting for room in the queue right now.
    var waitingForRoomForTesting: Int { committer.waitingForRoom }

    /// Caps the database size, so tests can make the next commit fail as on a full disk.
    func setMaximumPageCountForTesting(_ pages: Int) throws(JournalError) {
        try database.setMaximumPageCount(pages)
    }
}

/// Room in the journal's queue for one change, reserved by `Journal.reserveRoom`.
public struct JournalReservation: Sendable {
    let room: GroupCommitter.Reservation
}
