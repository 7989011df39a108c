import Foundation

/// An edit record waiting for the writer thread.
struct PendingRecord {
    let transactionId: UInt64
    let bytes: [UInt8]
    let onDurable: @Sendable (Result<UInt64, JournalError>) -> Void
}

/// Group commit: submitters queue records and get transaction ids at once; one dedicated writer
/// thread repeatedly takes everything queued, commits it as one batch, then runs the batch's
/// callbacks. Records submitted while a batch is being committed form the next batch, so under
/// load one fsync covers many edits, and with no load a lone edit is committed immediately.
///
/// The writer is a `Thread` rather than a task because a commit blocks in `fsync`; blocking the
/// cooperative pool's few threads would stall unrelated async work.
///
/// Once a commit fails the committer is failed for good: that batch's callbacks and every later
/// one get an error, and `submit` throws. Nothing is ever reported durable that was not committed.
final class GroupCommitter: @unchecked Sendable {
    typealias Commit = ([PendingRecord]) throws(JournalError) -> Void

    private let commit: Commit
    private let maximumRecords: Int
    private let maximumBytes: Int
    /// Guards everything below. One condition serves the writer (waiting for work), submitters
    /// (waiting for room) and flushers (waiting for durability); every change broadcasts, but a
    /// submit broadcasts only when it makes the queue non-empty, so the common path stays cheap.
    private let condition = NSCondition()
    private var queue: [PendingRecord] = []
    /// Records (and their bytes) submitted and not yet finished: queued plus the batch in commit.
    private var unfinishedRecords = 0
    private var unfinishedBytes = 0
    private var nextTransactionId: UInt64
    private var durableTransactionId: UInt64
    /// The last id whose callback has run (with success or an error).
    private var deliveredTransactionId: UInt64
    private var failure: JournalError?
    private var isClosing = false
    private var writerThread: Thread?
    private var writerExited = false
    private var commits: UInt64 = 0
    /// Room reserved by `reserveRoom` and not yet used by a submission: counted as queued records.
    private var reservedRecords = 0
    /// Tasks waiting in `reserveRoom`, woken (to check again) whenever room may have freed.
    private var roomWaiters: [CheckedContinuation<Void, Never>] = []
    /// Submitters blocked in `submit` for room (the async waiters are `roomWaiters`).
    private var blockedSubmitters = 0
    /// Runs before each commit (tests stall the journal with it).
    private var commitHook: (@Sendable () -> Void)?

    /// - Parameter commit: makes a batch durable or throws; called on the writer thread only.
    init(lastDurableTransactionId: UInt64, maximumRecords: Int, maximumBytes: Int, commit: @escaping Commit) {
        precondition(maximumRecords > 0 && maximumBytes > 0)
        self.commit = commit
        self.maximumRecords = maximumRecords
        self.maximumBytes = maximumBytes
        self.nextTransactionId = lastDurableTransactionId + 1
        self.durableTransactionId = lastDurableTransactionId
        self.deliveredTransactionId = lastDurableTransactionId
    }

    func start() {
        let thread = Thread { [self] in runWriter() }
        thread.name = "strata-journal-writer"
        condition.lock()
        writerThread = thread
        condition.unlock()
        thread.start()
    }

    var lastDurableTransactionId: UInt64 { locked { durableTransactionId } }

    var lastSubmittedTransactionId: UInt64 { locked { nextTransactionId - 1 } }

    var commitCount: UInt64 { locked { commits } }

    /// Submitters waiting for room right now, blocked or suspended (tests wait for this event
    /// rather than for a time).
    var waitingForRoom: Int { locked { blockedSubmitters + roomWaiters.count } }

    func setCommitHook(_ hook: (@Sendable () -> Void)?) {
        locked { commitHook = hook }
    }

