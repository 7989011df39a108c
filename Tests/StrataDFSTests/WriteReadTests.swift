import Foundation
import StrataClient
import StrataTestKit
import Testing

@Suite(.serialized) struct WriteReadTests {
    @Test func putAndGetSmallFile() async throws {
        let directory = NSTemporaryDirectory() + "strata-dfs-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = try await LocalCluster.start(directory: directory)
        let client = cluster.client()
        let data = Array("hello, strata\n".utf8)
        let stream = try await client.create("/hello.txt")
        try await stream.write(data)
        try await stream.close()
        let got = try await client.readAll("/hello.txt")
        #expect(got == data)
        let status = try await client.status("/hello.txt")
        #expect(status?.length == UInt64(data.count))
        await client.close()
        await cluster.shutdown()
    }
}
