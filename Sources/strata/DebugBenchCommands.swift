import ArgumentParser
import Foundation
import CMalloc
import Glibc
import StrataBlockFormat
import StrataClient
import StrataCore
import StrataNameNode
import StrataWire

/// `strata debug codec-speed FILE`: single-core raw libzstd level 1 speed on a file, in frames of
/// the default size: the yardstick `tools/bench dfs` divides put and get speeds by.
struct CodecSpeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec-speed", abstract: "Measure single-core zstd-1 compress/decompress speed on a file (JSON).", shouldDisplay: false)

    @Argument(help: "The file (read into memory; at most 1 GiB).")
    var file: String

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        let bytes = [UInt8](data.prefix(1 << 30))
        let frameSize = Limits.defaultRawFrameSizeBytes
        let compressor = ZstdCompressor(level: 1)
        let decompressor = ZstdDecompressor()
        var scratch = [UInt8](repeating: 0, count: ZstdCompressor.bound(frameSize))
        var compressed: [[UInt8]] = []
        var started = Date()
        bytes.withUnsafeBytes { raw in
            for start in stride(from: 0, to: raw.count, by: frameSize) {
                let end = min(raw.count, start + frameSize)
                let length = scratch.withUnsafeMutableBytes { compressor.compress(UnsafeRawBufferPointer(rebasing: raw[start..<end]), into: $0) }
                compressed.append(Array(scratch[0..<length]))
            }
        }
        let compressSeconds = Date().timeIntervalSince(started)
        var output = [UInt8](repeating: 0, count: frameSize)
        started = Date()
        output.withUnsafeMutableBytes { out in
            for chunk in compressed {
                chunk.withUnsafeBytes { _ = decompressor.decompress($0, into: out) }
            }
        }
        let decompressSeconds = Date().timeIntervalSince(started)
        let storedBytes = compressed.reduce(0) { $0 + $1.count }
        print(try JSONOutput.encode([
            "bytes": Double(bytes.count), "compressMBps": Double(bytes.count) / compressSeconds / 1e6,
            "decompressMBps": Double(bytes.count) / decompressSeconds / 1e6, "compressedBytes": Double(storedBytes),
        ]))
    }
}

