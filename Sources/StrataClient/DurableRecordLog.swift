import Foundation
import Logging
import StrataCore
import Synchronization

/// The durable half of a service's state (docs/architecture.md): records its value type
/// returned, made durable in a `DFSStateStore` in the order they were applied, many per append
/// (one hsync), with a snapshot now and then. The master, the launcher and the cron service keep
/// their state through one of these.
///
/// The shell applies an event to its state under its state lock and calls `enqueue` there, so
/// tickets follow the order of application; it then waits for its ticket with `waitDurable`
/// before it performs the event's actions. `run` is the writer. Records are JSON, one per log
/// record; a snapshot is the JSON array of records that rebuilds the whole state.
public final class DurableRecordLog<Record: Codable & Sendable>: Sendable {
    /// What a snapshot holds: the records that rebuild the state, and the ticket of the last
    /// record applied to it (`appliedCount` read under the same state lock).
    public typealias Snapshot = (records: [Record], through: UInt64)

    let store: DFSStateStore?
    let service: String
    let logger: Logger
    let snapshotEveryRecords: Int
    let failure: @Sendable (String) -> any Error
    /// Records applied and not yet taken by the writer (the first has ticket `taken + 1`).
    private let pending = Mutex<Pending>(Pending())
    private let queued = EventCounter()
    private let madeDurable = EventCounter()
    /// A snapshot is being encoded and written in the background: no other starts meanwhile.
    private let snapshotInFlight = Mutex(false)

    struct Pending {
        var records: [Record] = []
        var applied: UInt64 = 0
        var taken: UInt64 = 0
        var durable: UInt64 = 0
        var failure: String?
    }

    /// `store` nil keeps nothing (every ticket is durable at once). `snapshotEveryRecords` 0
    /// never snapshots. `failure` makes the error `waitDurable` throws once the store failed.
    public init(
        store: DFSStateStore?, service: String, logger: Logger, snapshotEveryRecords: Int = 0,
        failure: @escaping @Sendable (String) -> any Error
    ) {
        self.store = store
        self.service = service
        self.logger = logger
        self.snapshotEveryRecords = snapshotEveryRecords
        self.failure = failure
    }

    /// Takes the store over and returns the records to replay: the snapshot's, then those after.
    public func open() async throws -> [Record] {
        guard let store else { return [] }
        let (snapshot, records) = try await store.open()
        let decoder = JSONDecoder()
        var replayed: [Record] = []
        if let snapshot { replayed += try decoder.decode([Record].self, from: Data(snapshot)) }
        for bytes in records { replayed.append(try decoder.decode(Record.self, from: Data(bytes))) }
        return replayed
    }

    /// Queues records applied just now (call it under the state lock) and returns the ticket
    /// to wait for: durable once `waitDurable(ticket)` returns.
    public func enqueue(_ records: [Record]) -> UInt64 {
        guard !records.isEmpty else { return pending.withLock { $0.applied } }
        let ticket = pending.withLock { pending -> UInt64 in
            pending.records += records
            pending.applied += UInt64(records.count)
            return pending.applied
        }
        queued.signal()
        return ticket
    }

    /// The ticket of the last record queued: what a snapshot taken now under the state lock
    /// covers.
    public var appliedCount: UInt64 { pending.withLock { $0.applied } }

    /// Returns once every record up to `ticket` is durable; throws once the store has failed
    /// (the service then accepts no more changes).
    public func waitDurable(_ ticket: UInt64) async throws {
        while true {
            let seen = madeDurable.count
            let (durable, failed) = pending.withLock { ($0.durable, $0.failure) }
            if let failed { throw failure("the \(service)'s log on the DFS failed: \(failed)") }
            if durable >= ticket || store == nil { return }
            await madeDurable.wait(after: seen)
            try Task.checkCancellation()
        }
    }

