import Foundation
import StrataClient
import StrataTestKit
import Testing

/// A writer that goes away without closing, across a name node restart.
@Suite(.serialized) struct AbandonedWriterTests {
    /// Bytes a writer hsynced stay readable after the writer disappears and the name node
    /// restarts; the file stays open (under construction) in the meantime.
    @Test func hsyncedBytesSurviveWriterLossAndRestart() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var cluster = try await LocalCluster.start(directory: directory, options: {
            var options = LocalCluster.Options()
            options.rawFrameSizeBytes = 4096
            return options
        }())
        let data = logLikeBytes(100_000, seed: 99)
        let synced = 70_000
        try await withClient(cluster) { client in
            let stream = try await client.create("/journal", blockSize: 64 * 1024)
            try await stream.write(Array(data[0..<synced]))
            try await stream.hsync()
            // The writer goes away: its stream is dropped without close, its client closed.
        }
        await cluster.shutdown()
        cluster = try await LocalCluster.start(directory: directory, options: {
            var options = LocalCluster.Options()
            options.rawFrameSizeBytes = 4096
            return options
        }())
        try await withClient(cluster) { client in
            let status = try #require(try await client.status("/journal"))
            #expect(status.underConstruction)
            expectSameBytes(try await client.readAll("/journal"), Array(data[0..<synced]), "hsynced bytes after the restart")
        }
        await cluster.shutdown()
    }
}
