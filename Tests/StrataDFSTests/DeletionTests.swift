import Foundation
import StrataClient
import StrataTestKit
import Testing

/// Blocks that leave the namespace leave the data nodes' disks too, within a few heartbeats.
@Suite(.serialized) struct DeletionTests {
    /// `create(overwrite: true)` replaces the content; the old blocks' replicas are deleted.
    @Test func overwriteReplacesContentAndDeletesOldReplicas() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let blockSize: UInt64 = 64 * 1024
                let old = randomBytes(Int(blockSize) * 3 + 5, seed: 31)
                try await put(client, "/f", old, blockSize: blockSize)
                let oldIds = try await blockIds(client, "/f")
                #expect(oldIds.count == 4)
                let oldPaths = oldIds.flatMap { id in cluster.holders(of: id).compactMap { $0.store.path(of: id) } }
                #expect(oldPaths.count == 12)

                let new = logLikeBytes(100_000, seed: 32)
                try await put(client, "/f", new, overwrite: true, blockSize: blockSize)
                expectSameBytes(try await client.readAll("/f"), new, "overwritten /f")
                #expect(try await client.status("/f")?.length == UInt64(new.count))
                let newIds = try await blockIds(client, "/f")
                #expect(Set(newIds).isDisjoint(with: oldIds))
                for id in newIds { #expect(cluster.holders(of: id).count == 3) }

                let gone = try await eventually { oldIds.allSatisfy { cluster.holders(of: $0).isEmpty } }
                #expect(gone, "old replicas still held: \(oldIds.map { cluster.holders(of: $0).count })")
                for path in oldPaths { #expect(!FileManager.default.fileExists(atPath: path), "\(path) still on disk") }
                // The new blocks were not touched by the cleanup.
                for id in newIds { #expect(cluster.holders(of: id).count == 3) }
                expectSameBytes(try await client.readAll("/f"), new, "/f after the cleanup")
            }
        }
    }

    /// Deleting files and a directory tree deletes every replica, and the name node's counts
    /// of blocks per node drop back: with the blocks leaving the block map all at once, and a
    /// few per hold of the lock after the delete has answered (HDFS's block deletion increment).
    @Test(arguments: [1000, 2])
    func deleteRemovesReplicas(blockDeletionIncrement: Int) async throws {
        try await withCluster({ $0.blockDeletionIncrement = blockDeletionIncrement }) { cluster in
            try await withClient(cluster) { client in
                for index in 0..<5 {
                    try await put(client, "/tree/sub\(index % 2)/f\(index)", randomBytes(70_000, seed: UInt64(index)), blockSize: 32 * 1024)
                }
                try await put(client, "/keep", [1, 2, 3])
                let keepIds = try await blockIds(client, "/keep")
                var ids: [UInt64] = []
                for index in 0..<5 { ids += try await blockIds(client, "/tree/sub\(index % 2)/f\(index)") }
                #expect(ids.count == 15)
                #expect(try await client.delete("/tree", recursive: true))
                #expect(try await client.status("/tree") == nil)
                #expect(try await client.status("/keep") != nil)
                let gone = try await eventually { ids.allSatisfy { cluster.holders(of: $0).isEmpty } }
                #expect(gone)
                #expect(cluster.holders(of: keepIds[0]).count == 3)
                var counts: [UInt64] = []
                let counted = try await eventually {
                    counts = try await client.datanodeReport().map(\.blockCount)
                    return counts.allSatisfy { $0 == 1 }
                }
                #expect(counted, "block counts per node: \(counts)")
            }
        }
    }
}
