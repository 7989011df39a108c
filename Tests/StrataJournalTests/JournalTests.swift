import Foundation
import Testing

@testable import StrataJournal

/// Appending, group commit, back-pressure, failures and the database's format checks, all on
/// real SQLite files in a temporary directory.
@Suite struct JournalTests {
    @Test func newJournalIsEmpty() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        defer { journal.close() }
        #expect(journal.lastDurableTransactionId == 0)
        #expect(journal.checkpointTransactionId == 0)
        #expect(try edits(of: journal).isEmpty)
        #expect(try checkpointRecords(of: journal).0 == 0)
        try journal.flush()
    }

    @Test func concurrentAppendsGetConsecutiveIdsAndReplayInOrder() async throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        let tasks = 32
        let perTask = 100
        let acknowledged = try await withThrowingTaskGroup(of: [(UInt64, [UInt8])].self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var mine: [(UInt64, [UInt8])] = []
                    for index in 0..<perTask {
                        let record = recordBytes(task * perTask + index)
                        mine.append((try await journal.append(record), record))
                    }
                    return mine
                }
            }
            var all: [(UInt64, [UInt8])] = []
            for try await part in group { all += part }
            return all
        }
        let total = tasks * perTask
        #expect(acknowledged.count == total)
        #expect(Set(acknowledged.map(\.0)) == Set(1...UInt64(total)))
        #expect(journal.lastDurableTransactionId == UInt64(total))
        // Each task's appends finish in order, so its ids increase.
        journal.close()

        let reopened = try Journal(directory: directory.path)
        defer { reopened.close() }
        #expect(reopened.lastDurableTransactionId == UInt64(total))
        let replayed = try edits(of: reopened)
        #expect(replayed.map(\.0) == Array(1...UInt64(total)))
        let expected = Dictionary(uniqueKeysWithValues: acknowledged.map { ($0.0, $0.1) })
        #expect(replayed.allSatisfy { expected[$0.0] == $0.1 })
        // Ids continue after the last durable one.
        #expect(try reopened.submit([1, 2, 3]) { _ in } == UInt64(total) + 1)
    }

    @Test func callbacksReportIdsInSubmissionOrder() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        defer { journal.close() }
        let reported = Collected<[UInt64]>([])
        var returned: [UInt64] = []
        for index in 0..<1000 {
            returned.append(
                try journal.submit(recordBytes(index)) { result in
                    if case .success(let id) = result { reported.update { $0.append(id) } }
                })
        }
        try journal.flush()
        #expect(returned == Array(1...1000))
        #expect(reported.value == returned)
        #expect(journal.lastDurableTransactionId == 1000)
    }

    @Test func groupCommitBatchesWhatArrivesDuringACommit() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        defer { journal.close() }
        let count = 10_000
        // With commits held up, every submission has to wait for the same next batch.
        try journal.withCommitsPausedForTesting {
            for index in 0..<count { try journal.submit(recordBytes(index)) { _ in } }
        }
        try journal.flush()
        #expect(journal.commitCount <= 2)
        #expect(journal.lastDurableTransactionId == UInt64(count))
        #expect(try edits(of: journal).count == count)
    }

    @Test func groupCommitBatchesUnderLoad() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        defer { journal.close() }
        let count = 10_000
        let threads = 4
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<(count / threads) {
                // The lock stands for the name node's namespace lock.
                _ = lock.withLock { try? journal.submit(recordBytes(thread * count + index)) { _ in } }
            }
        }
        try journal.flush()
        #expect(journal.lastDurableTransactionId == UInt64(count))
        #expect(journal.commitCount * 10 < UInt64(count), "\(journal.commitCount) commits for \(count) records")
    }

    @Test func submitWaitsWhileTheQueueIsFull() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path, maximumQueuedRecords: 10)
        defer { journal.close() }
        let finished = Collected<UInt64?>(nil)
        try journal.withCommitsPausedForTesting {
            for index in 0..<10 { try journal.submit(recordBytes(index)) { _ in } }
            Thread.detachNewThread {
                let id = try? journal.submit(recordBytes(10)) { _ in }
                finished.update { $0 = id }
            }
            // Waits for the event (the submitter blocked for room), not for a time.
            let blocked = Date().addingTimeInterval(10)
            while journal.waitingForRoomForTesting == 0 && Date() < blocked { Thread.sleep(forTimeInterval: 0.001) }
            #expect(journal.waitingForRoomForTesting == 1)
            #expect(finished.value == nil, "the eleventh submit should wait for room")
        }
        let deadline = Date().addingTimeInterval(10)
        while finished.value == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(finished.value == 11)
        try journal.flush()
        #expect(journal.lastDurableTransactionId == 11)
    }

    @Test func reservingRoomSuspendsWhileTheQueueIsFullAndAReservedSubmitNeverWaits() async throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path, maximumQueuedRecords: 2)
        defer { journal.close() }
        let gate = CommitGate()
        journal.setCommitHookForTesting { gate.passWhenOpen() }
        // One change of three edits under one reservation: none of its submissions waits, though
        // the queue goes past its bound of two while no commit can finish.
        let reservation = try await journal.reserveRoom()
        for index in 0..<3 { try journal.submit(recordBytes(index), reservation: reservation) { _ in } }
        // The next change waits for room, suspended rather than blocking a thread.
        let waiter = Task { try await journal.reserveRoom() }
        while journal.waitingForRoomForTesting == 0 { await Task.yield() }
        #expect(journal.lastSubmittedTransactionId == 3)
        gate.open()
        let next = try await waiter.value
        try journal.submit(recordBytes(3), reservation: next) { _ in }
        try journal.flush()
        #expect(journal.lastDurableTransactionId == 4)
        #expect(journal.waitingForRoomForTesting == 0)
    }

    @Test func failedCommitFailsTheJournal() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        try submitAndFlush(journal, (0..<10).map(recordBytes))
        // As on a full disk: the database may not grow, so the next big batch cannot commit.
        try journal.setMaximumPageCountForTesting(1)
        let results = Collected<[Result<UInt64, JournalError>]>([])
        try journal.withCommitsPausedForTesting {
            for _ in 0..<5 {
                try journal.submit([UInt8](repeating: 7, count: 1 << 20)) { result in results.update { $0.append(result) } }
            }
        }
        #expect(throws: JournalError.self) { try journal.flush() }
        // The batch in flight and any after it all fail; none is reported durable.
        #expect(results.value.count == 5)
        for result in results.value {
            guard case .failure(let error) = result else {
                Issue.record("a record was reported durable after a failed commit")
                continue
            }
            #expect(error.kind == .sqlite || error.kind == .failed)
        }
        #expect(results.value.contains { if case .failure(let error) = $0 { error.kind == .sqlite } else { false } })
        #expect(journal.lastDurableTransactionId == 10)
        do {
            try journal.submit([1]) { _ in Issue.record("onDurable called for a refused submit") }
            Issue.record("submit after a failed commit should throw")
        } catch {
            #expect(error.kind == .failed)
            #expect(error.description.contains("database or disk is full"))
        }
        journal.close()

        let reopened = try Journal(directory: directory.path)
        defer { reopened.close() }
        #expect(reopened.lastDurableTransactionId == 10)
        #expect(try edits(of: reopened).map(\.0) == Array(1...10))
        #expect(try reopened.submit([1]) { _ in } == 11)
    }

    @Test func recordOverTheBoundIsRefused() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        defer { journal.close() }
        let largest = [UInt8](repeating: 1, count: JournalLimits.maximumRecordBytes)
        #expect(try submitAndFlush(journal, [largest, []]) == [1, 2])
        do {
            try journal.submit(largest + [0]) { _ in Issue.record("onDurable called for a refused record") }
            Issue.record("an oversized record was accepted")
        } catch {
            #expect(error.kind == .recordTooLarge)
            #expect(error.description.contains("\(JournalLimits.maximumRecordBytes + 1) bytes"))
        }
        // A refused record does not use up an id or fail the journal.
        #expect(try journal.submit([5]) { _ in } == 3)
        try journal.flush()
        let replayed = try edits(of: journal)
        #expect(replayed.map(\.1.count) == [JournalLimits.maximumRecordBytes, 0, 1])
    }

    @Test func unknownDatabaseVersionIsRefused() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        try submitAndFlush(journal, [[1]])
        let databasePath = journal.databasePath
        journal.close()
        _ = try queryInteger(databasePath, "UPDATE meta SET value = 99 WHERE key = 'format_version' RETURNING value")
        do {
            _ = try Journal(directory: directory.path)
            Issue.record("a journal with format version 99 was opened")
        } catch {
            #expect(error.kind == .unsupportedVersion)
            #expect(error.path == databasePath)
            #expect(error.description.contains("99"))
        }
    }

    @Test func foreignDatabaseIsRefused() throws {
        let directory = try TemporaryDirectory()
        let databasePath = directory.file(Journal.databaseFileName)
        _ = try queryInteger(databasePath, "CREATE TABLE other (x INTEGER)")
        #expect(throws: JournalError.self) { _ = try Journal(directory: directory.path) }
        try writeFileBytes(Array("this is not a database, just text long enough to fill a header....".utf8), to: databasePath)
        do {
            _ = try Journal(directory: directory.path)
            Issue.record("a text file was opened as a journal")
        } catch {
            #expect(error.kind == .sqlite)
            #expect(error.path == databasePath)
        }
    }

    @Test func directoryIsUsedByOneJournalAtATime() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        #expect(throws: JournalError.self) { _ = try Journal(directory: directory.path) }
        journal.close()
        // Closing releases the directory. (A process another test spawns at this moment holds a
        // copy of the lock's descriptor, and with it the lock, until its exec closes it: a
        // moment is allowed for that.)
        var again: Journal?
        var lastError: JournalError?
        for _ in 0..<100 where again == nil {
            do {
                again = try Journal(directory: directory.path)
            } catch {
                lastError = error
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        #expect(again != nil, "the directory stayed in use after close: \(String(describing: lastError))")
        again?.close()
    }

    @Test func missingDirectoryIsAnError() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: JournalError.self) { _ = try Journal(directory: directory.file("absent")) }
    }

    @Test func closedJournalRefusesWork() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        let id = try journal.submit([1]) { _ in }
        journal.close()
        journal.close()
        #expect(id == 1)
        do {
            try journal.submit([2]) { _ in }
            Issue.record("submit after close should throw")
        } catch {
            #expect(error.kind == .closed)
        }
        #expect(throws: JournalError.self) { try journal.forEachEdit(after: 0) { _, _ in } }
        // What was submitted before close was committed by close.
        let reopened = try Journal(directory: directory.path)
        defer { reopened.close() }
        #expect(try edits(of: reopened).map(\.1) == [[1]])
    }
}