    /// Writes queued records in order until cancelled. `snapshot` is asked, under the state
    /// lock, for the state as records when `snapshotEveryRecords` records were written since the
    /// last one. The records it covers are written to the log first, the log is finished there,
    /// and the snapshot is encoded and written in the background while records go on to the next
    /// log: a snapshot never holds up a record's durability.
    public func run(snapshot: @Sendable () -> Snapshot) async {
        let encoder = JSONEncoder()
        var sinceSnapshot = 0
        while !Task.isCancelled {
            let seen = queued.count
            let batch = pending.withLock { pending -> [Record] in
                defer {
                    pending.taken += UInt64(pending.records.count)
                    pending.records = []
                }
                return pending.records
            }
            if batch.isEmpty {
                await queued.wait(after: seen)
                continue
            }
            do {
                if let store {
                    try await store.append(try batch.map { Array(try encoder.encode($0)) })
                    sinceSnapshot += batch.count
                }
                pending.withLock { $0.durable += UInt64(batch.count) }
                if let store, snapshotEveryRecords > 0, sinceSnapshot >= snapshotEveryRecords, !snapshotInFlight.withLock({ $0 }) {
                    try await startSnapshot(snapshot(), store: store, encoder: encoder)
                    sinceSnapshot = 0
                }
            } catch {
                logger.error("the \(service)'s log failed; it accepts no more changes", metadata: ["error": "\(error)"])
                pending.withLock { $0.failure = "\(error)" }
            }
            madeDurable.signal()
        }
    }

    /// Logs the records `taken` covers that are not written yet (applied between the last
    /// batch and the snapshot), finishes the log there, and writes the snapshot in a task of its
    /// own. A snapshot that fails is only a warning: the logs still hold every record.
    private func startSnapshot(_ taken: Snapshot, store: DFSStateStore, encoder: JSONEncoder) async throws {
        let covered = pending.withLock { pending -> [Record] in
            let count = taken.through > pending.taken ? Int(min(taken.through - pending.taken, UInt64(pending.records.count))) : 0
            let records = Array(pending.records.prefix(count))
            pending.records.removeFirst(count)
            pending.taken += UInt64(count)
            return records
        }
        if !covered.isEmpty {
            try await store.append(try covered.map { Array(try encoder.encode($0)) })
            pending.withLock { $0.durable += UInt64(covered.count) }
        }
        let start = try await store.beginSnapshot()
        snapshotInFlight.withLock { $0 = true }
        Task.detached { [self] in
            defer { snapshotInFlight.withLock { $0 = false } }
            let bytes: [UInt8]
            do {
                bytes = Array(try JSONEncoder().encode(taken.records))
            } catch {
                await store.abandonSnapshot(start)
                logger.warning("the \(service)'s state could not be encoded for a snapshot; its log holds every record", metadata: ["error": "\(error)"])
                return
            }
            do {
                try await store.finishSnapshot(start, bytes)
            } catch {
                logger.warning("the \(service)'s snapshot was not written; its log holds every record", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Runs `event` on the state under its lock (with `now` and the wall time), queues the
    /// records it returns in the order applied, calls `whileLocked` with them and their ticket
    /// still under the lock, and returns once they are durable: the step every shell takes
    /// before it performs an event's actions.
    public func apply<State: Sendable, Outcome: RecordedOutcome & Sendable, Result: Sendable>(
        to state: borrowing Mutex<State>, now: MonotonicInstant, wallTimeMs: Int64,
        whileLocked: (Outcome, UInt64) -> Void = { _, _ in },
        _ event: (inout State, MonotonicInstant, Int64) throws -> (Outcome, Result)
    ) async throws -> (outcome: Outcome, result: Result) where Outcome.Record == Record {
        let (outcome, result, ticket) = try state.withLock { state in
            let (outcome, result) = try event(&state, now, wallTimeMs)
            let ticket = enqueue(outcome.records)
            whileLocked(outcome, ticket)
            return (outcome, result, ticket)
        }
        if !outcome.records.isEmpty { try await waitDurable(ticket) }
        return (outcome, result)
    }

    public func close() async throws {
        try await store?.close()
    }
}

/// What an event on a service's state returns: records to make durable (then actions, which the
/// shell performs once they are).
public protocol RecordedOutcome {
    associatedtype Record
    var records: [Record] { get }
}
