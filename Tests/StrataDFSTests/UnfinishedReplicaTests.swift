import Foundation
@testable import StrataClient
@testable import StrataDataNode
import StrataTestKit
import StrataWire
import Testing

/// Replicas still being written are where an open file's flushed bytes are, but a file is closed
/// (or moves to its next block) only on a replica finished under the block's current generation
/// stamp at the writer's length: a node restarted mid-write reports its replica unfinished, and
/// may hold fewer bytes than the writer sent, or none.
@Suite(.serialized) struct UnfinishedReplicaTests {
    @Test func aFileIsNotClosedOnReplicasStillBeingWritten() async throws {
        try await withCluster({
            $0.dataNodes = 3
            $0.rawFrameSizeBytes = 4096
        }) { cluster in
            try await withClient(cluster) { client in
                let data = randomBytes(10_000, seed: 90)
                let stream = try await client.create("/open", blockSize: 1 << 20)
                try await stream.write(data)
                try await stream.hflush()
                let last = try await client.blockLocations("/open").lastBlock
                let id = last.block.blockID
                // Every node reports its replica, still being written, in a full block report (as
                // a node restarted mid-write does): the name node now lists it.
                for node in cluster.dataNodes { try await node.sendBlockReport() }
                #expect(cluster.dataNodes.allSatisfy { $0.store.replica(id)?.isFinalized == false })

                // A close at the flushed length while no node has finished the block.
                var request = Strata_Wire_CompleteRequest()
                request.path = "/open"
                request.last = last.block
                request.last.numBytes = UInt64(data.count)
                let closing = Task {
                    let response: Strata_Wire_BoolResponse = try await client.call(.complete, request)
                    return response.result
                }
                try await Task.sleep(for: .milliseconds(500))
                #expect(
                    try await client.blockLocations("/open").underConstruction,
                    "the file was closed on replicas that are still being written")

                // The writer finishes the block: the waiting close and the writer's own go through.
                try await stream.close()
                #expect(try await closing.value)
                expectSameBytes(try await client.readAll("/open"), data, "/open")
                #expect(cluster.dataNodes.allSatisfy { $0.store.replica(id)?.isFinalized == true })
                let located = try await client.blockLocations("/open")
                #expect(!located.underConstruction)
                #expect(located.blocks.first?.locations.count == 3)
            }
        }
    }

    /// A reader asking a data node for bytes its replica does not hold is refused (HDFS refuses
    /// the same), rather than sent fewer bytes than it asked for.
    @Test func aRangePastTheReplicasEndIsRefused() async throws {
        try await withCluster({ $0.dataNodes = 1 }) { cluster in
            try await withClient(cluster) { client in
                let data = randomBytes(1_000, seed: 91)
                try await put(client, "/short", data, replication: 1)
                let block = try #require(try await client.blockLocations("/short").blocks.first)
                let node = try #require(block.locations.first)
                func read(offset: UInt64, length: UInt64) async throws -> Strata_Wire_TransferResponse {
                    let channel = try await Transfer.connect(host: node.ipAddress, port: Int(node.transferPort), group: cluster.group)
                    return try await channel.executeThenClose { inbound, outbound in
                        var header = Strata_Wire_TransferHeader()
                        header.op = .readBlock
                        header.read.block = block.block
                        header.read.offset = offset
                        header.read.length = length
                        try await outbound.write(try Transfer.frame(header))
                        var frames = inbound.makeAsyncIterator()
                        let first = try #require(try await frames.next())
                        return try Strata_Wire_TransferHeader(buffer: first.header).response
                    }
                }
                #expect(try await read(offset: 0, length: 1_000).status == .success)
                #expect(try await read(offset: 1_000, length: 0).status == .success)
                let past = try await read(offset: 500, length: 501)
                #expect(past.status == .errorInvalid)
                #expect(past.message.contains("blockLen 1000"), "\(past.message)")
                #expect(try await read(offset: 1_001, length: 0).status == .errorInvalid)
            }
        }
    }
}
