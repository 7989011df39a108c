import AsyncHTTPClient
import Foundation
import NIOHTTP1
import NIOCore
import StrataTestKit
import StrataCore
import Testing

@Suite("WebHDFS streaming")
struct WebHDFSStreamingTests {
    /// Bytes moved each way; STRATA_WEBHDFS_STREAM_MIB raises it (1024 for the issue's 1 GiB; a
    /// debug build moves about 3 MiB/s each way, so the default is small).
    static let size = (Int(ProcessInfo.processInfo.environment["STRATA_WEBHDFS_STREAM_MIB"] ?? "") ?? 48) * 1024 * 1024

    @Test("Large uploads and downloads stream through intact (memory checked with STRATA_WEBHDFS_MEMORY_CHECK=1)")
    func streamingKeepsMemoryBounded() async throws {
        // The servers' heap settings, as the `strata` command sets them.
        ProcessMemory.configure()
        try await withCluster({ $0.dataNodes = 1 }) { cluster in
            try await withWebClient(cluster) { web in
                let size = Self.size
                let chunk = 1 << 20
                let pattern = randomBytes(chunk, seed: 9)
                let baseline = residentBytes()
                var peak = baseline
                let step = try await web.send(.PUT, "/webhdfs/v1/big?op=CREATE&replication=1&noredirect=true")
                let location = try #require(step.json["Location"] as? String)
                var request = HTTPClientRequest(url: location)
                request.method = .PUT
                let body = ChunkSequence(count: size / chunk, chunk: pattern)
                request.body = .stream(body, length: .known(Int64(size)))
                let sampler = Task {
                    var highest = 0
                    while !Task.isCancelled {
                        highest = max(highest, residentBytes())
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    return highest
                }
                let created: HTTPClientResponse
                do {
                    created = try await web.http.execute(request, timeout: .seconds(600))
                } catch {
                    Issue.record("upload failed: \(error)")
                    throw error
                }
                #expect(created.status.code == 201)
                let open = try await web.send(.GET, "/webhdfs/v1/big?op=OPEN")
                var download = HTTPClientRequest(url: try #require(open.location))
                download.method = .GET
                let response = try await web.http.execute(download, timeout: .seconds(600))
                var received = 0
                var matches = true
                var iterator = response.body.makeAsyncIterator()
                while true {
                    let next: ByteBuffer?
                    do {
                        next = try await iterator.next()
                    } catch {
                        Issue.record("download failed after \(received) bytes: \(error)")
                        throw error
                    }
                    guard let part = next else { break }
                    let view = part.readableBytesView
                    var index = view.startIndex
                    while index < view.endIndex {
                        let offset = (received + (index - view.startIndex)) % chunk
                        let run = min(view.endIndex - index, chunk - offset)
                        if matches && !view[index..<(index + run)].elementsEqual(pattern[offset..<(offset + run)]) { matches = false }
                        index += run
                    }
                    received += view.count
                }
                sampler.cancel()
                peak = max(peak, await sampler.value)
                #expect(received == size)
                #expect(matches)
                let growth = peak - baseline
                print("streamed \(size >> 20) MiB up and down; resident memory grew \(growth >> 20) MiB")
                // Resident memory is the whole test process's: only a run of this test alone
                // measures the servers (tests/webhdfs measures a separate server process always).
                if ProcessInfo.processInfo.environment["STRATA_WEBHDFS_MEMORY_CHECK"] == "1" {
                    #expect(growth < 100 * 1024 * 1024)
                }
            }
        }
    }
}

/// `count` copies of `chunk`, made one at a time as the uploader asks.
struct ChunkSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let count: Int
    let chunk: [UInt8]

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: Int
        let chunk: [UInt8]
        mutating func next() async -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            remaining -= 1
            return ByteBuffer(bytes: chunk)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: count, chunk: chunk) }
}
