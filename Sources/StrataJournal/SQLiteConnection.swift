import CSQLite

/// One SQLite connection, with errors that carry the database path and SQLite's message.
///
/// Not thread-safe: the connection is opened in SQLite's multi-thread mode, so each connection is
/// used by one thread at a time (the journal guards its write connection with a lock).
final class SQLiteConnection {
    let path: String
    private let handle: OpaquePointer
    private var isClosed = false

    init(path: String, readOnly: Bool) throws(JournalError) {
        var opened: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &opened, flags, nil)
        guard status == SQLITE_OK, let opened else {
            let message = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            if let opened { sqlite3_close_v2(opened) }
            throw JournalError(.sqlite, "cannot open database: \(message)", path: path, sqliteCode: status)
        }
        handle = opened
        self.path = path
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, JournalLimits.busyTimeoutMilliseconds)
    }

    deinit { close() }

    /// Closes the connection; statements must have been finalized.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        sqlite3_close_v2(handle)
    }

    /// The error for `status`, with SQLite's message for the last failure on this connection.
    func error(_ status: Int32, _ action: String) -> JournalError {
        JournalError(.sqlite, "\(action): \(String(cString: sqlite3_errmsg(handle)))", path: path, sqliteCode: status)
    }

    /// Runs one or more statements that return no rows we need.
    func execute(_ sql: String) throws(JournalError) {
        let status = sqlite3_exec(handle, sql, nil, nil, nil)
        if status != SQLITE_OK { throw error(status, sql) }
    }

    func prepare(_ sql: String) throws(JournalError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status, "prepare \(sql)") }
        return SQLiteStatement(connection: self, handle: statement, sql: sql)
    }

    /// The single text value `sql` returns (for pragmas such as `journal_mode`).
    func text(_ sql: String) throws(JournalError) -> String? {
        let statement = try prepare(sql)
        defer { statement.finalize() }
        guard try statement.step() else { return nil }
        return statement.text(column: 0)
    }

    /// The single integer value `sql` returns, or nil for no row or SQL NULL.
    func integer(_ sql: String) throws(JournalError) -> Int64? {
        let statement = try prepare(sql)
        defer { statement.finalize() }
        guard try statement.step(), !statement.isNull(column: 0) else { return nil }
        return statement.integer(column: 0)
    }
}

/// A prepared statement, reused across executions with `reset()`.
final class SQLiteStatement {
    private let connection: SQLiteConnection
    private let handle: OpaquePointer
    private let sql: String
    private var isFinalized = false

    fileprivate init(connection: SQLiteConnection, handle: OpaquePointer, sql: String) {
        self.connection = connection
        self.handle = handle
        self.sql = sql
    }

    deinit { finalize() }

    func finalize() {
        guard !isFinalized else { return }
        isFinalized = true
        sqlite3_finalize(handle)
    }

    func bind(_ value: Int64, at index: Int32) throws(JournalError) {
        let status = sqlite3_bind_int64(handle, index, value)
        if status != SQLITE_OK { throw connection.error(status, "bind \(sql)") }
    }

    /// Binds `bytes` without copying them: the caller must step the statement before the buffer
    /// goes away (SQLITE_STATIC).
    func bindBlob(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws(JournalError) {
        // A NULL pointer binds SQL NULL, not an empty blob, so empty records take the zeroblob path.
        let status =
            bytes.isEmpty
            ? sqlite3_bind_zeroblob(handle, index, 0)
            : sqlite3_bind_blob64(handle, index, bytes.baseAddress, sqlite3_uint64(bytes.count), nil)
        if status != SQLITE_OK { throw connection.error(status, "bind \(sql)") }
    }

    /// Steps once: true when a row is available, false when the statement is done.
    func step() throws(JournalError) -> Bool {
        let status = sqlite3_step(handle)
        switch status {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(status, sql)
        }
    }

    /// Makes the statement ready to run again, dropping bound values.
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func isNull(column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func integer(column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func text(column: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, column) else { return nil }
        return String(cString: text)
    }

    func blob(column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let bytes = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }
}
