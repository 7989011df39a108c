import Foundation
@testable import StrataJournal

/// A scratch directory removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "strata-journal-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// The bytes of `record-<index>`, as the torture command writes them.
func recordBytes(_ index: Int) -> [UInt8] { Array("record-\(index)".utf8) }

/// Every edit after `after`, in order.
func edits(of journal: Journal, after: UInt64 = 0) throws -> [(UInt64, [UInt8])] {
    var result: [(UInt64, [UInt8])] = []
    try journal.forEachEdit(after: after) { result.append(($0, $1)) }
    return result
}

/// Every record of the newest checkpoint image, and its id.
func checkpointRecords(of journal: Journal) throws -> (UInt64, [[UInt8]]) {
    var records: [[UInt8]] = []
    let transactionId = try journal.readCheckpoint { records.append($0) }
    return (transactionId, records)
}

/// Submits `records` from the calling thread and waits until they are durable; returns their ids.
@discardableResult
func submitAndFlush(_ journal: Journal, _ records: [[UInt8]]) throws -> [UInt64] {
    var ids: [UInt64] = []
    for record in records {
        ids.append(try journal.submit(record) { _ in })
    }
    try journal.flush()
    return ids
}

/// Runs one SQL statement returning an integer against the journal database (for checking what
/// is on disk independently of the journal's own reading code).
func queryInteger(_ databasePath: String, _ sql: String) throws -> Int64? {
    let connection = try SQLiteConnection(path: databasePath, readOnly: false)
    defer { connection.close() }
    return try connection.integer(sql)
}

func fileBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeFileBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// A thread-safe box for values produced by callbacks on the writer thread.
final class Collected<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: Value

    init(_ value: Value) { storage = value }

    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&storage) } }

    var value: Value { lock.withLock { storage } }
}

/// Holds commits (through a journal's commit hook) until the test opens it, as a disk that hangs.
final class CommitGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false

    func passWhenOpen() {
        condition.lock()
        while !isOpen { condition.wait() }
        condition.unlock()
    }

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }
}
