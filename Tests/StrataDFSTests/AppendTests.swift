import Foundation
import StrataClient
import StrataTestKit
import Testing

/// `append`, `hflush` and `hsync`: what the master, launcher and cron journals rely on.
@Suite(.serialized) struct AppendTests {
    static let blockSize = 64 * 1024
    static let frameSize = 4096

    /// Appends to files ending mid-frame, on a frame boundary mid-block, exactly on a block
    /// boundary, and to an empty file; some appends cross into new blocks. The content is the
    /// old bytes then the new, every replica of every block agrees, and the file can be
    /// appended to again.
    @Test(arguments: [
        (10_000, 3_000),  // mid-frame, stays in the block
        (10_000, 2 * 64 * 1024),  // mid-frame, crosses two block boundaries
        (8192, 5_000),  // on a frame boundary mid-block
        (64 * 1024, 1_000),  // exactly on a block boundary
        (2 * 64 * 1024, 64 * 1024),  // two full blocks, one more full block
        (64 * 1024 - 1, 2),  // one byte short of a block, crossing it
        (0, 5_000),  // an empty file
        (1, 1),
    ])
    func appendKeepsOldAndNew(_ sizes: (Int, Int)) async throws {
        let (initial, added) = sizes
        try await withCluster({ $0.rawFrameSizeBytes = Self.frameSize }) { cluster in
            try await withClient(cluster) { client in
                let old = randomBytes(initial, seed: UInt64(initial))
                let new = logLikeBytes(added, seed: UInt64(added))
                try await put(client, "/log", old, blockSize: UInt64(Self.blockSize))
                let stream = try await client.append("/log")
                try await stream.write(new)
                try await stream.close()
                let expected = old + new
                #expect(try await client.status("/log")?.length == UInt64(expected.count))
                #expect(try await client.status("/log")?.underConstruction == false)
                expectSameBytes(try await client.readAll("/log"), expected, "/log after append \(initial)+\(added)")
                try await expectConsistentReplicas(cluster, client, "/log", expected)

                // A second append by another client continues where the first ended.
                try await withClient(cluster) { other in
                    let more = Array("one more line\n".utf8)
                    let stream = try await other.append("/log")
                    try await stream.write(more)
                    try await stream.close()
                    expectSameBytes(try await client.readAll("/log"), expected + more, "/log after a second append")
                    try await expectConsistentReplicas(cluster, client, "/log", expected + more)
                }
            }
        }
    }

    /// Opening a file for append and closing it without writing leaves the file as it was,
    /// and its replicas stay (the append gave the last block a new generation stamp, which the
    /// replicas must take too, or the name node would see them as stale and delete them).
    @Test(arguments: [10_000, 8192, 64 * 1024]) func appendOfNothing(_ initial: Int) async throws {
        try await withCluster({ $0.rawFrameSizeBytes = Self.frameSize }) { cluster in
            try await withClient(cluster) { client in
                let data = randomBytes(initial, seed: 45)
                try await put(client, "/same", data, blockSize: UInt64(Self.blockSize))
                let stream = try await client.append("/same")
                try await stream.hflush()
                try await stream.close()
                #expect(try await client.status("/same")?.underConstruction == false)
                expectSameBytes(try await client.readAll("/same"), data, "/same after an empty append")
                // Every replica took the block's new generation stamp.
                try await expectConsistentReplicas(cluster, client, "/same", data)
            }
        }
    }

