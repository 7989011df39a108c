import Foundation
import StrataClient
import StrataCore
import StrataTestKit
import Testing

@testable import StrataNameNode

/// Readers and writers at the same time.
@Suite(.serialized) struct ConcurrentAccessTests {
    /// A reader polling a file while its writer keeps writing and hflushing sees, every time, a
    /// prefix of the final content at least as long as what was hflushed before the read began,
    /// and its reads never get good replicas marked damaged (a frame being rewritten in place is
    /// not a corrupt one). Appending keeps writing into a block whose replicas the name node
    /// lists, where a wrong damage report would stick.
    @Test(arguments: [false, true]) func readerFollowsAWriter(appending: Bool) async throws {
        try await withCluster({ $0.rawFrameSizeBytes = 4096 }) { cluster in
            try await withClient(cluster) { writer in
                try await withClient(cluster) { reader in
                    let data = logLikeBytes(300_000, seed: 81)
                    let stream: DFSOutputStream
                    if appending {
                        try await put(writer, "/follow", Array(data[0..<1000]), blockSize: 1024 * 1024)
                        stream = try await writer.append("/follow")
                    } else {
                        stream = try await writer.create("/follow", blockSize: 64 * 1024)
                    }
                    let start = appending ? 1000 : 0
                    let flushed = FlushedLength()
                    let follower = Task {
                        var reads = 0
                        var problems: [String] = []
                        while await flushed.value < data.count, !Task.isCancelled {
                            let before = await flushed.value
                            let seen = try await reader.readAll("/follow")
                            reads += 1
                            if seen.count < before {
                                problems.append("read \(seen.count) bytes after \(before) were hflushed")
                            }
                            if seen != Array(data.prefix(seen.count)) {
                                problems.append("read \(seen.count) bytes that are not a prefix of the file")
                            }
                        }
                        return (reads, problems)
                    }
                    // Should the writer fail, the reader must not poll forever.
                    defer { follower.cancel() }
                    var written = start
                    await flushed.set(written)
                    var generator = SeededGenerator(seed: 82)
                    while written < data.count {
                        let end = min(data.count, written + 1 + Int(generator.next() % 6000))
                        try await stream.write(Array(data[written..<end]))
                        try await stream.hflush()
                        written = end
                        await flushed.set(written)
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    try await stream.close()
                    let (reads, problems) = try await follower.value
                    #expect(reads > 0)
                    #expect(problems.isEmpty, "\(problems.prefix(5))")
                    expectSameBytes(try await reader.readAll("/follow"), data, "/follow after close")
                    // Reading while the file was written did not get good replicas marked damaged.
                    let report = try await reader.fsck("/follow", listFiles: true)
                    #expect(report.healthy, "\(report)")
                    #expect(report.underReplicatedBlocks == 0, "\(report)")
                    #expect(report.corruptBlocks == 0, "\(report)")
                }
            }
        }
    }

    /// Many writers at once (their edits share journal commits), then many readers at once.
    @Test func concurrentWritersAndReaders() async throws {
        try await withCluster { cluster in
            let files = 24
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<files {
                    group.addTask {
                        try await withClient(cluster) { client in
                            try await put(client, "/parallel/\(index)", randomBytes(50_000 + index * 1000, seed: UInt64(index)), blockSize: 32 * 1024)
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await withClient(cluster) { client in
                #expect(try await client.list("/parallel").count == files)
                try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                    for index in 0..<files {
                        group.addTask { (index, try await client.readAll("/parallel/\(index)")) }
                    }
                    for try await (index, bytes) in group {
                        expectSameBytes(bytes, randomBytes(50_000 + index * 1000, seed: UInt64(index)), "/parallel/\(index)")
                    }
                }
            }
        }
    }

    /// More entries than one listing call returns (1000): `list` fetches them all, in order.
    @Test func listingLargerThanOneBatch() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let count = 1100
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<count {
                        group.addTask { try await client.mkdirs("/wide/d\(String(format: "%05d", index))") }
                    }
                    try await group.waitForAll()
                }
                let names = try await client.list("/wide").map { ($0.path as NSString).lastPathComponent }
                #expect(names == (0..<count).map { "d" + String(format: "%05d", $0) })
            }
        }
    }
}

/// A connection over its limit of calls in flight: the name node refuses the extra calls at once
/// with RetriableException, and the client tries them again, so every call succeeds.
@Suite struct BusyConnectionTests {
    @Test func callsBeyondTheInFlightLimitAreRetriedAndSucceed() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                try await client.mkdirs("/busy")
                // With the journal stalled, every admitted mkdirs stays in flight.
                let gate = Gate()
                cluster.nameNode.journal.setCommitHookForTesting { gate.passWhenOpen() }
                let base = cluster.nameNode.journal.lastSubmittedTransactionId
                let limit = Limits.maximumInFlightCallsPerConnection
                let count = limit + 100
                let calls = Task {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for index in 0..<count {
                            group.addTask { try await client.mkdirs("/busy/d\(index)", createParent: false) }
                        }
                        try await group.waitForAll()
                    }
                }
                // Every call the connection admits is in the journal's queue; the rest were refused.
                #expect(try await eventually(timeoutSeconds: 60) {
                    cluster.nameNode.journal.lastSubmittedTransactionId - base >= UInt64(limit)
                })
                #expect(cluster.nameNode.journal.lastSubmittedTransactionId - base == UInt64(limit))
                gate.open()
                try await calls.value
                #expect(try await client.list("/busy").count == count)
            }
        }
    }
}

/// The length a writer has hflushed, shared with a reader task.
actor FlushedLength {
    var value = 0
    func set(_ length: Int) { value = length }
}
