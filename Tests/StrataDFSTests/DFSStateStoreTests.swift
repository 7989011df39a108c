import Foundation
import Logging
import StrataTestKit
import Testing

@testable import StrataClient

/// A service's state on the DFS: a snapshot plus an append-only log, replayed on open, against
/// a real name node and data nodes.
@Suite(.serialized) struct DFSStateStoreTests {
    static let directory = "/system/test"

    static func configure(_ options: inout LocalCluster.Options) {
        options.rawFrameSizeBytes = 4096
        // Lease recovery reaches a data node with its next heartbeat.
        options.heartbeatIntervalMs = 100
    }

    static func store(_ client: DFSClient, _ directory: String = Self.directory) -> DFSStateStore {
        var logger = Logger(label: "strata.state-store.test")
        logger.logLevel = .warning
        return DFSStateStore(client: client, directory: directory, logger: logger)
    }

    static func record(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The names in the store's directory, sorted.
    static func names(_ client: DFSClient, _ directory: String = Self.directory) async throws -> [String] {
        try await client.list(directory).map { ($0.path as NSString).lastPathComponent }.sorted()
    }

    static func logName(_ sequence: UInt64) -> String { DFSStateStoreFormat.FileName.log(sequence).name }
    static func snapshotName(_ sequence: UInt64) -> String { DFSStateStoreFormat.FileName.snapshot(sequence).name }

    /// Expects `body` to fail with a `DFSStateStoreError` of `kind`; returns it.
    @discardableResult
    static func expectStoreError(
        _ kind: DFSStateStoreError.Kind, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async -> DFSStateStoreError? {
        do {
            try await body()
            Issue.record("\(what): succeeded, expected \(kind)", sourceLocation: sourceLocation)
        } catch let error as DFSStateStoreError {
            #expect(error.kind == kind, "\(what): \(error)", sourceLocation: sourceLocation)
            return error
        } catch {
            Issue.record("\(what): failed with \(error), expected a DFSStateStoreError", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test func recordsAndSnapshotSurviveCloseAndReopen() async throws {
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { client in
                let first = Self.store(client)
                let empty = try await first.open()
                #expect(empty.snapshot == nil)
                #expect(empty.records.isEmpty)
                try await first.append([Self.record("a"), Self.record("b")])
                try await first.append([[]])  // an empty record is a record
                try await first.append([Self.record("c")])
                #expect(await first.recordsSinceSnapshot == 4)
                try await first.close()
                await Self.expectStoreError(.notOpen, "append after close") { try await first.append([Self.record("late")]) }

                let second = Self.store(client)
                let replayed = try await second.open()
                #expect(replayed.snapshot == nil)
                #expect(replayed.records == [Self.record("a"), Self.record("b"), [], Self.record("c")])
                #expect(await second.recordsSinceSnapshot == 4)
                try await second.writeSnapshot(Self.record("state after c"))
                #expect(await second.recordsSinceSnapshot == 0)
                try await second.append([Self.record("d")])
                try await second.close()

                // The same store object opens again, as a service does after a failure.
                let reopened = try await second.open()
                #expect(reopened.snapshot == Self.record("state after c"))
                #expect(reopened.records == [Self.record("d")])
                #expect(await second.recordsSinceSnapshot == 1)
                try await second.close()
            }
        }
    }

    /// A writer that dies without closing: a second client takes over and gets every record
    /// whose append returned.
    @Test func reopenAfterACrashKeepsEveryAcknowledgedRecord() async throws {
        try await withCluster(Self.configure) { cluster in
            let crashed = cluster.client()
            let store = Self.store(crashed)
            _ = try await store.open()
            var acknowledged: [[UInt8]] = []
            for index in 0..<20 {
                let batch = (0..<(index % 3 + 1)).map { Self.record("record \(index).\($0)") }
                try await store.append(batch)
                acknowledged += batch
            }
            try await store.writeSnapshot(Self.record("state of \(acknowledged.count) records"))
            var after: [[UInt8]] = []
            for index in 0..<7 {
                let record = randomBytes(3_000 + index * 1_000, seed: UInt64(index))
                try await store.append([record])
                after.append(record)
            }
            // The process dies: its client stops (no more lease renewals), the store and its
            // log are never closed.
            let crashedLog = try #require(await store.currentLogPath)
            await crashed.close()

            try await withClient(cluster) { client in
                #expect(try await client.status(crashedLog)?.underConstruction == true)
                let successor = Self.store(client)
                let state = try await successor.open()
                #expect(state.snapshot == Self.record("state of \(acknowledged.count) records"))
                #expect(state.records == after)
                #expect(try await client.status(crashedLog)?.underConstruction == false, "the crashed writer's log was closed")
                let newLog = try #require(await successor.currentLogPath)
                #expect(newLog != crashedLog, "a new log, never the crashed writer's")
                try await successor.close()
            }
        }
    }

    /// A writer that is still running when another takes the directory over can append no more.
    @Test func theFirstWriterIsFencedOffByATakeover() async throws {
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { firstClient in
                let first = Self.store(firstClient)
                _ = try await first.open()
                try await first.append([Self.record("one"), Self.record("two")])

                try await withClient(cluster) { secondClient in
                    let second = Self.store(secondClient)
                    let state = try await second.open()
                    #expect(state.records == [Self.record("one"), Self.record("two")])

                    let fenced = await Self.expectStoreError(.writeFailed, "append by the fenced-off writer") {
                        try await first.append([Self.record("from the old writer")])
                    }
                    #expect(fenced?.path?.hasSuffix(Self.logName(1)) == true, "\(String(describing: fenced))")
                    // It stays stopped: nothing more is written through it.
                    await Self.expectStoreError(.writeFailed, "a later append by the fenced-off writer") {
                        try await first.append([Self.record("again")])
                    }
                    await Self.expectStoreError(.writeFailed, "a snapshot by the fenced-off writer") {
                        try await first.writeSnapshot(Self.record("stale state"))
                    }
                    try await second.append([Self.record("three")])
                    try await second.close()

                    let third = Self.store(secondClient)
                    let replayed = try await third.open()
                    #expect(replayed.snapshot == nil)
                    #expect(replayed.records == [Self.record("one"), Self.record("two"), Self.record("three")])
                    try await third.close()
                }
            }
        }
    }

    /// Many tasks append at once: every append that returned is durable, each task's records
    /// keep its order, each call's records stay together, and calls share hsyncs.
    @Test func concurrentAppendsAreAllDurableInOneOrder() async throws {
        let tasks = 40
        let appendsPerTask = 15
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { client in
                let store = Self.store(client)
                _ = try await store.open()
                let commitsBefore = await store.commitCount
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<tasks {
                        group.addTask {
                            for append in 0..<appendsPerTask {
                                try await store.append([Self.record("\(task) \(append) a"), Self.record("\(task) \(append) b")])
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let appends = tasks * appendsPerTask
                let commits = await store.commitCount - commitsBefore
                #expect(await store.recordsSinceSnapshot == 2 * appends)
                #expect(commits < appends / 2, "\(commits) hsyncs for \(appends) concurrent appends: no group commit")
                try await store.close()

                let records = try await Self.store(client).open().records.map { String(decoding: $0, as: UTF8.self) }
                #expect(records.count == 2 * appends)
                var next = [Int](repeating: 0, count: tasks)
                var index = 0
                while index + 1 < records.count {
                    let parts = records[index].split(separator: " ")
                    let task = try #require(Int(parts[0]))
                    #expect(parts[1] == "\(next[task])", "task \(task)'s appends out of order at record \(index)")
                    #expect(records[index + 1] == "\(parts[0]) \(parts[1]) b", "an append's records were split at record \(index)")
                    next[task] += 1
                    index += 2
                }
                #expect(next.allSatisfy { $0 == appendsPerTask })
            }
        }
    }

    /// A log that ends in a record cut short (its writer crashed mid-append) loses just that
    /// record, however far back in the sequence the log is.
    @Test(arguments: [4, 12, 15]) func aRecordCutShortAtTheEndOfALogIsDropped(_ keptBytes: Int) async throws {
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { client in
                let first = Self.store(client)
                _ = try await first.open()
                let written = (0..<3).map { Self.record("record \($0)") }
                for record in written { try await first.append([record]) }
                let log = try #require(await first.currentLogPath)
                try await first.close()

                // What a crash mid-append leaves: the first bytes of a framed record (part of its
                // header, or its header and part of its payload).
                var framed: [UInt8] = []
                DFSStateStoreFormat.appendRecord(Self.record("never acknowledged"), to: &framed)
                let stream = try await client.append(log)
                try await stream.write(Array(framed.prefix(keptBytes)))
                try await stream.close()

                let second = Self.store(client)
                #expect(try await second.open().records == written)
                try await second.append([Self.record("after the crash")])
                try await second.close()

                // The torn log is now the first of two: its end is still only its writer's end.
                let third = Self.store(client)
                #expect(try await third.open().records == written + [Self.record("after the crash")])
                try await third.close()
            }
        }
    }

    enum Damage: String, CaseIterable, Sendable {
        /// A byte of a record's payload in the middle of the log.
        case middlePayload
        /// A byte of a record's length in the middle of the log: it must not pass for a torn end.
        case middleLength
        /// A byte of the last record's payload: the record is whole, so this is damage too.
        case lastPayload
        /// A byte of the log header.
        case logHeader
        /// A byte of the snapshot's payload.
        case snapshotPayload
    }

    /// A flipped byte anywhere but a torn end is an error naming the file and the offset; the
    /// store opens nothing.
    @Test(arguments: Damage.allCases) func aFlippedByteIsAnErrorNamingTheFile(_ damage: Damage) async throws {
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { client in
                let first = Self.store(client)
                _ = try await first.open()
                try await first.writeSnapshot(Self.record("the state"))
                let records = (0..<5).map { Self.record("record number \($0)") }
                for record in records { try await first.append([record]) }
                let log = try #require(await first.currentLogPath)
                try await first.close()
                let snapshot = Self.directory + "/" + Self.snapshotName(2)

                // Record i starts after the header and the records before it.
                func recordOffset(_ index: Int) -> Int {
                    DFSStateStoreFormat.logHeaderBytes
                        + records[..<index].reduce(0) { $0 + DFSStateStoreFormat.recordHeaderBytes + $1.count }
                }
                let (file, flipAt, reportedOffset): (String, Int, Int) =
                    switch damage {
                    case .middlePayload: (log, recordOffset(2) + DFSStateStoreFormat.recordHeaderBytes + 3, recordOffset(2))
                    case .middleLength: (log, recordOffset(2), recordOffset(2))
                    case .lastPayload: (log, recordOffset(4) + DFSStateStoreFormat.recordHeaderBytes, recordOffset(4))
                    case .logHeader: (log, 9, 0)
                    case .snapshotPayload: (snapshot, DFSStateStoreFormat.snapshotHeaderBytes + 1, DFSStateStoreFormat.snapshotHeaderBytes)
                    }
                var bytes = try await client.readAll(file)
                bytes[flipAt] ^= 0x10
                try await put(client, file, bytes, overwrite: true)
                let namesBefore = try await Self.names(client)

                let second = Self.store(client)
                let error = await Self.expectStoreError(.damaged, "open with \(damage)") { _ = try await second.open() }
                #expect(error?.path == file)
                #expect(error?.offset == UInt64(reportedOffset))
                #expect(error.map { "\($0)" }?.contains(file) == true, "the message names the file: \(String(describing: error))")
                #expect(try await Self.names(client) == namesBefore, "a failed open changed the directory")
                await Self.expectStoreError(.notOpen, "append after a failed open") { try await second.append([Self.record("x")]) }
            }
        }
    }

    /// A snapshot replaces the log: the files before it are deleted, records after it go to a
    /// new log, and a reopen reads the snapshot and only those.
    @Test func aSnapshotReplacesTheOldLogAndFiles() async throws {
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { client in
                let store = Self.store(client)
                _ = try await store.open()
                #expect(try await Self.names(client) == [Self.logName(1)])
                try await store.append([Self.record("a"), Self.record("b")])
                try await store.writeSnapshot(Self.record("a b"))
                #expect(try await Self.names(client) == [Self.logName(2), Self.snapshotName(2)])
                try await store.append([Self.record("c")])
                try await store.writeSnapshot(Self.record("a b c"))
                #expect(try await Self.names(client) == [Self.logName(3), Self.snapshotName(3)])
                try await store.append([Self.record("d")])
                try await store.close()

                // A crash between writing a snapshot and deleting what it covers, and one before
                // its rename, leave files the next open removes.
                try await put(client, Self.directory + "/" + Self.logName(2), DFSStateStoreFormat.logHeader(sequence: 2))
                let crashed = cluster.client()
                do {
                    let temporary = try await crashed.create(Self.directory + "/" + DFSStateStoreFormat.FileName.temporarySnapshot(4).name)
                    try await temporary.write([1, 2, 3])
                    try await temporary.hflush()
                }
                await crashed.close()

                let reopened = Self.store(client)
                let state = try await reopened.open()
                #expect(state.snapshot == Self.record("a b c"))
                #expect(state.records == [Self.record("d")])
                #expect(try await Self.names(client) == [Self.logName(3), Self.logName(4), Self.snapshotName(3)])
                try await reopened.writeSnapshot(Self.record("a b c d"))
                #expect(try await Self.names(client) == [Self.logName(5), Self.snapshotName(5)])
                try await reopened.close()
                let last = try await Self.store(client).open()
                #expect(last.snapshot == Self.record("a b c d"))
                #expect(last.records.isEmpty)
            }
        }
    }

    /// Appends made while a snapshot is written go on at once, in the log after it: they are
    /// durable before the snapshot is in place, and what is on the DFS meanwhile (what a process
    /// taking over after a crash would read) is the older state plus every record.
    @Test func appendsDuringASnapshotGoOnInTheNextLog() async throws {
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { client in
                let store = Self.store(client)
                _ = try await store.open()
                try await store.append([Self.record("before")])
                // The snapshot is held after its temporary file is written until the appends
                // below have returned.
                let (started, startedSignal) = AsyncStream<Void>.makeStream()
                let (release, releaseSignal) = AsyncStream<Void>.makeStream()
                await store.setSnapshotHook {
                    startedSignal.yield()
                    for await _ in release { break }
                }
                let snapshot = randomBytes(300_000, seed: 7)
                let after = (0..<10).map { "after \($0)" }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await store.writeSnapshot(snapshot) }
                    for await _ in started { break }
                    for text in after { try await store.append([Self.record(text)]) }
                    #expect(await store.appendsWaitingForSnapshot == 0)
                    #expect(
                        try await Self.names(client)
                            == [Self.logName(1), Self.logName(2), DFSStateStoreFormat.FileName.temporarySnapshot(2).name])
                    let meanwhile = try await Self.store(client).readCurrent()
                    #expect(meanwhile.snapshot == nil)
                    #expect(meanwhile.records == ([Self.record("before")] + after.map(Self.record)))
                    releaseSignal.yield()
                    try await group.waitForAll()
                }
                #expect(await store.recordsSinceSnapshot == 10)
                #expect(try await Self.names(client) == [Self.logName(2), Self.snapshotName(2)])
                try await store.close()
                let state = try await Self.store(client).open()
                #expect(state.snapshot == snapshot)
                #expect(state.records == after.map(Self.record))
            }
        }
    }

    /// A snapshot that is begun and then abandoned (its state could not be encoded) leaves the
    /// state whole in the logs, and the next one is written as usual.
    @Test func anAbandonedSnapshotLeavesTheStateInTheLogs() async throws {
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { client in
                let store = Self.store(client)
                _ = try await store.open()
                try await store.append([Self.record("a")])
                let start = try await store.beginSnapshot()
                try await store.append([Self.record("b")])
                await store.abandonSnapshot(start)
                #expect(try await Self.names(client) == [Self.logName(1), Self.logName(2)])
                try await store.writeSnapshot(Self.record("a b"))
                try await store.append([Self.record("c")])
                try await store.close()
                let state = try await Self.store(client).open()
                #expect(state.snapshot == Self.record("a b"))
                #expect(state.records == [Self.record("c")])
            }
        }
    }

    @Test func aRecordOverTheBoundIsRefused() async throws {
        try await withCluster(Self.configure) { cluster in
            try await withClient(cluster) { client in
                let store = Self.store(client)
                _ = try await store.open()
                let bound = DFSStateStoreFormat.maximumRecordBytes
                let error = await Self.expectStoreError(.recordTooLarge, "a record one byte over the bound") {
                    try await store.append([Self.record("fine"), [UInt8](repeating: 1, count: bound + 1)])
                }
                #expect(error.map { "\($0)" }?.contains("\(bound + 1) bytes") == true, "\(String(describing: error))")
                // Nothing of the refused call was written, and the store goes on.
                try await store.append([Self.record("small")])
                try await store.append([[UInt8](repeating: 2, count: bound)])
                try await store.close()
                let state = try await Self.store(client).open()
                #expect(state.records.count == 2)
                #expect(state.records.first == Self.record("small"))
                #expect(state.records.last?.count == bound)
            }
        }
    }

    /// A data node of the log's pipeline stops between appends: the next append recovers the
    /// pipeline and succeeds (or fails with a clear error), and nothing acknowledged is lost.
    @Test func appendsGoOnWhenAPipelineDataNodeStops() async throws {
        try await withCluster({
            Self.configure(&$0)
            $0.dataNodes = 4
        }) { cluster in
            try await withClient(cluster) { client in
                let store = Self.store(client)
                _ = try await store.open()
                var acknowledged: [[UInt8]] = []
                for index in 0..<10 {
                    let record = Self.record("before the stop \(index)")
                    try await store.append([record])
                    acknowledged.append(record)
                }
                let log = try #require(await store.currentLogPath)
                let pipeline = try await client.blockLocations(log).lastBlock.locations
                #expect(pipeline.count == 3)
                let victim = try #require(cluster.dataNode(pipeline[1].nodeID))
                await victim.shutdown()

                var failed: [UInt8]?
                for index in 0..<10 {
                    let record = Self.record("after the stop \(index)")
                    do {
                        try await store.append([record])
                        acknowledged.append(record)
                    } catch let error as DFSStateStoreError {
                        #expect(error.kind == .writeFailed && error.path == log, "\(error)")
                        failed = record
                        break
                    }
                }
                #expect(failed == nil, "an append failed after one data node stopped")
                if failed == nil { try await store.close() }

                try await withClient(cluster) { successor in
                    let records = try await Self.store(successor).open().records
                    // An append that threw may or may not have reached the log.
                    let expected = records.count == acknowledged.count + 1 ? acknowledged + [failed ?? []] : acknowledged
                    #expect(records == expected)
                }
            }
        }
    }
}
