import Foundation
import Logging
import StrataTestKit
import Synchronization
import Testing

@testable import StrataClient

/// A service's records made durable in order through `DurableRecordLog`, with snapshots, against
/// a real name node and data nodes: what is replayed is exactly what was applied.
@Suite(.serialized) struct DurableRecordLogTests {
    static let directory = "/system/test-records"

    static func makeLog(_ client: DFSClient, snapshotEvery: Int) -> DurableRecordLog<Int> {
        var logger = Logger(label: "strata.record-log.test")
        logger.logLevel = .warning
        return DurableRecordLog(
            store: DFSStateStore(client: client, directory: directory, logger: logger), service: "test", logger: logger,
            snapshotEveryRecords: snapshotEvery, failure: { TestFailure(message: $0) })
    }

    struct TestFailure: Error { var message: String }

    /// A service's state: the records applied so far, behind its lock.
    final class State: Sendable {
        let records = Mutex<[Int]>([])
        func withLock<Result>(_ body: (inout [Int]) -> Result) -> Result { records.withLock { body(&$0) } }
    }

    final class Ticket: Sendable {
        let value = Mutex<UInt64?>(nil)
    }

    /// Applies `records` to `state` and queues them under the state lock, as a shell's `handle`
    /// does; returns the ticket.
    static func apply(_ records: [Int], _ state: State, _ log: DurableRecordLog<Int>) -> UInt64 {
        state.withLock { state in
            state += records
            return log.enqueue(records)
        }
    }

    @Test func concurrentEventsReplayInTheOrderApplied() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let state = State()
                let log = Self.makeLog(client, snapshotEvery: 7)
                #expect(try await log.open().isEmpty)
                let writer = Task { await log.run { state.withLock { ($0, log.appliedCount) } } }
                try await withThrowingTaskGroup(of: Void.self) { events in
                    for event in 0..<60 {
                        events.addTask {
                            let ticket = Self.apply(event % 3 == 0 ? [event * 10, event * 10 + 1] : [event * 10], state, log)
                            try await log.waitDurable(ticket)
                        }
                    }
                    try await events.waitForAll()
                }
                writer.cancel()
                await writer.value
                try await log.close()

                let reopened = Self.makeLog(client, snapshotEvery: 7)
                let replayed = try await reopened.open()
                #expect(replayed == state.withLock { $0 })
                #expect(replayed.count == 80)
                try await reopened.close()
            }
        }
    }

    @Test func recordsAppliedWhileTheSnapshotIsTakenAreNotLoggedTwice() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let state = State()
                let log = Self.makeLog(client, snapshotEvery: 2)
                _ = try await log.open()
                let lateTicket = Ticket()
                // The snapshot is taken after one more event was applied (its record still
                // queued): the snapshot covers it, so it is not appended after it again.
                let writer = Task {
                    await log.run {
                        state.withLock { state in
                            if lateTicket.value.withLock({ $0 }) == nil {
                                state.append(99)
                                lateTicket.value.withLock { $0 = log.enqueue([99]) }
                            }
                            return (state, log.appliedCount)
                        }
                    }
                }
                try await log.waitDurable(Self.apply([1, 2], state, log))
                let late = try #require(lateTicket.value.withLock { $0 })
                try await log.waitDurable(late)
                try await log.waitDurable(Self.apply([3], state, log))
                writer.cancel()
                await writer.value
                try await log.close()

                let reopened = Self.makeLog(client, snapshotEvery: 2)
                #expect(try await reopened.open() == [1, 2, 99, 3])
                try await reopened.close()
            }
        }
    }
}
