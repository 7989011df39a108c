import Foundation
import StrataClient
import StrataDataNode
import StrataTestKit
import Synchronization
import Testing

/// Short-circuit local reads: a client on a data node's host reads finished replicas straight
/// from their files (the data node says where they are), with every checksum verified; a replica
/// it cannot read that way is read through the data node, and turning the feature off sends
/// every byte through the data nodes.
@Suite(.serialized) struct ShortCircuitReadTests {
    @Test func localReplicasAreReadFromTheirFiles() async throws {
        try await withCluster({ options in options.rawFrameSizeBytes = 4096 }) { cluster in
            try await withClient(cluster) { client in
                let data = logLikeBytes(700_000, seed: 41)
                try await put(client, "/local", data, blockSize: 256 * 1024)
                for (offset, length) in [(0, data.count), (5000, 300_000), (262_143, 2), (699_999, 1)] {
                    let before = client.shortCircuitBytes
                    let sink = RangeCollector(start: offset, length: length)
                    let count = try await client.readPositioned(
                        "/local", offset: UInt64(offset), length: UInt64(length), write: { at, bytes in try sink.write(at: at, bytes) })
                    #expect(count == UInt64(length))
                    expectSameBytes(sink.bytes, Array(data[offset..<(offset + length)]), "short-circuit \(offset)+\(length)")
                    #expect(client.shortCircuitBytes - before == UInt64(length), "\(offset)+\(length) did not come from the replica files")
                }
            }
        }
    }

    @Test func turnedOffEverythingGoesThroughTheDataNodes() async throws {
        try await withCluster({ options in options.rawFrameSizeBytes = 4096 }) { cluster in
            var configuration = DFSClientConfiguration(user: "strata")
            configuration.nameNodePort = cluster.nameNodePort
            configuration.shortCircuitReads = false
            try await using(DFSClient(configuration: configuration, group: cluster.group)) { client in
                let data = randomBytes(300_000, seed: 42)
                try await put(client, "/remote", data, blockSize: 128 * 1024)
                // Whole, and ranges that start and end inside frames, packets and blocks.
                for (offset, length) in [(0, data.count), (5000, 200_000), (131_071, 2), (299_999, 1)] {
                    let sink = RangeCollector(start: offset, length: length)
                    let count = try await client.readPositioned("/remote", offset: UInt64(offset), length: UInt64(length), into: sink)
                    #expect(count == UInt64(length) && sink.covered == length, "\(offset)+\(length)")
                    expectSameBytes(sink.bytes, Array(data[offset..<(offset + length)]), "read of \(offset)+\(length) with short-circuit reads off")
                }
                #expect(client.shortCircuitBytes == 0)
            }
        }
    }

