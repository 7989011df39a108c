import Foundation
import StrataClient

extension ImageStore {
    /// A blob's bytes as a pull-based sequence of chunks, read from the DFS a chunk at a time as
    /// the consumer asks (so a slow consumer holds at most one chunk, and a layer never sits
    /// whole in memory). The bytes are not verified here: a consumer that hashes them as it goes
    /// (an agent unpacking a layer) checks the digest at the end.
    public func blobChunks(_ digest: Digest, chunkBytes: Int = 4 << 20) -> BlobChunks {
        BlobChunks(client: client, path: blobPath(digest), digest: digest, chunkBytes: UInt64(max(chunkBytes, 1)))
    }
}

public struct BlobChunks: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let client: DFSClient
    let path: String
    let digest: Digest
    let chunkBytes: UInt64

    public struct AsyncIterator: AsyncIteratorProtocol {
        let chunks: BlobChunks
        var offset: UInt64 = 0
        var size: UInt64?

        public mutating func next() async throws -> [UInt8]? {
            if size == nil {
                guard let status = try await chunks.client.status(chunks.path), status.kind != .directory else {
                    throw ImageStoreError.blobUnknown(chunks.digest)
                }
                size = status.length
            }
            guard let size, offset < size else { return nil }
            let bytes = try await chunks.client.readAll(chunks.path, offset: offset, length: Swift.min(chunks.chunkBytes, size - offset))
            guard !bytes.isEmpty else {
                throw ImageStoreError.sizeInvalid("blob \(chunks.digest) ended after \(offset) of \(size) bytes")
            }
            offset += UInt64(bytes.count)
            return bytes
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: self) }
}
