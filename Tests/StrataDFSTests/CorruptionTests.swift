import Foundation
import StrataClient
import StrataDataNode
import StrataTestKit
import Testing

/// Damaged replicas: readers get the right bytes from another replica, never the damaged ones;
/// the name node stops listing the damaged replica, and replaces it when it can.
@Suite(.serialized) struct CorruptionTests {
    /// Flips bytes in the middle of the first-listed replica of a block (after several frames
    /// a reader will already have been given). The read returns exactly the file; the name node
    /// stops listing that replica, copies the block to the fourth node and deletes the damaged
    /// file, after which every replica is good again.
    @Test func flippedBytesFallBackAndHeal() async throws {
        let blockSize = 256 * 1024
        try await withCluster({ options in
            options.dataNodes = 4
            options.rawFrameSizeBytes = 4096
        }) { cluster in
            try await withClient(cluster) { client in
                let data = randomBytes(blockSize * 2, seed: 21)
                try await put(client, "/c", data, replication: 3, blockSize: UInt64(blockSize))
                let block = try #require(try await client.blockLocations("/c").blocks.first)
                let id = block.block.blockID
                let victimId = try #require(block.locations.first?.nodeID)
                let victim = try #require(cluster.dataNode(victimId))
                let path = try #require(victim.store.path(of: id))
                try flipBytes(atFraction: 0.5, of: path)

                expectSameBytes(try await client.readAll("/c"), data, "read of /c with one damaged replica")
                let locations = try await client.blockLocations("/c").blocks.first?.locations.map(\.nodeID) ?? []
                #expect(!locations.contains(victimId), "the name node still lists the damaged replica")
                #expect(locations.count >= 2)

                // Re-replication onto the fourth node, then the damaged replica goes.
                let healed = try await eventually {
                    let listed = try await client.blockLocations("/c").blocks.first?.locations.map(\.nodeID) ?? []
                    return listed.count == 3 && !listed.contains(victimId) && victim.store.replica(id) == nil
                }
                #expect(healed, "block \(id) did not get back to 3 good replicas with the damaged one deleted")
                #expect(!FileManager.default.fileExists(atPath: path), "damaged replica file is still on disk")
                let holders = cluster.holders(of: id)
                #expect(holders.count == 3)
                try expectReplicas(of: id, in: holders, equal: data, from: 0, length: UInt64(blockSize))
                let report = try await client.fsck("/")
                #expect(report.healthy)
                #expect(report.underReplicatedBlocks == 0 && report.corruptBlocks == 0)
                expectSameBytes(try await client.readAll("/c"), data, "read of /c after healing")
            }
        }
    }

    /// A truncated replica file is damaged too: the read falls back, and the name node learns
    /// about it (the checks run right after the read, before the damaged replica is replaced).
    @Test func truncatedReplicaFallsBack() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let data = logLikeBytes(300_000, seed: 22)
                try await put(client, "/t", data, blockSize: 1024 * 1024)
                let block = try #require(try await client.blockLocations("/t").blocks.first)
                let victimId = try #require(block.locations.first?.nodeID)
                let victim = try #require(cluster.dataNode(victimId))
                let path = try #require(victim.store.path(of: block.block.blockID))
                let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64)
                #expect(truncate(path, off_t(size / 2)) == 0)

                // Every read tries the truncated replica first (it is listed first). One that
                // could not reach it in time (a loaded machine) reads another replica and reports
                // nothing, as a timeout is not damage: the next read tries it again.
                var locations: [String] = []
                for _ in 0..<5 {
                    expectSameBytes(try await client.readAll("/t"), data, "read of /t with one truncated replica")
                    locations = try await client.blockLocations("/t").blocks.first?.locations.map(\.nodeID) ?? []
                    if !locations.contains(victimId) { break }
                }
                #expect(!locations.contains(victimId))
                #expect(locations.count == 2)
                let report = try await client.fsck("/t")
                #expect(report.healthy, "two good replicas left")
                #expect(report.underReplicatedBlocks == 1)
            }
        }
    }

    /// With every replica damaged a read fails (BlockMissingException) rather than return bad
    /// bytes, and fsck reports the block corrupt.
    @Test func everyReplicaDamagedFailsTheRead() async throws {
        try await withCluster { cluster in
            try await using(impatientClient(cluster)) { client in
                let data = randomBytes(100_000, seed: 23)
                try await put(client, "/all-bad", data)
                let id = try #require(try await blockIds(client, "/all-bad").first)
                for node in cluster.holders(of: id) {
                    try flipBytes(atFraction: 0.5, of: try #require(node.store.path(of: id)))
                }
                var delivered = 0
                await expectRemote(.blockMissing, "read with every replica damaged") {
                    try await client.read("/all-bad") { delivered += $0.count }
                }
                #expect(delivered == 0, "\(delivered) bytes of damaged replicas were returned")
                let report = try await client.fsck("/")
                #expect(!report.healthy)
                #expect(report.corruptBlocks == 1)
                #expect(try await client.blockLocations("/all-bad").blocks.first?.corrupt == true)
            }
        }
    }
}

/// Inverts a few bytes of a file at `fraction` of its length (inside the frames of a block file).
func flipBytes(atFraction fraction: Double, of path: String, count: Int = 4) throws {
    let handle = try #require(FileHandle(forUpdatingAtPath: path))
    defer { try? handle.close() }
    let size = try handle.seekToEnd()
    let offset = UInt64(Double(size) * fraction)
    try handle.seek(toOffset: offset)
    let original = try handle.read(upToCount: count) ?? Data()
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data(original.map { ~$0 }))
    try handle.synchronize()
}
