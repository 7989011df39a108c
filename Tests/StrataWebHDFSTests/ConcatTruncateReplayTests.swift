import Foundation
import StrataClient
import StrataTestKit
import Testing

@Suite("Concat and truncate edits")
struct ConcatTruncateReplayTests {
    @Test("Concat, truncate and legacy rename survive a name node restart (journal replay)")
    func replayAfterRestart() async throws {
        let directory = NSTemporaryDirectory() + "strata-webhdfs-replay-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = randomBytes(2048, seed: 11)
        let second = randomBytes(1500, seed: 12)
        var cluster = try await LocalCluster.start(directory: directory)
        do {
            let client = cluster.client()
            for (path, bytes) in [("/r/t", first), ("/r/s", second)] {
                let stream = try await client.create(path, blockSize: 1024)
                try await stream.write(bytes)
                try await stream.close()
            }
            try await client.concat("/r/t", sources: ["/r/s"])
            #expect(try await client.truncate("/r/t", newLength: 3000))
            #expect(try await client.renameLegacy("/r/t", to: "/r/u"))
            #expect(try await client.renameLegacy("/r/missing", to: "/r/v") == false)
            #expect(try await client.readAll("/r/u") == Array((first + second)[0..<3000]))
            await client.close()
        } catch {
            await cluster.shutdown()
            throw error
        }
        await cluster.shutdown()
        cluster = try await LocalCluster.start(directory: directory)
        do {
            let client = cluster.client()
            #expect(try await client.readAll("/r/u") == Array((first + second)[0..<3000]))
            #expect(try await client.list("/r").map(\.path) == ["/r/u"])
            await client.close()
        } catch {
            await cluster.shutdown()
            throw error
        }
        await cluster.shutdown()
    }
}
