import Foundation
import StrataClient
import StrataTestKit
import Testing

@Suite(.serialized) struct WriteReadTests {
    @Test func putAndGetSmallFile() async throws {
        let directory = NSTemporaryDirectory() + "strata-dfs-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = try await LocalCluster.start(directory: directory)
        let client = cluster.client()
        let data = Array("hello, strata\n".utf8)
        let stream = try await client.create("/hello.txt")
        try await stream.write(data)
        try await stream.close()
        let got = try await client.readAll("/hello.txt")
        #expect(got == data)
        let status = try await client.status("/hello.txt")
        #expect(status?.length == UInt64(data.count))
        await client.close()
        await cluster.shutdown()
    }

    /// Sizes around the block size and the frame size: empty, one byte, a block and one byte
    /// either side, and many blocks with a partial last one. Each file's length, block count
    /// and bytes must come back exactly.
    @Test func putAndGetAroundBlockBoundaries() async throws {
        let blockSize = 64 * 1024
        let frameSize = 4096
        try await withCluster({ $0.rawFrameSizeBytes = frameSize }) { cluster in
            try await withClient(cluster) { client in
                let sizes = [0, 1, frameSize - 1, frameSize, frameSize + 1, blockSize - 1, blockSize, blockSize + 1, blockSize * 11 / 2]
                for (position, size) in sizes.enumerated() {
                    let seed = UInt64(1000 + position)
                    let data = randomBytes(size, seed: seed)
                    let path = "/sizes/file-\(size)"
                    // Odd write sizes, so writes straddle frames and blocks.
                    try await put(client, path, data, blockSize: UInt64(blockSize), chunk: 7919)
                    let status = try #require(try await client.status(path))
                    #expect(status.length == UInt64(size), "length of \(path)")
                    #expect(!status.underConstruction, "\(path) is closed")
                    let blocks = try await client.blockLocations(path).blocks
                    #expect(blocks.count == (size + blockSize - 1) / blockSize, "block count of \(path)")
                    #expect(blocks.allSatisfy { $0.locations.count == 3 }, "every block of \(path) has 3 replicas")
                    for (index, block) in blocks.enumerated() {
                        #expect(block.offset == UInt64(index * blockSize), "offset of block \(index) of \(path)")
                    }
                    expectSameBytes(try await client.readAll(path), data, "\(path) (seed \(seed))")
                }
            }
        }
    }

