import Foundation
import StrataBlockFormat
import StrataClient
import StrataCore
import StrataTestKit
import Testing

/// Frames are compressed once by the writer and stored as they are on every replica.
@Suite(.serialized) struct CompressionTests {
    /// Log-like text takes far fewer bytes on disk than its raw size times its replication, as
    /// the name node reports it and as the block files on disk really are.
    @Test func logLikeDataIsStoredCompressed() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let data = logLikeBytes(2 * 1024 * 1024 + 999, seed: 11)
                try await put(client, "/logs/app.log", data, replication: 3, blockSize: 1024 * 1024)
                expectSameBytes(try await client.readAll("/logs/app.log"), data, "/logs/app.log")
                let summary = try await client.contentSummary("/logs")
                let raw = UInt64(data.count)
                #expect(summary.length == raw)
                #expect(summary.spaceConsumed == raw * 3)
                #expect(summary.storedBytes > 0)
                // zstd level 1 takes such logs to well under a third of their size: all three
                // replicas together take less than one raw copy.
                #expect(summary.storedBytes < raw, "stored \(summary.storedBytes) for \(raw * 3) raw replica bytes")
                // The block files on disk: each replica well under its raw length, and together
                // what the name node reports.
                var onDisk: UInt64 = 0
                for block in try await client.blockLocations("/logs/app.log").blocks {
                    let holders = cluster.holders(of: block.block.blockID)
                    #expect(holders.count == 3)
                    for node in holders {
                        let path = try #require(node.store.path(of: block.block.blockID))
                        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64)
                        // (The short last block is a few lines, where framing costs more than zstd saves.)
                        if block.block.numBytes >= 64 * 1024 {
                            #expect(size * 3 < block.block.numBytes, "replica file of \(block.block.numBytes) raw bytes takes \(size)")
                        }
                        #expect(node.store.replica(block.block.blockID)?.storedBytes == size)
                        onDisk += size
                    }
                }
                #expect(onDisk == summary.storedBytes, "files on disk \(onDisk), name node says \(summary.storedBytes)")
                let report = try await client.fsck("/logs")
                #expect(report.storedBytes == summary.storedBytes)
            }
        }
    }

    /// Incompressible bytes are stored raw: about their size per replica, not more than a small
    /// framing overhead above it.
    @Test func randomDataIsStoredRaw() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let data = randomBytes(1024 * 1024 + 5, seed: 12)
                try await put(client, "/random", data, replication: 2, blockSize: 512 * 1024)
                let summary = try await client.contentSummary("/random")
                let raw = UInt64(data.count) * 2
                #expect(summary.storedBytes >= raw)
                #expect(summary.storedBytes < raw + raw / 100, "stored \(summary.storedBytes) for \(raw) raw replica bytes")
                expectSameBytes(try await client.readAll("/random"), data, "/random")
            }
        }
    }

    /// After a packet in which no frame compressed, a writer tries the codec on each packet's
    /// first frame only; once compressible data is seen, every frame is tried again.
    @Test func afterIncompressiblePacketsOnlyFirstFramesAreTried() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let frame = Limits.defaultRawFrameSizeBytes
                let framesPerPacket = Limits.packetRawBytes / frame
                let randomPackets = 4
                let logPackets = 8
                let data = randomBytes(randomPackets * Limits.packetRawBytes, seed: 13)
                    + logLikeBytes(logPackets * Limits.packetRawBytes, seed: 14)
                try await put(client, "/mixed", data, replication: 1, blockSize: 64 * 1024 * 1024)
                expectSameBytes(try await client.readAll("/mixed"), data, "/mixed")
                let block = try #require(try await client.blockLocations("/mixed").blocks.first)
                let node = try #require(cluster.holders(of: block.block.blockID).first)
                let reader = try BlockReader(path: try #require(node.store.path(of: block.block.blockID)))
                let codecs = reader.verifyFrames().map(\.codec)
                #expect(codecs.count == (randomPackets + logPackets) * framesPerPacket)
                func packet(_ index: Int) -> ArraySlice<FrameCodec?> { codecs[(index * framesPerPacket)..<((index + 1) * framesPerPacket)] }
                for index in 0..<randomPackets { #expect(packet(index).allSatisfy { $0 == .raw }, "random packet \(index)") }
                // The first log packet follows packets that did not compress: its first frame is
                // tried (and compresses), the others are stored as they are.
                let firstLogs = packet(randomPackets)
                #expect(firstLogs.first == .zstd)
                #expect(firstLogs.dropFirst().allSatisfy { $0 == .raw }, "\(firstLogs)")
                // A packet is started before the packets ahead of it are done compressing, so
                // the writer sees the change within a few packets; from then on every frame
                // is compressed.
                for index in (randomPackets + 5)..<(randomPackets + logPackets) {
                    #expect(packet(index).allSatisfy { $0 == .zstd }, "log packet \(index - randomPackets): \(packet(index))")
                }
            }
        }
    }
}
