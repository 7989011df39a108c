import Foundation
import StrataClient
import StrataTestKit
import Testing

/// Writes with nowhere to put the bytes fail clearly, and — written as the CLI writes (to
/// `NAME._COPYING_`, renamed at the end) — leave nothing under the file's name.
@Suite(.serialized) struct NoDataNodeTests {
    @Test func putWithoutDataNodesFails() async throws {
        try await withCluster({ $0.dataNodes = 0 }) { cluster in
            try await withClient(cluster) { client in
                #expect(try await client.datanodeReport().isEmpty)
                let error = await expectRemote(.io, "write with no data node") {
                    try await copyLikeTheCLI(client, "/out", randomBytes(10_000, seed: 71))
                }
                let message = error?.message ?? ""
                #expect(message.contains("0 datanode(s) running"), "message says there are no data nodes: \(message)")
                #expect(try await client.status("/out") == nil, "nothing under the final name")
                // The partial copy can be cleaned up, and mkdirs and empty files still work.
                try await client.delete("/out._COPYING_", recursive: false)
                #expect(try await client.list("/").isEmpty)
                try await put(client, "/empty", [])
                #expect(try await client.status("/empty")?.length == 0)
            }
        }
    }

    /// Data nodes that stop heartbeating are declared dead after the timeout; writes then fail
    /// the same way, and reads of existing files say which block is missing.
    @Test func putAfterDataNodesDie() async throws {
        let clock = ManualClock()
        try await withCluster({
            $0.heartbeatTimeoutMs = 2_000
            $0.nameNodeClock = clock
        }) { cluster in
            try await using(impatientClient(cluster)) { client in
                try await put(client, "/before", Array("written while alive".utf8))
                for node in cluster.dataNodes { await node.shutdown() }
                try await advance(cluster, clock, milliseconds: 2_001, live: [])
                let states = try await client.datanodeReport().map(\.state)
                #expect(states.allSatisfy { $0 == "dead" }, "data node states: \(states)")
                let error = await expectRemote(.io, "write with every data node dead") {
                    try await copyLikeTheCLI(client, "/out", [1, 2, 3])
                }
                #expect(error?.message.contains("0 datanode(s) running") == true, "\(error?.message ?? "")")
                #expect(try await client.status("/out") == nil)
                await expectRemote(.blockMissing, "read of a file whose replicas are all on dead nodes") {
                    _ = try await client.readAll("/before")
                }
                let report = try await client.fsck("/")
                #expect(report.missingBlocks == 1)
                #expect(report.liveDatanodes == 0 && report.deadDatanodes == 3)
            }
        }
    }
}

/// Copies bytes to `path` the way `strata dfs -put` does: into `path._COPYING_`, renamed to
/// `path` once closed.
func copyLikeTheCLI(_ client: DFSClient, _ path: String, _ bytes: [UInt8]) async throws {
    let temporary = path + "._COPYING_"
    let stream = try await client.create(temporary, overwrite: true)
    try await stream.write(bytes)
    try await stream.close()
    try await client.rename(temporary, to: path)
}