/// `strata debug metadata-bench`: create, stat, list and delete many empty files with
/// concurrent clients against a running name node; prints operations per second (JSON).
struct MetadataBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata-bench", abstract: "Name node operations per second with concurrent clients (JSON).", shouldDisplay: false)

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "Empty files to create.")
    var files: Int = 10_000

    @Option(help: "Concurrent clients (one connection each).")
    var clients: Int = 16

    @Option(help: "Directory to work in (removed at the end).")
    var directory: String = "/bench/metadata"

    func run() async throws {
        let (host, port) = try cluster.nameNodeAddress()
        let user = cluster.resolvedUser
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let connections = (0..<clients).map { _ in
            var configuration = DFSClientConfiguration(user: user)
            configuration.nameNodeHost = host
            configuration.nameNodePort = port
            return DFSClient(configuration: configuration, group: group)
        }
        let directory = self.directory
        try await connections[0].mkdirs(directory)
        let perClient = (files + clients - 1) / clients
        let total = files

        func timed(_ body: @Sendable @escaping (DFSClient, Int) async throws -> Void) async throws -> Double {
            let started = Date()
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for (index, client) in connections.enumerated() {
                    tasks.addTask {
                        for item in (index * perClient)..<min(total, (index + 1) * perClient) {
                            try await body(client, item)
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            return Date().timeIntervalSince(started)
        }

        // Each empty file as `touchz` makes it: created and closed in one call.
        let createSeconds = try await timed { client, item in
            try await client.createEmpty("\(directory)/f\(item)", createParent: false)
        }
        // And as a writer makes one: `create`, then `complete` on closing the stream.
        let streamSeconds = try await timed { client, item in
            let stream = try await client.create("\(directory)/s\(item)", createParent: false)
            try await stream.close()
        }
        let statSeconds = try await timed { client, item in
            guard try await client.status("\(directory)/f\(item)") != nil else { throw ValidationError("f\(item) is missing") }
        }
        var started = Date()
        let listed = try await connections[0].list(directory).count
        let listSeconds = Date().timeIntervalSince(started)
        let deleteSeconds = try await timed { client, item in
            try await client.delete("\(directory)/f\(item)", recursive: false)
        }
        _ = try await timed { client, item in
            try await client.delete("\(directory)/s\(item)", recursive: false)
        }
        started = Date()
        try await connections[0].delete(directory, recursive: true)
        _ = started
        for client in connections { await client.close() }
        try await group.shutdownGracefully()
        guard listed == 2 * files else { throw ValidationError("listed \(listed) entries, expected \(2 * files)") }
        print(try JSONOutput.encode([
            "files": Double(files), "clients": Double(clients), "createPerSecond": Double(files) / createSeconds,
            "createAndClosePerSecond": Double(files) / streamSeconds,
            "statPerSecond": Double(files) / statSeconds, "listSeconds": listSeconds, "listEntriesPerSecond": Double(listed) / listSeconds, "listedEntries": Double(listed),
            "deletePerSecond": Double(files) / deleteSeconds,
        ]))
    }
}

/// `strata debug namespace-memory`: builds a namespace of N files with one block each (and three
/// replica locations per block) in this process and reports the heap bytes it takes per file.
struct NamespaceMemoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "namespace-memory", abstract: "Name node heap bytes per file (JSON).", shouldDisplay: false)

    @Option(help: "Files to create (in directories of 1,000).")
    var files: Int = 1_000_000

    func run() throws {
        let before = heapInUse()
        var namespace = Namespace(settings: NamespaceSettings(superuser: "strata"))
        var blocks = BlockManager()
        var nodes: [UInt16] = []
        for index in 0..<3 {
            var info = Strata_Wire_DatanodeInfo()
            info.nodeID = "node-\(index)"
            nodes.append(blocks.register(info, now: .zero))
        }
        let caller = Caller(user: "strata", groups: ["strata", "supergroup"])
        for file in 0..<files {
            if file % 1000 == 0 {
                _ = namespace.applyPrepared(try namespace.prepareMkdirs("/d\(file / 1000)", permission: 0o755, createParent: true, caller: caller, now: 1))
            }
            let path = "/d\(file / 1000)/f\(file % 1000)"
            _ = namespace.applyPrepared(try namespace.prepareCreate(
                path, permission: 0o644, overwrite: false, createParent: false, replication: 3, blockSize: 128 << 20,
                clientName: "bench", caller: caller, now: 1))
            let add = try namespace.prepareAddBlock(path, clientName: "bench", previous: nil)
            _ = namespace.applyPrepared([add])
            var last = Strata_Wire_ExtendedBlock()
            last.blockID = add.addBlock.block.blockID
            last.generationStamp = add.addBlock.block.generationStamp
            last.numBytes = 1000
            if let close = try namespace.prepareComplete(path, clientName: "bench", last: last, now: 2) {
                _ = namespace.applyPrepared([close])
            }
            var reported = Strata_Wire_ReportedBlock()
            reported.block = last
            reported.storedBytes = 400
            for node in nodes {
                blocks.processReportedReplica(reported, node: node, record: namespace.block(last.blockID))
            }
        }
        let after = heapInUse()
        let perFile = Double(after - before) / Double(files)
        print(try JSONOutput.encode(["files": Double(namespace.fileCount), "heapBytes": Double(after - before), "bytesPerFile": perFile]))
        withExtendedLifetime((namespace, blocks)) {}
    }
}

import NIOCore
import NIOPosix

/// Heap bytes in use: small allocations in the arenas plus large ones in their own mappings.
func heapInUse() -> Int {
    let info = mallinfo2()
    return Int(info.uordblks) + Int(info.hblkhd)
}
