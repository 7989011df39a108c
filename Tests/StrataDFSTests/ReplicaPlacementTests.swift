import Foundation
import StrataClient
import StrataDataNode
import StrataTestKit
import Testing

/// Where replicas really are: the block stores of the data nodes, not what the name node says.
@Suite(.serialized) struct ReplicaPlacementTests {
    /// With four data nodes, every block of a replication-3 file is in exactly three distinct
    /// stores, those the name node lists, each a finished replica of the block's length whose
    /// bytes are the file's.
    @Test func replicationThreeIsOnThreeDistinctNodes() async throws {
        try await withCluster({ $0.dataNodes = 4 }) { cluster in
            try await withClient(cluster) { client in
                let blockSize = 256 * 1024
                let data = randomBytes(blockSize * 4 + 1000, seed: 3)
                try await put(client, "/r3", data, replication: 3, blockSize: UInt64(blockSize))
                let blocks = try await client.blockLocations("/r3").blocks
                #expect(blocks.count == 5)
                for block in blocks {
                    let id = block.block.blockID
                    let holders = cluster.holders(of: id)
                    #expect(holders.count == 3, "block \(id) is in \(holders.count) stores")
                    #expect(Set(holders.map(\.nodeId)).count == holders.count)
                    #expect(Set(block.locations.map(\.nodeID)) == Set(holders.map(\.nodeId)), "name node lists the holders of \(id)")
                    try expectReplicas(of: block.block.blockID, in: holders, equal: data, from: block.offset, length: block.block.numBytes)
                }
            }
        }
    }

    /// Replication 1 and 2: exactly that many stores hold each block.
    @Test(arguments: [1, 2]) func lowerReplication(_ replication: Int) async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let blockSize = 64 * 1024
                let data = randomBytes(blockSize * 3 + 17, seed: UInt64(replication))
                try await put(client, "/r", data, replication: replication, blockSize: UInt64(blockSize))
                #expect(try await client.status("/r")?.replication == UInt32(replication))
                let blocks = try await client.blockLocations("/r").blocks
                #expect(blocks.count == 4)
                for block in blocks {
                    let holders = cluster.holders(of: block.block.blockID)
                    #expect(holders.count == replication, "block \(block.block.blockID) is in \(holders.count) stores")
                    #expect(Set(block.locations.map(\.nodeID)) == Set(holders.map(\.nodeId)))
                    try expectReplicas(of: block.block.blockID, in: holders, equal: data, from: block.offset, length: block.block.numBytes)
                }
                expectSameBytes(try await client.readAll("/r"), data, "/r")
            }
        }
    }

    /// Blocks spread over the nodes: with more blocks than nodes, every node gets some.
    @Test func blocksSpreadOverNodes() async throws {
        try await withCluster({ $0.dataNodes = 4 }) { cluster in
            try await withClient(cluster) { client in
                for index in 0..<8 {
                    try await put(client, "/spread/\(index)", randomBytes(1000, seed: UInt64(index)), replication: 1)
                }
                for node in cluster.dataNodes {
                    #expect(node.store.count > 0, "node \(node.nodeId) holds no block of 8")
                }
            }
        }
    }
}
