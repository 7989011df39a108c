import Foundation
import Logging
import StrataCore
import StrataWire

/// A service's durable state in a DFS directory: the newest snapshot plus an append-only log of
/// the records after it, written with `hsync` and replayed on start (docs/formats.md, "Service
/// state on the DFS"). The master, launcher and cron keep theirs under `/system/<service>/`.
///
/// One process owns the directory at a time: `open` takes it over, recovering the lease of the
/// log the previous owner left, so a previous owner still running is fenced off (its next
/// append fails) and never writes to a log anyone reads again.
public actor DFSStateStore {
    public struct Options: Sendable {
        /// How long `open` waits for the name node to close a log a crashed writer left open.
        public var leaseRecoveryTimeoutSeconds: Double = 120
        /// Replicas of the log and snapshots; nil for the name node's default.
        public var replication: Int?

        public init() {}
    }

    public nonisolated let directory: String
    let client: DFSClient
    let logger: Logger
    let options: Options

    private enum Phase {
        case unopened
        case opening
        case open
        /// `close` is waiting for appends and a snapshot under way to finish; new calls are refused.
        case closing
        case closed
        case failed(DFSStateStoreError)
    }

    private var phase = Phase.unopened
    /// The log appends go to (while open).
    private var log: LogFile?
    /// Sequence number of the newest snapshot, if there is one.
    private var snapshotSequence: UInt64?

    /// Records made durable since the last snapshot (so a service can decide when to snapshot).
    public private(set) var recordsSinceSnapshot = 0
    /// Group commits (write and hsync of the log) since the store was created: fewer than the
    /// `append` calls when callers append concurrently.
    public private(set) var commitCount = 0
    /// The log appends go to now, if the store is open.
    public var currentLogPath: String? { log?.path }

    /// Appends waiting for the next commit: their framed bytes, and who to tell.
    private struct Batch {
        var bytes: [UInt8] = []
        var records = 0
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var isEmpty: Bool { waiters.isEmpty }

        mutating func add(_ framed: [UInt8], records count: Int, _ waiter: CheckedContinuation<Void, any Error>) {
            bytes += framed
            records += count
            waiters.append(waiter)
        }
    }

    private var queued = Batch()
    /// Appends that arrived while a snapshot replaces the log: they go to the new log.
    private var deferred = Batch()
    /// The task committing `queued`, while there is one; at most one runs at a time.
    private var committer: Task<Void, Never>?
    /// A snapshot is under way, from `beginSnapshot` to `finishSnapshot` or `abandonSnapshot`.
    private var snapshotting = false
    /// `beginSnapshot` is replacing the log: appends wait in `deferred` meanwhile.
    private var rotating = false
    private var snapshotWaiters: [CheckedContinuation<Void, Never>] = []
    /// Run while a snapshot is being written, after its temporary file is closed (tests hold a
    /// snapshot there to see what happens meanwhile).
    var snapshotHook: (@Sendable () async -> Void)?

    func setSnapshotHook(_ hook: (@Sendable () async -> Void)?) {
        snapshotHook = hook
    }

    /// Appends waiting for a snapshot to replace the log.
    var appendsWaitingForSnapshot: Int { deferred.waiters.count }

    public init(client: DFSClient, directory: String, logger: Logger, options: Options = Options()) {
        self.client = client
        self.directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.logger = logger
        self.options = options
    }

    private nonisolated func path(_ file: DFSStateStoreFormat.FileName) -> String {
        directory + "/" + file.name
    }

    // MARK: - Open

    /// Takes over the directory (creating it): recovers the lease of a log a crashed writer
    /// left open (and waits until it is closed), reads the newest complete snapshot and every
    /// record logged after it, in order (a torn last record, from a crash mid-append, is
    /// dropped; damage anywhere else is an error, never silently skipped), and starts a fresh
    /// log file for appends. A writer that still holds the old log is fenced off: its later
    /// appends fail.
    ///
    /// A store that failed (`DFSStateStoreError.Kind.writeFailed`) or was closed may be opened
    /// again; that replays what reached the DFS.
    public func open() async throws -> (snapshot: [UInt8]?, records: [[UInt8]]) {
        switch phase {
        case .opening, .open, .closing:
            throw DFSStateStoreError(.alreadyOpen, path: directory, "the state store is already open")
        case .failed:
            // The log this store failed on is taken back below like any crashed writer's.
            log = nil
        case .unopened, .closed:
            break
        }
        phase = .opening
        do {
            var attempt = 1
            while true {
                do {
                    let state = try await takeOver()
                    phase = .open
                    return state
                } catch let error as DFSStateStoreError where error.kind == .takenOver && attempt < Self.takeOverAttempts {
                    // Another writer created a file just after the listing: look again.
                    logger.warning("state directory changed while opening; reading it again", metadata: ["error": "\(error)"])
                    attempt += 1
                }
            }
        } catch {
            phase = .unopened
            throw error
        }
    }

    /// How many times `open` reads the directory again when a file it meant to create appeared.
    static let takeOverAttempts = 3

    private func takeOver() async throws -> (snapshot: [UInt8]?, records: [[UInt8]]) {
        try await client.mkdirs(directory)
        var snapshots: [UInt64] = []
        var logs: [(sequence: UInt64, status: Strata_Wire_FileStatus)] = []
        var temporaries: [UInt64] = []
        for entry in try await client.list(directory) {
            let name = (entry.path as NSString).lastPathComponent
            switch DFSStateStoreFormat.FileName(name) {
            case .snapshot(let sequence)?: snapshots.append(sequence)
            case .log(let sequence)?: logs.append((sequence, entry))
            case .temporarySnapshot(let sequence)?: temporaries.append(sequence)
            case nil: logger.warning("ignoring a file the state store does not write", metadata: ["path": "\(directory)/\(name)"])
            }
        }
        let newestSnapshot = snapshots.max()
        // snapshot-N covers every log numbered below N.
        let replayed = logs.filter { $0.sequence >= newestSnapshot ?? 0 }.sorted { $0.sequence < $1.sequence }

        // Closing each log first makes its length final and fences off a writer still holding it.
        for entry in replayed where entry.status.underConstruction {
            try await recoverLease(path(.log(entry.sequence)))
        }

        var snapshot: [UInt8]?
        if let newestSnapshot {
            let file = path(.snapshot(newestSnapshot))
            snapshot = try DFSStateStoreFormat.decodeSnapshot(try await client.readAll(file), path: file, sequence: newestSnapshot)
        }
        var records: [[UInt8]] = []
        for entry in replayed {
            let file = path(.log(entry.sequence))
            let decoded = try DFSStateStoreFormat.decodeLog(try await client.readAll(file), path: file, sequence: entry.sequence)
            if let torn = decoded.tornTailOffset {
                // Only a log's end can be cut short, by its writer crashing mid-append: none of
                // those bytes were acknowledged.
                logger.warning("dropping a record cut short at the end of a log", metadata: ["path": "\(file)", "offset": "\(torn)"])
            }
            records += decoded.records
        }

        // A new log, never one a crashed writer may still hold. Its number is the one a
        // previous owner still running would give its own next log (its log's number plus one,
        // after a snapshot), so if both try, one create fails: a temporary snapshot's number
        // does not count, or a previous owner could finish that snapshot and start a log we
        // never read and it is never fenced off from.
        let highest = ([0] + snapshots + logs.map(\.sequence)).max()!
        let sequence = highest + 1
        log = try await createLog(sequence)
        snapshotSequence = newestSnapshot
        recordsSinceSnapshot = records.count
        logger.info("state store opened", metadata: [
            "directory": "\(directory)", "snapshot": "\(newestSnapshot.map(String.init) ?? "none")",
            "logs": "\(replayed.count)", "records": "\(records.count)", "log": "\(path(.log(sequence)))"])

        // Left-overs: snapshots never renamed into place, and files the newest snapshot covers
        // whose removal was cut short.
        var obsolete = temporaries.map { DFSStateStoreFormat.FileName.temporarySnapshot($0) }
        if let newestSnapshot {
            obsolete += snapshots.filter { $0 < newestSnapshot }.map { .snapshot($0) }
            obsolete += logs.filter { $0.sequence < newestSnapshot }.map { .log($0.sequence) }
        }
        await remove(obsolete)
        return (snapshot, records)
    }

    /// Reads the state as it is on the DFS without taking it over: the newest snapshot and the
    /// records of the logs after it, the log being written read as far as it is visible
    /// (every acknowledged append is; a record cut short at its end is left out). For a
    /// process that only needs to look (an agent or the master reading another service's
    /// state); the owner keeps writing undisturbed. A file removed meanwhile by the owner's
    /// snapshot makes it read the directory again.
    public func readCurrent() async throws -> (snapshot: [UInt8]?, records: [[UInt8]]) {
        var attempt = 1
        while true {
            do {
                return try await readOnce()
            } catch let error as RemoteException where error.exceptionClass == .fileNotFound && attempt < Self.takeOverAttempts {
                attempt += 1
            }
        }
    }

    private func readOnce() async throws -> (snapshot: [UInt8]?, records: [[UInt8]]) {
        var snapshots: [UInt64] = []
        var logs: [UInt64] = []
        guard try await client.status(directory) != nil else { return (nil, []) }
        for entry in try await client.list(directory) {
            switch DFSStateStoreFormat.FileName((entry.path as NSString).lastPathComponent) {
            case .snapshot(let sequence)?: snapshots.append(sequence)
            case .log(let sequence)?: logs.append(sequence)
            default: break
            }
        }
        let newestSnapshot = snapshots.max()
        var snapshot: [UInt8]?
        if let newestSnapshot {
            let file = path(.snapshot(newestSnapshot))
            snapshot = try DFSStateStoreFormat.decodeSnapshot(try await client.readAll(file), path: file, sequence: newestSnapshot)
        }
        var records: [[UInt8]] = []
        for sequence in logs.filter({ $0 >= newestSnapshot ?? 0 }).sorted() {
            let file = path(.log(sequence))
            records += try DFSStateStoreFormat.decodeLog(try await client.readAll(file), path: file, sequence: sequence).records
        }
        return (snapshot, records)
    }

    /// Asks the name node to close a log until it has, within `leaseRecoveryTimeoutSeconds`.
    private func recoverLease(_ file: String) async throws {
        let clock = client.clock
        let deadline = clock.now + .seconds(options.leaseRecoveryTimeoutSeconds)
        var delay = 0.05
        while try await !client.recoverLease(file) {
            if clock.now + .seconds(delay) > deadline {
                throw DFSStateStoreError(
                    .leaseRecoveryTimedOut, path: file,
                    "the log is still open for writing \(options.leaseRecoveryTimeoutSeconds) s after asking to recover its lease")
            }
            try await clock.sleep(for: .seconds(delay))
            delay = min(delay * 2, 1)
        }
    }

    /// Creates `log-<sequence>` and makes its header durable.
    private func createLog(_ sequence: UInt64) async throws -> LogFile {
        let file = path(.log(sequence))
        let stream: DFSOutputStream
        do {
            stream = try await client.create(file, overwrite: false, replication: options.replication)
        } catch let error as RemoteException where error.exceptionClass == .fileAlreadyExists {
            throw DFSStateStoreError(.takenOver, path: file, "another writer created this log first", underlying: error)
        }
        let log = LogFile(path: file, sequence: sequence, stream: stream)
        do {
            try await log.write(DFSStateStoreFormat.logHeader(sequence: sequence))
        } catch {
            throw DFSStateStoreError(.writeFailed, path: file, offset: 0, "writing the log header failed", underlying: error)
        }
        return log
    }

    /// Deletes files the state no longer needs. A failure is logged, not thrown: the state is
    /// whole without them, and the next snapshot or open deletes them again.
    private func remove(_ files: [DFSStateStoreFormat.FileName]) async {
        for file in files {
            do {
                try await client.delete(path(file), recursive: false)
            } catch {
                logger.warning("could not delete an obsolete state file", metadata: ["path": "\(path(file))", "error": "\(error)"])
            }
        }
    }

    // MARK: - Append

    /// Appends records; returns once they are durable (hsync'd on every replica). Concurrent
    /// callers share one hsync (group commit); the records of one call are contiguous in the
    /// log, and calls are logged in the order they reach the store.
    ///
    /// A record over `DFSStateStoreFormat.maximumRecordBytes` is refused before anything is
    /// written. If writing fails, the records of every call not yet durable may or may not be
    /// in the log (each call throws), and the store refuses further calls until opened again.
    public func append(_ records: [[UInt8]]) async throws {
        try requireOpen()
        var framed: [UInt8] = []
        for (index, record) in records.enumerated() {
            guard record.count <= DFSStateStoreFormat.maximumRecordBytes else {
                throw DFSStateStoreError(
                    .recordTooLarge, path: log?.path,
                    "record \(index) of the append has \(record.count) bytes; a record may have at most \(DFSStateStoreFormat.maximumRecordBytes)")
            }
            DFSStateStoreFormat.appendRecord(record, to: &framed)
        }
        guard !records.isEmpty else { return }
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
            if rotating {
                deferred.add(framed, records: records.count, waiter)
            } else {
                queued.add(framed, records: records.count, waiter)
                startCommitter()
            }
        }
    }

    private func startCommitter() {
        guard committer == nil, !queued.isEmpty else { return }
        committer = Task { await commitQueued() }
    }

    /// Writes and hsyncs everything queued, one batch per hsync, until nothing is queued: what
    /// arrives during one hsync goes out in the next.
    private func commitQueued() async {
        while !queued.isEmpty {
            let batch = queued
            queued = Batch()
            guard let log else {
                // The store failed or closed under the batch; `fail` has told the others.
                for waiter in batch.waiters { waiter.resume(throwing: DFSStateStoreError(.notOpen, path: directory, "the state store is not open")) }
                continue
            }
            let offset = log.length
            do {
                try await log.write(batch.bytes)
                commitCount += 1
                recordsSinceSnapshot += batch.records
                for waiter in batch.waiters { waiter.resume() }
            } catch {
                let failure = DFSStateStoreError(
                    .writeFailed, path: log.path, offset: offset, "appending \(batch.records) records failed; open the store again",
                    underlying: error)
                for waiter in batch.waiters { waiter.resume(throwing: failure) }
                fail(failure)
            }
        }
        committer = nil
    }

    /// Stops the store after a write failed: appends waiting are told, and every later call
    /// throws until `open`.
    private func fail(_ failure: DFSStateStoreError) {
        logger.error("state store failed", metadata: ["directory": "\(directory)", "error": "\(failure)"])
        phase = .failed(failure)
        log = nil
        let waiting = queued.waiters + deferred.waiters
        queued = Batch()
        deferred = Batch()
        for waiter in waiting { waiter.resume(throwing: failure) }
    }

    private func requireOpen() throws(DFSStateStoreError) {
        switch phase {
        case .open: return
        case .failed(let failure): throw failure
        case .unopened, .opening, .closing, .closed:
            throw DFSStateStoreError(.notOpen, path: directory, "the state store is not open")
        }
    }

    private var hasFailed: DFSStateStoreError? {
        if case .failed(let failure) = phase { return failure }
        return nil
    }

    // MARK: - Snapshot

    /// A snapshot begun by `beginSnapshot`, to be written by `finishSnapshot`: the number its
    /// file takes, one past the log it closed.
    public struct SnapshotStart: Sendable, Hashable {
        public let sequence: UInt64
    }

    /// Replaces the state: `bytes` must cover every record passed to `append` before this call
    /// (whether or not that append has returned yet), and no record passed after it. The same as
    /// `beginSnapshot` then `finishSnapshot`.
    public func writeSnapshot(_ bytes: [UInt8]) async throws {
        try Self.checkSnapshotSize(bytes, directory: directory)
        let start = try await beginSnapshot()
        try await finishSnapshot(start, bytes)
    }

    /// Starts a snapshot of the state as of every record passed to `append` before this call:
    /// the current log is finished and a new one started, and appends go on at once in the new
    /// log while the caller encodes the state and hands it to `finishSnapshot` (or gives up with
    /// `abandonSnapshot`). Until the snapshot is in place the state is the older snapshot plus
    /// every log after it, the finished one included, so nothing depends on the snapshot being
    /// written at all. One snapshot at a time.
    public func beginSnapshot() async throws -> SnapshotStart {
        try requireOpen()
        guard !snapshotting else {
            throw DFSStateStoreError(.snapshotInProgress, path: directory, "a snapshot is already being written")
        }
        snapshotting = true
        // Appends made before this call are queued: they go to the current log, which the
        // snapshot covers. Later ones wait in `deferred` for the next log.
        rotating = true
        defer {
            rotating = false
            releaseDeferred()
        }
        while let committer { await committer.value }
        do {
            if let failure = hasFailed { throw failure }
            guard let current = log else { throw DFSStateStoreError(.notOpen, path: directory, "the state store is not open") }
            let sequence = current.sequence + 1
            do {
                try await current.close()
                log = try await createLog(sequence)
            } catch {
                let failure = error as? DFSStateStoreError
                    ?? DFSStateStoreError(
                        .writeFailed, path: path(.log(sequence)), "starting the log after a snapshot failed; open the store again",
                        underlying: error)
                fail(failure)
                throw failure
            }
            recordsSinceSnapshot = 0
            return SnapshotStart(sequence: sequence)
        } catch {
            endSnapshot()
            throw error
        }
    }

    /// Writes the snapshot `beginSnapshot` started: `bytes` are the state as of the log it
    /// finished. Written to a temporary file, hsync'd and closed, then renamed into place
    /// (atomic); the files it covers are deleted after. Appends go on meanwhile. If any step
    /// fails the state stays the older snapshot plus the logs, and the store goes on.
    public func finishSnapshot(_ start: SnapshotStart, _ bytes: [UInt8]) async throws {
        defer { endSnapshot() }
        try Self.checkSnapshotSize(bytes, directory: directory)
        let temporary = path(.temporarySnapshot(start.sequence))
        let final = path(.snapshot(start.sequence))
        do {
            try await writeTemporarySnapshot(temporary, sequence: start.sequence, bytes)
        } catch {
            await remove([.temporarySnapshot(start.sequence)])
            throw DFSStateStoreError(.writeFailed, path: temporary, "writing the snapshot failed; the state is unchanged", underlying: error)
        }
        await snapshotHook?()
        do {
            try await client.rename(temporary, to: final, overwrite: false)
        } catch let error as RemoteException where error.exceptionClass == .fileAlreadyExists {
            await remove([.temporarySnapshot(start.sequence)])
            throw DFSStateStoreError(.takenOver, path: final, "another writer put this snapshot in place first", underlying: error)
        } catch {
            await remove([.temporarySnapshot(start.sequence)])
            throw DFSStateStoreError(.writeFailed, path: final, "putting the snapshot in place failed; the state is unchanged", underlying: error)
        }
        snapshotSequence = start.sequence
        logger.info("state snapshot written", metadata: ["path": "\(final)", "bytes": "\(bytes.count)"])
        // The snapshot covers every file numbered below it.
        var obsolete: [DFSStateStoreFormat.FileName] = []
        do {
            for entry in try await client.list(directory) {
                let name = DFSStateStoreFormat.FileName((entry.path as NSString).lastPathComponent)
                if let name, name.sequence < start.sequence { obsolete.append(name) }
            }
        } catch {
            logger.warning("could not list the state directory to delete old files", metadata: ["directory": "\(directory)", "error": "\(error)"])
        }
        await remove(obsolete)
    }

    /// Ends a snapshot `beginSnapshot` started without writing it (its state could not be
    /// encoded): the logs still hold every record.
    public func abandonSnapshot(_ start: SnapshotStart) {
        endSnapshot()
    }

    static func checkSnapshotSize(_ bytes: [UInt8], directory: String) throws(DFSStateStoreError) {
        guard bytes.count <= DFSStateStoreFormat.maximumSnapshotBytes else {
            throw DFSStateStoreError(
                .snapshotTooLarge, path: directory,
                "snapshot of \(bytes.count) bytes; a snapshot may have at most \(DFSStateStoreFormat.maximumSnapshotBytes)")
        }
    }

    /// Writes, hsyncs and closes the temporary snapshot file, off the actor: appends are queued
    /// and committed meanwhile.
    private nonisolated func writeTemporarySnapshot(_ temporary: String, sequence: UInt64, _ bytes: [UInt8]) async throws {
        let stream = try await client.create(temporary, overwrite: true, replication: options.replication)
        do {
            try await stream.write(DFSStateStoreFormat.snapshotFile(sequence: sequence, payload: bytes))
            try await stream.hsync()
        } catch {
            try? await stream.close()
            throw error
        }
        try await stream.close()
    }

    /// Appends that waited while the log was replaced go to the new one.
    private func releaseDeferred() {
        guard hasFailed == nil else { return }
        let waiting = deferred
        deferred = Batch()
        queued.bytes += waiting.bytes
        queued.records += waiting.records
        queued.waiters += waiting.waiters
        startCommitter()
    }

    private func endSnapshot() {
        snapshotting = false
        let waiters = snapshotWaiters
        snapshotWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    // MARK: - Close

    /// Closes the current log, after the appends and snapshot under way finish. Later calls
    /// (but `open`) throw. A store that failed has no log to close: its failure was thrown to
    /// the calls it hit, and `close` only marks it closed (the next `open` recovers the log).
    public func close() async throws {
        switch phase {
        case .open: break
        case .unopened, .closed: return
        case .failed:
            phase = .closed
            return
        case .opening, .closing:
            throw DFSStateStoreError(.notOpen, path: directory, "the state store is being opened or closed")
        }
        phase = .closing
        while snapshotting { await withCheckedContinuation { snapshotWaiters.append($0) } }
        while let committer { await committer.value }
        if let failure = hasFailed {
            phase = .closed
            throw failure
        }
        let current = log
        log = nil
        phase = .closed
        if let current {
            do {
                try await current.close()
            } catch {
                throw DFSStateStoreError(.writeFailed, path: current.path, "closing the log failed", underlying: error)
            }
        }
    }
}

extension DFSStateStore {
    /// The log being appended to. Its stream is a class for one task at a time: only the
    /// store's committer, a snapshot (after waiting for the committer) or `close` (likewise)
    /// use it, never two at once, and they run it off the actor so the store keeps queueing
    /// appends meanwhile.
    final class LogFile: @unchecked Sendable {
        let path: String
        let sequence: UInt64
        private let stream: DFSOutputStream
        /// Bytes written to the log so far.
        private(set) var length: UInt64 = 0

        init(path: String, sequence: UInt64, stream: DFSOutputStream) {
            self.path = path
            self.sequence = sequence
            self.stream = stream
        }

        /// Writes and hsyncs `bytes`: durable on every replica when this returns.
        func write(_ bytes: [UInt8]) async throws {
            try await stream.write(bytes)
            try await stream.hsync()
            length += UInt64(bytes.count)
        }

        func close() async throws {
            try await stream.close()
        }
    }
}
