import Foundation
import StrataClient
import StrataDataNode
import StrataTestKit
import StrataWire
import Testing

/// A data node of a write pipeline stops mid-block: the writer rebuilds the pipeline without
/// it (a replacement node gets the acknowledged part of the block), resends what was not
/// acknowledged, and the write goes on. Nothing acknowledged is lost.
@Suite(.serialized) struct PipelineRecoveryTests {
    static let blockSize: UInt64 = 256 * 1024

    @Test(arguments: [0, 1, 2]) func writeGoesOnWhenAPipelineNodeStops(_ position: Int) async throws {
        try await withCluster({
            $0.dataNodes = 4
            $0.rawFrameSizeBytes = 4096
        }) { cluster in
            try await withClient(cluster) { client in
                let data = logLikeBytes(700_000, seed: UInt64(40 + position))
                let stream = try await client.create("/recover", blockSize: Self.blockSize)
                // Into the second block, then flushed: these bytes are acknowledged.
                let flushed = 300_000
                try await stream.write(Array(data[0..<flushed]))
                try await stream.hflush()
                let open = try await client.blockLocations("/recover")
                let pipeline = open.lastBlock.locations
                #expect(pipeline.count == 3)
                let victim = try #require(cluster.dataNode(pipeline[position].nodeID))
                let oldStamp = open.lastBlock.block.generationStamp
                await victim.shutdown()

                // The flushed bytes stay readable while the writer carries on.
                expectSameBytes(try await client.readAll("/recover"), Array(data[0..<flushed]), "flushed bytes after the stop")
                try await stream.write(Array(data[flushed...]))
                try await stream.close()

                expectSameBytes(try await client.readAll("/recover"), data, "/recover")
                let located = try await client.blockLocations("/recover")
                let recovered = try #require(located.blocks.first { $0.block.blockID == open.lastBlock.block.blockID })
                #expect(recovered.block.generationStamp > oldStamp, "the recovered block has a new generation stamp")
                #expect(!recovered.locations.contains { $0.nodeID == victim.nodeId })
                // The recovered block and the ones after it have three finished replicas on the
                // running nodes (thanks to the replacement node); a block finished before the stop
                // may have lost one with the node, until the name node declares it dead.
                let running = cluster.dataNodes.filter { $0.nodeId != victim.nodeId }
                for block in located.blocks {
                    let holders = running.filter { $0.store.replica(block.block.blockID) != nil }
                    let expected = block.offset >= recovered.offset ? 3...3 : 2...3
                    #expect(expected.contains(holders.count), "block \(block.block.blockID) has \(holders.count) replicas on running nodes")
                    for node in holders {
                        #expect(node.store.replica(block.block.blockID)?.generationStamp == block.block.generationStamp)
                    }
                    try expectReplicas(
                        of: block.block.blockID, in: holders, equal: data, from: block.offset, length: block.block.numBytes)
                }
            }
        }
    }

    /// Two nodes of a three-node pipeline stop one after the other: the write still finishes
    /// with every byte, on the nodes left.
    @Test func writeSurvivesTwoFailures() async throws {
        try await withCluster({
            $0.dataNodes = 5
            $0.rawFrameSizeBytes = 4096
        }) { cluster in
            try await withClient(cluster) { client in
                let data = randomBytes(500_000, seed: 77)
                let stream = try await client.create("/twice", blockSize: 1024 * 1024)
                var stopped: Set<String> = []
                for (index, range) in [0..<150_000, 150_000..<320_000, 320_000..<500_000].enumerated() {
                    try await stream.write(Array(data[range]))
                    try await stream.hflush()
                    guard index < 2 else { break }
                    let pipeline = try await client.blockLocations("/twice").lastBlock.locations
                    let victim = try #require(pipeline.first { !stopped.contains($0.nodeID) })
                    stopped.insert(victim.nodeID)
                    await cluster.dataNode(victim.nodeID)?.shutdown()
                }
                try await stream.close()
                expectSameBytes(try await client.readAll("/twice"), data, "/twice")
                let block = try #require(try await client.blockLocations("/twice").blocks.first)
                #expect(block.locations.allSatisfy { !stopped.contains($0.nodeID) })
                #expect(block.locations.count == 3)
            }
        }
    }
}