    /// A sink that fails (a full local disk) ends the read with its own error: the replicas are
    /// not to blame, so no other is tried and none is reported.
    @Test func aFailingSinkEndsTheReadWithItsError() async throws {
        struct DiskFull: Error {}
        try await withCluster({ options in options.rawFrameSizeBytes = 4096 }) { cluster in
            try await withClient(cluster) { client in
                let data = logLikeBytes(600_000, seed: 44)
                try await put(client, "/full", data, blockSize: 256 * 1024)
                let written = Mutex(0)
                await #expect(throws: DiskFull.self) {
                    try await client.readPositioned("/full", write: { _, bytes in
                        try written.withLock { total in
                            guard total < 100_000 else { throw DiskFull() }
                            total += bytes.count
                        }
                    })
                }
                let blocks = try await client.blockLocations("/full").blocks
                #expect(blocks.allSatisfy { $0.locations.count == 3 && !$0.corrupt }, "a replica was blamed for the sink's failure")
            }
        }
    }

    /// The first replica a reader picks is damaged: the short-circuit read stops at the bad
    /// frame, the data node's own read finds the damage (and reports it), and the bytes come from
    /// another replica; nothing wrong is ever written.
    @Test func aDamagedLocalReplicaFallsBack() async throws {
        try await withCluster({ options in options.rawFrameSizeBytes = 4096 }) { cluster in
            try await withClient(cluster) { client in
                let data = logLikeBytes(200_000, seed: 43)
                try await put(client, "/damaged", data, blockSize: 1024 * 1024)
                let block = try #require(try await client.blockLocations("/damaged").blocks.first)
                let victimId = try #require(block.locations.first?.nodeID)
                let path = try #require(cluster.dataNode(victimId)?.store.path(of: block.block.blockID))
                try flipBytes(atFraction: 0.6, of: path)
                let sink = RangeCollector(start: 0, length: data.count)
                let count = try await client.readPositioned("/damaged", write: { at, bytes in try sink.write(at: at, bytes) })
                #expect(count == UInt64(data.count))
                expectSameBytes(sink.bytes, data, "read with a damaged local replica")
                let listed = try await eventually {
                    !(try await client.blockLocations("/damaged").blocks.first?.locations.map(\.nodeID) ?? []).contains(victimId)
                }
                #expect(listed, "the damaged replica was not reported")
            }
        }
    }

    /// Consecutive blocks are read from their files in one go; a damaged replica of a block in
    /// the middle ends that only where the damage is: the block comes from another replica
    /// through its data node, and the blocks after it from their files again.
    @Test func aDamagedReplicaMidFileFallsBackForItsBlockOnly() async throws {
        try await withCluster({ options in options.rawFrameSizeBytes = 4096 }) { cluster in
            try await withClient(cluster) { client in
                let blockSize = 256 * 1024
                let data = logLikeBytes(3 * blockSize, seed: 45)
                try await put(client, "/middle", data, blockSize: UInt64(blockSize))
                let blocks = try await client.blockLocations("/middle").blocks
                #expect(blocks.count == 3)
                let middle = blocks[1]
                let victimId = try #require(middle.locations.first?.nodeID)
                let path = try #require(cluster.dataNode(victimId)?.store.path(of: middle.block.blockID))
                try flipBytes(atFraction: 0.6, of: path)
                let before = client.shortCircuitBytes
                let sink = RangeCollector(start: 0, length: data.count)
                let count = try await client.readPositioned("/middle", into: sink)
                // Packets past the damage may have been written before the fallback writes them again.
                #expect(count == UInt64(data.count) && sink.covered >= data.count)
                expectSameBytes(sink.bytes, data, "read with a damaged replica of the middle block")
                // The first and last blocks came from their files, and the middle one's frames
                // before the damage.
                let fromFiles = client.shortCircuitBytes - before
                #expect(fromFiles >= UInt64(2 * blockSize) && fromFiles < UInt64(data.count), "\(fromFiles) bytes from replica files")
                let reported = try await eventually {
                    !(try await client.blockLocations("/middle").blocks[1].locations.map(\.nodeID)).contains(victimId)
                }
                #expect(reported, "the damaged replica was not reported")
            }
        }
    }

    /// A file still being written: its finished blocks come from their files in one run, and the
    /// open last block, whose replicas are not finished, through its data node.
    @Test func theOpenLastBlockIsReadThroughItsDataNode() async throws {
        try await withCluster({ options in options.rawFrameSizeBytes = 4096 }) { cluster in
            try await withClient(cluster) { client in
                let blockSize = 256 * 1024
                let data = logLikeBytes(2 * blockSize + 100_000, seed: 46)
                let stream = try await client.create("/growing", blockSize: UInt64(blockSize))
                try await stream.write(data)
                try await stream.hflush()
                let before = client.shortCircuitBytes
                let sink = RangeCollector(start: 0, length: data.count)
                let count = try await client.readPositioned("/growing", into: sink)
                #expect(count == UInt64(data.count))
                expectSameBytes(sink.bytes, data, "read of a file being written")
                #expect(client.shortCircuitBytes - before == UInt64(2 * blockSize), "the finished blocks did not come from their files")
                try await stream.close()
            }
        }
    }
}