    /// Queues `record` and returns its transaction id. Without a reservation it waits while the
    /// queue is at its bound; with one (`reserved`, room taken by `reserveRoom`) it never waits,
    /// and the first such record uses the reserved room. Throws (and never calls `onDurable`) if
    /// the committer has failed or is closing.
    func submit(
        _ record: [UInt8], reserved: Reservation? = nil, onDurable: @escaping @Sendable (Result<UInt64, JournalError>) -> Void
    ) throws(JournalError) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let failure { throw Self.failedError(failure) }
            if isClosing { throw JournalError(.closed, "cannot submit an edit to a closed journal") }
            if let reserved {
                if reserved.take() { reservedRecords -= 1 }
                break
            }
            if hasRoom(forBytes: record.count) { break }
            blockedSubmitters += 1
            condition.wait()
            blockedSubmitters -= 1
        }
        let transactionId = nextTransactionId
        nextTransactionId += 1
        queue.append(PendingRecord(transactionId: transactionId, bytes: record, onDurable: onDurable))
        unfinishedRecords += 1
        unfinishedBytes += record.count
        if queue.count == 1 { condition.broadcast() }
        return transactionId
    }

    /// An empty queue always admits one record, so a record near the byte bound cannot wait forever.
    /// Call with the condition locked.
    private func hasRoom(forBytes bytes: Int) -> Bool {
        let records = unfinishedRecords + reservedRecords
        return records == 0 || (records < maximumRecords && unfinishedBytes + bytes <= maximumBytes)
    }

    /// Room for one record in the queue, taken by `reserveRoom` before its owner takes the lock
    /// under which it submits, and used by the owner's first submission (or given back when the
    /// reservation is dropped unused).
    final class Reservation: @unchecked Sendable {
        private let lock = NSLock()
        private var held = true
        private weak var committer: GroupCommitter?

        init(committer: GroupCommitter) {
            self.committer = committer
        }

        /// Takes the reserved room for a submission; false once it was taken.
        fileprivate func take() -> Bool {
            lock.withLock {
                defer { held = false }
                return held
            }
        }

        deinit {
            if take() { committer?.releaseReservedRoom() }
        }
    }

    /// Waits, suspending the task rather than blocking its thread, until the queue has room for a
    /// record, and reserves it. Throws if the committer has failed or is closing.
    func reserveRoom() async throws(JournalError) -> Reservation {
        while true {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                condition.lock()
                let ready = failure != nil || isClosing || hasRoom(forBytes: 0)
                if !ready { roomWaiters.append(waiter) }
                condition.unlock()
                if ready { waiter.resume() }
            }
            if let reservation = try takeRoomIfFree() { return reservation }
        }
    }

    /// Reserves room if there is some; throws if the committer has failed or is closing.
    private func takeRoomIfFree() throws(JournalError) -> Reservation? {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw Self.failedError(failure) }
        if isClosing { throw JournalError(.closed, "cannot submit an edit to a closed journal") }
        guard hasRoom(forBytes: 0) else { return nil }
        reservedRecords += 1
        return Reservation(committer: self)
    }

    fileprivate func releaseReservedRoom() {
        condition.lock()
        reservedRecords -= 1
        let waiters = takeRoomWaiters()
        condition.broadcast()
        condition.unlock()
        for waiter in waiters { waiter.resume() }
    }

    /// Call with the condition locked; resume the waiters after unlocking.
    private func takeRoomWaiters() -> [CheckedContinuation<Void, Never>] {
        defer { roomWaiters = [] }
        return roomWaiters
    }

    /// Waits until every edit up to `transactionId` is durable and its callback has run (so a
    /// caller that flushes at shutdown knows every client was answered); throws if one of those
    /// edits failed to commit.
    func waitUntilDurable(_ transactionId: UInt64) throws(JournalError) {
        condition.lock()
        defer { condition.unlock() }
        precondition(transactionId < nextTransactionId, "waiting for transaction \(transactionId), never submitted")
        precondition(Thread.current !== writerThread, "waiting for durability on the journal writer thread would deadlock")
        // The writer delivers every record (an error, once failed), so this wait always ends.
        while deliveredTransactionId < transactionId { condition.wait() }
        if durableTransactionId < transactionId {
            throw Self.failedError(failure ?? JournalError(.failed, "transaction \(transactionId) was not committed"))
        }
    }

    /// Waits until everything submitted so far is durable and acknowledged.
    func flush() throws(JournalError) {
        try waitUntilDurable(lastSubmittedTransactionId)
    }

    /// Stops accepting records, lets the writer commit what is queued, and waits for it to exit.
    /// Submitters waiting for room get a `.closed` error.
    func close() {
        condition.lock()
        defer { condition.unlock() }
        precondition(Thread.current !== writerThread, "closing the journal from its own writer thread would deadlock")
        isClosing = true
        condition.broadcast()
        let waiters = takeRoomWaiters()
        condition.unlock()
        for waiter in waiters { waiter.resume() }
        condition.lock()
        while writerThread != nil && !writerExited { condition.wait() }
    }

    private func runWriter() {
        while true {
            condition.lock()
            while queue.isEmpty && !isClosing { condition.wait() }
            if queue.isEmpty {
                writerExited = true
                condition.broadcast()
                condition.unlock()
                return
            }
            var batch: [PendingRecord] = []
            swap(&batch, &queue)
            let earlierFailure = failure
            let hook = commitHook
            condition.unlock()
            hook?()

            let outcome: JournalError?
            if let earlierFailure {
                outcome = Self.failedError(earlierFailure)
            } else {
                do {
                    try commit(batch)
                    outcome = nil
                } catch {
                    outcome = error
                }
            }

            condition.lock()
            unfinishedRecords -= batch.count
            unfinishedBytes -= batch.reduce(0) { $0 + $1.bytes.count }
            if let outcome {
                if failure == nil { failure = outcome }
            } else {
                durableTransactionId = batch[batch.count - 1].transactionId
                commits += 1
            }
            condition.broadcast()
            let roomWaiters = takeRoomWaiters()
            condition.unlock()
            for waiter in roomWaiters { waiter.resume() }

            // Callbacks run after the room is released, so a callback that waits for a lock held
            // by a submitter blocked on a full queue cannot deadlock the two.
            for record in batch {
                if let outcome {
                    record.onDurable(.failure(outcome))
                } else {
                    record.onDurable(.success(record.transactionId))
                }
            }
            condition.lock()
            deliveredTransactionId = batch[batch.count - 1].transactionId
            condition.broadcast()
            condition.unlock()
        }
    }

    private static func failedError(_ cause: JournalError) -> JournalError {
        if cause.kind == .failed { return cause }
        return JournalError(.failed, "an earlier commit failed, so nothing more is accepted: \(cause)", path: cause.path)
    }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }
}