    /// Many small appends, as a service's journal makes them (each a few lines, hsynced).
    @Test func manySmallAppends() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = Self.frameSize }) { cluster in
            try await withClient(cluster) { client in
                try await put(client, "/journal", [], blockSize: UInt64(Self.blockSize))
                var expected: [UInt8] = []
                for index in 0..<30 {
                    let record = Array("record \(index) \(String(repeating: "=", count: index * 97))\n".utf8)
                    let stream = try await client.append("/journal")
                    try await stream.write(record)
                    try await stream.hsync()
                    try await stream.close()
                    expected += record
                }
                expectSameBytes(try await client.readAll("/journal"), expected, "/journal")
                try await expectConsistentReplicas(cluster, client, "/journal", expected)
            }
        }
    }

    /// Bytes written and hflushed are readable by another client while the file is still open,
    /// including a partial frame, a full block and a partial one; the same after hsync.
    @Test func hflushAndHsyncMakeBytesVisible() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = Self.frameSize }) { cluster in
            try await withClient(cluster) { writer in
                try await withClient(cluster) { reader in
                    let data = logLikeBytes(3 * Self.blockSize, seed: 41)
                    let stream = try await writer.create("/open", blockSize: UInt64(Self.blockSize))
                    var written = 0
                    // Cut points: within the first frame, a frame boundary, past a block
                    // boundary, exactly at the next one, and within the third block.
                    for (position, cut) in [1000, 8192, Self.blockSize + 100, 2 * Self.blockSize, 2 * Self.blockSize + 5000].enumerated() {
                        try await stream.write(Array(data[written..<cut]))
                        written = cut
                        if position % 2 == 0 { try await stream.hflush() } else { try await stream.hsync() }
                        let status = try #require(try await reader.status("/open"))
                        #expect(status.underConstruction)
                        let visible = try await reader.readAll("/open")
                        expectSameBytes(visible, Array(data[0..<written]), "bytes visible after flushing \(written)")
                        // Ranged reads into the open last block work too.
                        let from = max(0, written - 1500)
                        let range = try await reader.readAll("/open", offset: UInt64(from), length: 1500)
                        expectSameBytes(range, Array(data[from..<written]), "tail range after flushing \(written)")
                    }
                    try await stream.write(Array(data[written...]))
                    try await stream.close()
                    expectSameBytes(try await reader.readAll("/open"), data, "/open after close")
                    #expect(try await reader.status("/open")?.underConstruction == false)
                }
            }
        }
    }

    /// hflush after an append: the appended bytes are visible before the appender closes.
    @Test func hflushAfterAppend() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = Self.frameSize }) { cluster in
            try await withClient(cluster) { writer in
                try await withClient(cluster) { reader in
                    let old = logLikeBytes(10_000, seed: 43)
                    try await put(writer, "/a", old, blockSize: UInt64(Self.blockSize))
                    let stream = try await writer.append("/a")
                    let new = logLikeBytes(3000, seed: 44)
                    try await stream.write(new)
                    try await stream.hflush()
                    expectSameBytes(try await reader.readAll("/a"), old + new, "appended bytes after hflush")
                    try await stream.close()
                    expectSameBytes(try await reader.readAll("/a"), old + new, "/a after close")
                }
            }
        }
    }
}

/// A file open for writing can be renamed, and its directory moved: the writer goes on and
/// closes the file under its new name (HDFS follows open files by inode id).
@Suite struct RenameWhileWritingTests {
    @Test func writerFollowsItsFileAcrossRenames() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = 4096 }) { cluster in
            try await withClient(cluster) { client in
                let data = logLikeBytes(300_000, seed: 71)
                let stream = try await client.create("/incoming/part.log", blockSize: 64 * 1024)
                try await stream.write(Array(data[0..<100_000]))
                try await client.rename("/incoming/part.log", to: "/incoming/renamed.log")
                try await stream.write(Array(data[100_000..<200_000]))
                try await client.rename("/incoming", to: "/archive")
                try await stream.write(Array(data[200_000...]))
                try await stream.close()
                #expect(try await client.status("/incoming/part.log") == nil)
                let status = try #require(try await client.status("/archive/renamed.log"))
                #expect(status.length == UInt64(data.count))
                #expect(status.underConstruction == false)
                expectSameBytes(try await client.readAll("/archive/renamed.log"), data, "/archive/renamed.log")
            }
        }
    }
}
