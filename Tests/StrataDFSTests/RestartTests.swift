import Foundation
import StrataClient
import StrataTestKit
import StrataWire
import Testing

@testable import StrataNameNode

/// A name node restarted on its directory rebuilds the same namespace: from its journal alone,
/// or from a checkpoint image plus the edits after it.
@Suite(.serialized) struct RestartTests {
    /// Every kind of edit, journal replay only.
    @Test func restartReplaysTheJournal() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var cluster = try await LocalCluster.start(directory: directory)
        let expected = try await withClient(cluster) { client in
            try await makeVariedNamespace(client)
            return try await snapshot(client)
        }
        cluster = try await restart(cluster)
        try await withClient(cluster) { client in
            try await expectSame(client, expected, "after replaying the journal")
            try await expectStillWritable(cluster, client, expected)
        }
        await cluster.shutdown()
    }

    /// A checkpoint image, then more edits, then a restart: image and edits combined. A second
    /// restart right after another checkpoint loads the image alone.
    @Test func restartFromCheckpointAndEdits() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var cluster = try await LocalCluster.start(directory: directory)
        let expected = try await withClient(cluster) { client in
            try await makeVariedNamespace(client)
            try cluster.nameNode.checkpointNow()
            #expect(images(in: directory).count == 1, "checkpointNow wrote an image: \(images(in: directory))")
            // Edits after the image: they are replayed on top of it.
            try await put(client, "/after/image", logLikeBytes(70_000, seed: 61), blockSize: 32 * 1024)
            try await client.rename("/docs/readme", to: "/after/readme")
            try await client.delete("/tmp", recursive: true)
            let stream = try await client.append("/logs/app.log")
            try await stream.write(Array("appended after the image\n".utf8))
            try await stream.close()
            return try await snapshot(client)
        }
        cluster = try await restart(cluster)
        let second = try await withClient(cluster) { client in
            try await expectSame(client, expected, "after loading the image and replaying edits")
            try await expectStillWritable(cluster, client, expected)
            try cluster.nameNode.checkpointNow()
            return try await snapshot(client)
        }
        #expect(images(in: directory).count == 1, "older images are removed: \(images(in: directory))")
        cluster = try await restart(cluster)
        try await withClient(cluster) { client in
            try await expectSame(client, second, "after loading the second image alone")
            try await expectStillWritable(cluster, client, second)
        }
        await cluster.shutdown()
    }

    /// Files deleted before a checkpoint free inode slots; files created after it reuse them.
    /// Replaying those creates on the image must give every file the same file id it had before
    /// the restart (HDFS clients and WebHDFS see file ids).
    @Test func fileIdsSurviveCheckpointAfterDeletes() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var cluster = try await LocalCluster.start(directory: directory)
        let expected = try await withClient(cluster) { client in
            for index in 0..<8 { try await put(client, "/ids/old\(index)", [UInt8(index)]) }
            // Free slots in an order that is neither ascending nor descending.
            for index in [3, 1, 6, 2] { try await client.delete("/ids/old\(index)", recursive: false) }
            try cluster.nameNode.checkpointNow()
            for index in 0..<3 { try await put(client, "/ids/new\(index)", [UInt8(100 + index)]) }
            return try await snapshot(client)
        }
        cluster = try await restart(cluster)
        try await withClient(cluster) { client in
            try await expectSame(client, expected, "after loading the image and replaying creates")
            // And the next file made gets the same id on a name node that never restarted
            // would: the lowest free slot, like every other name node with this history.
            try await put(client, "/ids/later", [9])
            let later = try #require(try await client.status("/ids/later"))
            let ids = Set(expected.map(\.status.fileID))
            #expect(!ids.contains(later.fileID), "file id \(later.fileID) given twice")
        }
        await cluster.shutdown()
    }

    /// The monitor's own checkpoints, taken while the namespace keeps changing: each image is
    /// built from the journal on a namespace of its own, and a restart from the newest image and
    /// the edits after it gives the namespace the live name node had.
    @Test func checkpointsTakenWhileChangesGoOnRestoreTheSameNamespace() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = LocalCluster.Options()
        options.checkpointEveryEdits = 40
        var cluster = try await LocalCluster.start(directory: directory, options: options)
        let expected = try await withClient(cluster) { client in
            try await makeVariedNamespace(client)
            for index in 0..<150 { try await client.mkdirs("/many/d\(index)") }
            // The event: an image covering at least the varied namespace's edits is on disk.
            #expect(try await eventually(timeoutSeconds: 60) {
                cluster.nameNode.journal.checkpointTransactionId >= 40 && images(in: directory).count == 1
            })
            for index in 150..<200 { try await client.mkdirs("/many/d\(index)") }
            return try await snapshot(client)
        }
        await cluster.shutdown()
        cluster = try await LocalCluster.start(directory: directory, options: options)
        try await withClient(cluster) { client in
            try await expectSame(client, expected, "after the monitor's checkpoints")
            try await expectStillWritable(cluster, client, expected)
        }
        await cluster.shutdown()
    }

    func images(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/namenode")) ?? [])
            .filter { $0.hasPrefix("image") }
    }

    func restart(_ cluster: LocalCluster) async throws -> LocalCluster {
        await cluster.shutdown()
        return try await LocalCluster.start(directory: cluster.directory)
    }

    /// Files of many sizes and settings, and one of each namespace edit.
    func makeVariedNamespace(_ client: DFSClient) async throws {
        try await client.mkdirs("/docs", permission: 0o750)
        try await client.mkdirs("/empty/nested/deep")
        try await put(client, "/docs/readme", Array("read me\n".utf8))
        try await put(client, "/docs/empty", [])
        try await put(client, "/data/blocks", randomBytes(5 * 32 * 1024 + 77, seed: 62), blockSize: 32 * 1024)
        try await put(client, "/data/single", randomBytes(1000, seed: 63), replication: 1)
        try await put(client, "/data/double", randomBytes(1000, seed: 64), replication: 2, permission: 0o600)
        try await put(client, "/logs/app.log", logLikeBytes(50_000, seed: 65), blockSize: 32 * 1024)
        let stream = try await client.append("/logs/app.log")
        try await stream.write(logLikeBytes(40_000, seed: 66))
        try await stream.close()
        try await put(client, "/over", randomBytes(70_000, seed: 67), blockSize: 32 * 1024)
        try await put(client, "/over", Array("replaced".utf8), overwrite: true)
        try await put(client, "/tmp/a", [1])
        try await put(client, "/tmp/b", [2])
        try await client.delete("/tmp/a", recursive: false)
        try await put(client, "/moved-from", Array("moving".utf8))
        try await client.rename("/moved-from", to: "/docs/moved")
        try await put(client, "/victim", Array("old".utf8))
        try await put(client, "/replacer", Array("new".utf8))
        try await client.rename("/replacer", to: "/victim", overwrite: true)
        try await client.setPermission("/docs/readme", permission: 0o640)
        try await client.setOwner("/docs", owner: "alice", group: "staff")
        try await client.setReplication("/data/blocks", replication: 2)
        try await client.setTimes("/docs/readme", modificationTimeMs: 1_700_000_000_000, accessTimeMs: 1_700_000_001_000)
        try await client.mkdirs("/many")
        for index in 0..<30 { try await put(client, "/many/\(index)", Array("\(index)".utf8), replication: 1) }
    }

    struct Entry: Equatable, CustomStringConvertible {
        var status: Strata_Wire_FileStatus
        var bytes: [UInt8]?
        var description: String { "\(status.path) \(status.kind) \(status.length) bytes" }
    }

    /// Every inode under `/` with its status, and every file's bytes.
    func snapshot(_ client: DFSClient) async throws -> [Entry] {
        var entries: [Entry] = []
        var pending = ["/"]
        while let directory = pending.popLast() {
            for status in try await client.list(directory) {
                if status.kind == .directory {
                    entries.append(Entry(status: status, bytes: nil))
                    pending.append(status.path)
                } else {
                    entries.append(Entry(status: status, bytes: try await client.readAll(status.path)))
                }
            }
        }
        return entries.sorted { $0.status.path < $1.status.path }
    }

    func expectSame(_ client: DFSClient, _ expected: [Entry], _ when: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let actual = try await snapshot(client)
        #expect(actual.map(\.status.path) == expected.map(\.status.path), "paths \(when)", sourceLocation: sourceLocation)
        for (got, want) in zip(actual, expected) where got.status.path == want.status.path {
            #expect(got.status == want.status, "status of \(got.status.path) \(when)", sourceLocation: sourceLocation)
            if let bytes = want.bytes {
                expectSameBytes(got.bytes ?? [], bytes, "\(got.status.path) \(when)", sourceLocation: sourceLocation)
            }
        }
    }

    /// The restarted name node allocates new block ids (no collision with replicas on disk),
    /// takes appends to old files, and knows where every replica is.
    func expectStillWritable(_ cluster: LocalCluster, _ client: DFSClient, _ expected: [Entry]) async throws {
        let path = "/new-\(UUID().uuidString.prefix(8))"
        let data = randomBytes(100_000, seed: 68)
        try await put(client, path, data, blockSize: 32 * 1024)
        expectSameBytes(try await client.readAll(path), data, "file written after the restart")
        let old = try #require(expected.first { $0.status.path == "/data/single" }?.bytes)
        let stream = try await client.append("/data/single")
        try await stream.write(Array("more\n".utf8))
        try await stream.close()
        expectSameBytes(try await client.readAll("/data/single"), old + Array("more\n".utf8), "append after the restart")
        let report = try await client.fsck("/")
        #expect(report.healthy)
        #expect(report.missingBlocks == 0 && report.underReplicatedBlocks == 0)
    }
}
