import CSQLite
import Foundation
import StrataCore

/// The SQLite side of the journal: `journal.sqlite` in WAL mode with `synchronous=FULL`, so a
/// commit has reached the disk (the write-ahead log is fsynced) when it returns.
///
/// Schema (format version 1):
/// - `meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)`: `format_version`, and
///   `checkpoint_txid`, the newest checkpoint image whose edits may have been deleted.
/// - `edits(txid INTEGER PRIMARY KEY, record BLOB NOT NULL)`: one row per edit.
///
/// The write connection is shared by the writer thread (batches) and checkpoints (deletions), so
/// every use takes `lock`. Replay opens its own read-only connection: in WAL mode readers do not
/// block the writer.
final class JournalDatabase: @unchecked Sendable {
    static let formatVersion: Int64 = 1

    let path: String
    private let lock = NSLock()
    private let connection: SQLiteConnection
    private let insert: SQLiteStatement
    private var isClosed = false
    /// `meta.checkpoint_txid` when the database was opened.
    let storedCheckpointTransactionId: UInt64
    /// The highest edit id present when the database was opened, nil if there was none.
    let highestTransactionIdAtOpen: UInt64?

    init(path: String) throws(JournalError) {
        self.path = path
        connection = try SQLiteConnection(path: path, readOnly: false)
        let mode = try connection.text("PRAGMA journal_mode = WAL")
        guard mode?.lowercased() == "wal" else {
            throw JournalError(.sqlite, "cannot switch to WAL mode (journal_mode is \(mode ?? "unknown"))", path: path)
        }
        try connection.execute(
            "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = \(JournalLimits.walSizeLimitBytes);")

        // BEGIN IMMEDIATE takes the write lock at once, so creating the schema cannot race another opener.
        try connection.execute("BEGIN IMMEDIATE")
        do throws(JournalError) {
            let hasMeta = try connection.integer("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'") ?? 0
            if hasMeta == 0 {
                let tables = try connection.integer("SELECT count(*) FROM sqlite_schema") ?? 0
                guard tables == 0 else {
                    throw JournalError(
                        .invalidDatabase, "the database has tables but no meta table: not a Strata journal", path: path)
                }
                try connection.execute(
                    """
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                    INSERT INTO meta (key, value) VALUES ('format_version', \(Self.formatVersion)), ('checkpoint_txid', 0);
                    CREATE TABLE edits (txid INTEGER PRIMARY KEY, record BLOB NOT NULL);
                    """)
            }
            guard let version = try connection.integer("SELECT value FROM meta WHERE key = 'format_version'") else {
                throw JournalError(.invalidDatabase, "the meta table has no format_version", path: path)
            }
            guard version == Self.formatVersion else {
                throw JournalError(
                    .unsupportedVersion, "journal format version \(version); this build reads version \(Self.formatVersion)",
                    path: path)
            }
            let checkpoint = try connection.integer("SELECT value FROM meta WHERE key = 'checkpoint_txid'") ?? 0
            let highest = try connection.integer("SELECT max(txid) FROM edits")
            guard checkpoint >= 0, (highest ?? 1) > 0 else {
                throw JournalError(
                    .invalidDatabase, "impossible transaction ids (checkpoint \(checkpoint), highest edit \(highest ?? 0))",
                    path: path)
            }
            try connection.execute("COMMIT")
            storedCheckpointTransactionId = UInt64(checkpoint)
            highestTransactionIdAtOpen = highest.map { UInt64($0) }
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
        insert = try connection.prepare("INSERT INTO edits (txid, record) VALUES (?, ?)")
    }

    deinit { close() }

    func close() {
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed else { return }
        isClosed = true
        insert.finalize()
        connection.close()
    }

    /// Writes `batch` in one transaction; when this returns the whole batch is on disk, and when it
    /// throws none of it is.
    func append(_ batch: [PendingRecord]) throws(JournalError) {
        try locked { () throws(JournalError) in
            try connection.execute("BEGIN")
            do throws(JournalError) {
                for record in batch {
                    try insert.bind(Int64(record.transactionId), at: 1)
                    try record.bytes.withBytes { (bytes) throws(JournalError) in
                        try insert.bindBlob(bytes, at: 2)
                        _ = try insert.step()
                    }
                    insert.reset()
                }
                try connection.execute("COMMIT")
            } catch {
                insert.reset()
                // After some failures (SQLITE_FULL, I/O errors) SQLite has already rolled back and
                // this ROLLBACK fails harmlessly; the error that matters is the one thrown.
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// Records that the image at `transactionId` is now the base, then deletes the edits it covers
    /// in chunks (each its own transaction) so the write-ahead log stays small and the writer
    /// thread is held up only briefly. A crash part-way leaves some covered edits behind, which
    /// replay from the image skips and the next checkpoint deletes.
    func dropEdits(through transactionId: UInt64) throws(JournalError) {
        try locked { () throws(JournalError) in
            try connection.execute("UPDATE meta SET value = \(Int64(transactionId)) WHERE key = 'checkpoint_txid'")
        }
        guard let lowest = try locked({ () throws(JournalError) in try connection.integer("SELECT min(txid) FROM edits") })
        else { return }
        var lower = UInt64(lowest)
        while lower <= transactionId {
            let upper = min(transactionId, lower + JournalLimits.deletionChunkRecords - 1)
            try locked { () throws(JournalError) in
                try connection.execute("DELETE FROM edits WHERE txid BETWEEN \(Int64(lower)) AND \(Int64(upper))")
            }
            lower = upper + 1
        }
    }

    /// Streams edits with ids above `after`, in id order, through a read-only connection's cursor
    /// (one row in memory at a time). Checks the ids are consecutive from `after + 1` and reach
    /// `through`: a gap means edits were lost, and replaying past it would rebuild a wrong namespace.
    static func forEachEdit(
        path: String, after: UInt64, through: UInt64, _ body: (UInt64, [UInt8]) throws -> Void
    ) throws {
        let reader = try SQLiteConnection(path: path, readOnly: true)
        defer { reader.close() }
        let select = try reader.prepare("SELECT txid, record FROM edits WHERE txid > ? ORDER BY txid")
        defer { select.finalize() }
        try select.bind(Int64(after), at: 1)
        var expected = after + 1
        while try select.step() {
            let transactionId = UInt64(select.integer(column: 0))
            guard transactionId == expected else {
                throw JournalError(
                    .invalidDatabase,
                    "edits \(expected)...\(transactionId - 1) are missing (replay asked for every edit after \(after))",
                    path: path)
            }
            try body(transactionId, select.blob(column: 1))
            expected += 1
        }
        guard expected > through else {
            throw JournalError(
                .invalidDatabase, "edits \(expected)...\(through) are missing (the journal acknowledged up to \(through))",
                path: path)
        }
    }

    /// Holds the write connection while `body` runs, stalling the writer thread (tests use this to
    /// make submissions pile up).
    func locked<T, Failure: Error>(_ body: () throws(Failure) -> T) throws(Failure) -> T {
        lock.lock()
        defer { lock.unlock() }
        precondition(!isClosed, "journal database used after close")
        return try body()
    }

    /// Caps the database size in pages, so tests can make commits fail as on a full disk.
    func setMaximumPageCount(_ pages: Int) throws(JournalError) {
        try locked { () throws(JournalError) in try connection.execute("PRAGMA max_page_count = \(pages)") }
    }
}
