import Foundation
import StrataClient
import StrataTestKit
import Testing

@testable import StrataNameNode

/// The replication monitor brings every block to its file's replication.
@Suite(.serialized) struct ReplicationTests {
    @Test func lowerThenRaiseReplication() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let blockSize: UInt64 = 128 * 1024
                let data = randomBytes(Int(blockSize) * 3 + 999, seed: 51)
                try await put(client, "/rep", data, replication: 3, blockSize: blockSize)
                let blocks = try await client.blockLocations("/rep").blocks
                #expect(blocks.count == 4)
                for block in blocks { #expect(cluster.holders(of: block.block.blockID).count == 3) }

                // 3 → 1: excess replicas are deleted from the disks.
                #expect(try await client.setReplication("/rep", replication: 1))
                #expect(try await client.status("/rep")?.replication == 1)
                let lowered = try await eventually {
                    blocks.allSatisfy { cluster.holders(of: $0.block.blockID).count == 1 }
                }
                #expect(lowered, "holders after lowering: \(blocks.map { cluster.holders(of: $0.block.blockID).count })")
                for block in try await client.blockLocations("/rep").blocks {
                    #expect(block.locations.count == 1)
                    #expect(block.locations.map(\.nodeID) == cluster.holders(of: block.block.blockID).map(\.nodeId))
                }
                expectSameBytes(try await client.readAll("/rep"), data, "/rep at replication 1")
                // It stays at one: replication passes schedule no copy of its blocks.
                for _ in 0..<3 { await cluster.nameNode.monitorPass() }
                let copies = cluster.nameNode.state.withLock { $0.blockManager.copiesInFlight() }
                #expect(copies.allSatisfy { $0 == 0 }, "copies in flight per node: \(copies)")
                #expect(blocks.allSatisfy { cluster.holders(of: $0.block.blockID).count == 1 })

                // 1 → 3: copies are made, each a good replica of the block.
                #expect(try await client.setReplication("/rep", replication: 3))
                let raised = try await eventually {
                    blocks.allSatisfy { cluster.holders(of: $0.block.blockID).count == 3 }
                }
                #expect(raised, "holders after raising: \(blocks.map { cluster.holders(of: $0.block.blockID).count })")
                let reported = try await eventually {
                    try await client.blockLocations("/rep").blocks.allSatisfy { $0.locations.count == 3 }
                }
                #expect(reported, "the name node learned of the new replicas")
                try await expectConsistentReplicas(cluster, client, "/rep", data)
                let report = try await client.fsck("/rep")
                #expect(report.healthy)
                #expect(report.underReplicatedBlocks == 0 && report.overReplicatedBlocks == 0)
                expectSameBytes(try await client.readAll("/rep"), data, "/rep at replication 3")
            }
        }
    }

    /// A directory has no replication: setReplication on it returns false and changes nothing.
    @Test func setReplicationOnDirectoryIsFalse() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                try await client.mkdirs("/d")
                #expect(try await client.setReplication("/d", replication: 2) == false)
                await expectRemote(.fileNotFound, "setReplication of a missing file") {
                    try await client.setReplication("/missing", replication: 2)
                }
                await expectRemote(.illegalArgument, "replication above the maximum") {
                    try await put(client, "/huge", [1], replication: 600)
                }
                await expectRemote(.illegalArgument, "setReplication above the maximum") {
                    try await put(client, "/f", [1])
                    try await client.setReplication("/f", replication: 600)
                }
            }
        }
    }
}