    /// One large write call of several blocks, and a file bigger than one packet per block.
    @Test func putAndGetSeveralMebibytes() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let data = randomBytes(3 * 1024 * 1024 + 12345, seed: 7)
                try await put(client, "/big", data, blockSize: 1024 * 1024, chunk: data.count)
                expectSameBytes(try await client.readAll("/big"), data, "/big")
                #expect(try await client.blockLocations("/big").blocks.count == 4)
                // Ranges across the default 256 KiB frames and the 1 MiB blocks.
                let frame = 256 * 1024
                let block = 1024 * 1024
                for (offset, length) in [(frame - 1, 2), (block - frame / 2, frame), (block - 1, block + 2), (3 * block - 7, 12345 + 7)] {
                    let got = try await client.readAll("/big", offset: UInt64(offset), length: UInt64(length))
                    expectSameBytes(got, Array(data[offset..<(offset + length)]), "/big range \(offset)+\(length)")
                }
            }
        }
    }

    /// Ranged reads across frame and block boundaries, against the source bytes: fixed ranges
    /// at every kind of boundary, then seeded random ones.
    @Test func rangedReads() async throws {
        let blockSize = 64 * 1024
        let frameSize = 4096
        try await withCluster({ $0.rawFrameSizeBytes = frameSize }) { cluster in
            try await withClient(cluster) { client in
                let size = blockSize * 7 / 2 + 123
                let data = logLikeBytes(size, seed: 42)
                try await put(client, "/ranged", data, blockSize: UInt64(blockSize))
                var ranges: [(Int, Int)] = [
                    (0, size), (0, 1), (size - 1, 1), (size, 0), (frameSize - 1, 2), (frameSize, frameSize),
                    (frameSize - 10, frameSize + 20), (blockSize - 1, 2), (blockSize, 1), (blockSize - 5000, 10_000),
                    (blockSize - 1, blockSize + 2), (blockSize / 2, 2 * blockSize), (3 * blockSize - 3, size - 3 * blockSize + 3),
                ]
                let seed = UInt64(Date().timeIntervalSince1970)
                var generator = SeededGenerator(seed: seed)
                for _ in 0..<40 {
                    let offset = Int(generator.next() % UInt64(size))
                    let length = Int(generator.next() % UInt64(min(size - offset, 3 * blockSize) + 1))
                    ranges.append((offset, length))
                }
                for (offset, length) in ranges {
                    var pieces = 0
                    var got: [UInt8] = []
                    let count = try await client.read("/ranged", offset: UInt64(offset), length: UInt64(length)) { bytes in
                        pieces += 1
                        got += bytes
                    }
                    #expect(count == UInt64(length), "read of \(offset)+\(length) (seed \(seed)) returned \(count)")
                    expectSameBytes(got, Array(data[offset..<(offset + length)]), "range \(offset)+\(length) (seed \(seed))")

                    // The same range with positioned delivery: every byte lands at its offset once
                    // (no gaps, nothing outside the range), and progress adds up to the length.
                    let positioned = RangeCollector(start: offset, length: length)
                    var progressed: UInt64 = 0
                    let positionedCount = try await client.readPositioned(
                        "/ranged", offset: UInt64(offset), length: UInt64(length), into: positioned, progress: { progressed += $0 })
                    #expect(positionedCount == UInt64(length) && progressed == UInt64(length), "positioned \(offset)+\(length) (seed \(seed))")
                    expectSameBytes(positioned.bytes, Array(data[offset..<(offset + length)]), "positioned \(offset)+\(length) (seed \(seed))")
                    #expect(positioned.covered == length, "positioned \(offset)+\(length) wrote \(positioned.covered) bytes")

                    // And as packet buffers (WebHDFS OPEN), in order, none empty.
                    var buffered: [UInt8] = []
                    var emptyBuffers = 0
                    let bufferedCount = try await client.readBuffers("/ranged", offset: UInt64(offset), length: UInt64(length)) { buffer in
                        if buffer.readableBytes == 0 { emptyBuffers += 1 }
                        buffered += buffer.readableBytesView
                    }
                    #expect(bufferedCount == UInt64(length) && emptyBuffers == 0, "buffers \(offset)+\(length) (seed \(seed))")
                    expectSameBytes(buffered, Array(data[offset..<(offset + length)]), "buffers \(offset)+\(length) (seed \(seed))")
                }
                // A length past the end stops at the end; an offset past the end is an error.
                let tail = try await client.readAll("/ranged", offset: UInt64(size - 10), length: 1000)
                expectSameBytes(tail, Array(data[(size - 10)...]), "range past the end")
                await expectRemote(.eof, "read past the end") {
                    _ = try await client.readAll("/ranged", offset: UInt64(size + 1), length: 1)
                }
            }
        }
    }

    /// Many small files in one directory: all present, listed in byte order, with the right
    /// lengths and contents, in one listing and in batches.
    @Test func manySmallFiles() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let count = 200
                var expected: [String: [UInt8]] = [:]
                try await client.mkdirs("/many")
                // Names that sort differently as numbers, as text and by case.
                for index in 0..<count {
                    let name = index % 3 == 0 ? "File-\(index)" : "file-\(index)"
                    let data = Array("content of \(name) \(String(repeating: "x", count: index))\n".utf8)
                    expected[name] = data
                    try await put(client, "/many/" + name, data, replication: 1 + index % 3)
                }
                let listing = try await client.list("/many")
                let names = listing.map { ($0.path as NSString).lastPathComponent }
                #expect(names.count == count)
                #expect(Set(names) == Set(expected.keys))
                #expect(names == expected.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "listing is in byte order")
                for entry in listing {
                    let name = (entry.path as NSString).lastPathComponent
                    #expect(entry.path == "/many/" + name)
                    #expect(expected[name].map { UInt64($0.count) } == entry.length, "length of \(name)")
                    #expect(entry.kind == .file)
                }
                // Batches of 64 give the same entries, in the same order.
                var batched: [String] = []
                var startAfter = ""
                while true {
                    let batch = try await client.listBatch("/many", startAfter: startAfter, limit: 64)
                    batched += batch.entries.map { ($0.path as NSString).lastPathComponent }
                    #expect(batch.entries.count <= 64)
                    guard batch.remaining > 0, let last = batched.last else { break }
                    startAfter = last
                }
                #expect(batched == names)
                let summary = try await client.contentSummary("/many")
                #expect(summary.fileCount == UInt64(count))
                #expect(summary.length == expected.values.reduce(0) { $0 + UInt64($1.count) })
                for (name, data) in expected {
                    expectSameBytes(try await client.readAll("/many/" + name), data, name)
                }
            }
        }
    }
}

/// Collects positioned writes of a range of a file, from any thread. As a read's sink it runs
/// each job on the reading task, with a buffer of the job's own.
final class RangeCollector: PositionedSink, @unchecked Sendable {
    struct OutOfRange: Error {}
    let start: Int
    private let lock = NSLock()
    private var buffer: [UInt8]
    private var written = 0

    init(start: Int, length: Int) {
        self.start = start
        buffer = [UInt8](repeating: 0, count: length)
    }

    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        lock.lock()
        defer { lock.unlock() }
        let position = Int(offset) - start
        guard position >= 0, position + bytes.count <= buffer.count else { throw OutOfRange() }
        buffer.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[position..<(position + bytes.count)]).copyMemory(from: bytes) }
        written += bytes.count
    }

    func perform(bufferSize: Int, _ job: @escaping PositionedJob) async throws {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { scratch.deallocate() }
        try job(scratch) { bytes, offset in try write(at: offset, bytes) }
    }

    var bytes: [UInt8] { lock.withLock { buffer } }
    var covered: Int { lock.withLock { written } }
}
