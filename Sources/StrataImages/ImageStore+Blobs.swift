import Foundation
import NIOCore
import StrataClient
import StrataWire

extension ImageStore {
    /// Stores a blob from `chunks` as they arrive, never holding it whole: written to
    /// `uploads/<id>` while its digest is computed, then renamed to `blobs/sha256/<hex>` if the
    /// digest is `expected` (when given) and the size `expectedSize` (when given). A mismatch
    /// deletes the upload and throws `digestInvalid` (`sizeInvalid`); a blob already in the store
    /// is kept as it is (and counts as written now, for garbage collection's grace period).
    @discardableResult
    public func putBlob<Chunks: AsyncSequence>(
        _ chunks: Chunks, expected: Digest? = nil, expectedSize: UInt64? = nil
    ) async throws -> (digest: Digest, size: UInt64) where Chunks.Element == ByteBuffer {
        let path = uploadPath(Self.newUploadId())
        var hasher = SHA256Hasher()
        do {
            let stream = try await client.create(path, overwrite: false, replication: options.replication)
            try await write(chunks, hasher: &hasher) { stream }
            try await stream.close()
        } catch {
            await discard(path)
            throw error
        }
        return try await placeBlob(from: path, hasher: hasher, expected: expected, expectedSize: expectedSize)
    }

    /// Stores bytes already in memory (a manifest, a config).
    @discardableResult
    public func putBlob(_ bytes: [UInt8], expected: Digest? = nil) async throws -> (digest: Digest, size: UInt64) {
        try await putBlob(ByteBufferChunks([ByteBuffer(bytes: bytes)]), expected: expected)
    }

    /// The size of a blob in the store, or nil if it is not there.
    public func blobInfo(_ digest: Digest) async throws -> UInt64? {
        guard let status = try await client.status(blobPath(digest)), status.kind != .directory else { return nil }
        return status.length
    }

    /// A reader of a blob, or of `range` of it (HTTP Range). Throws `blobUnknown` if it is not
    /// in the store, `rangeInvalid` for a range that starts past its end.
    public func openBlob(_ digest: Digest, range: Range<UInt64>? = nil) async throws -> BlobReader {
        guard let size = try await blobInfo(digest) else { throw ImageStoreError.blobUnknown(digest) }
        var delivered = 0..<size
        if let range {
            guard range.lowerBound < size || (range.lowerBound == 0 && size == 0) else {
                throw ImageStoreError.rangeInvalid("bytes from \(range.lowerBound) are past the end of \(digest) (\(size) bytes)")
            }
            delivered = range.lowerBound..<min(range.upperBound, size)
        }
        return BlobReader(client: client, path: blobPath(digest), digest: digest, size: size, range: delivered)
    }

    /// A whole blob in memory, verified: for manifests and configs, at most `maximumBytes`.
    public func readBlob(_ digest: Digest, maximumBytes: Int = Manifest.maximumBytes) async throws -> [UInt8] {
        let reader = try await openBlob(digest)
        guard reader.size <= UInt64(maximumBytes) else {
            throw ImageStoreError.sizeInvalid("blob \(digest) has \(reader.size) bytes, more than the \(maximumBytes) read whole")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(reader.size))
        try await reader.read { buffer in bytes += buffer.readableBytesView }
        return bytes
    }

    /// Streams `chunks` into the stream `open` gives (called at the first byte), hashing them.
    func write<Chunks: AsyncSequence>(
        _ chunks: Chunks, hasher: inout SHA256Hasher, open: () async throws -> DFSOutputStream
    ) async throws where Chunks.Element == ByteBuffer {
        var stream: DFSOutputStream?
        for try await chunk in chunks where chunk.readableBytes > 0 {
            guard hasher.count + UInt64(chunk.readableBytes) <= options.maximumBlobBytes else {
                throw ImageStoreError.sizeInvalid("a blob may have at most \(options.maximumBlobBytes) bytes")
            }
            if stream == nil { stream = try await open() }
            hasher.update(chunk)
            try await stream!.write(chunk)
        }
    }

    /// Checks a finished upload's digest and size, and renames it into place (or, when the blob
    /// is there already, deletes it and marks the blob as written now). A mismatch deletes it.
    func placeBlob(
        from path: String, hasher: SHA256Hasher, expected: Digest?, expectedSize: UInt64?
    ) async throws -> (digest: Digest, size: UInt64) {
        let digest = hasher.finalize()
        let size = hasher.count
        if let expectedSize, expectedSize != size {
            await discard(path)
            throw ImageStoreError.sizeInvalid("received \(size) bytes, but \(expectedSize) were declared")
        }
        if let expected, expected != digest {
            await discard(path)
            throw ImageStoreError.digestInvalid("the bytes received have digest \(digest), not \(expected)")
        }
        let destination = blobPath(digest)
        do {
            try await client.rename(path, to: destination, overwrite: false)
        } catch let error as RemoteException where error.exceptionClass == .fileAlreadyExists {
            // Identical content is stored once.
            await discard(path)
            let now = clock.wallTimeMs
            try await client.setTimes(destination, modificationTimeMs: now, accessTimeMs: now)
        }
        return (digest, size)
    }

    /// Deletes an upload file after a failure; a failure here is only logged (the upload is
    /// abandoned, and garbage collection removes it later).
    func discard(_ path: String) async {
        do {
            try await client.delete(path, recursive: false)
        } catch {
            logger.warning("could not delete an upload", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    static func newUploadId() -> String { UUID().uuidString.lowercased() }
}

/// Reads a blob, or a range of it, from the DFS in buffers of about a megabyte. Reading the
/// whole blob also verifies it: the bytes are hashed as they go by, and `read` throws
/// `digestInvalid` at the end if they are not the blob's digest. The bytes were handed over by
/// then: a caller that must not keep unverified bytes writes them aside and keeps them only
/// once `read` returns. A range cannot be verified on its own (the DFS's checksums still are).
public struct BlobReader: Sendable {
    let client: DFSClient
    let path: String
    public let digest: Digest
    /// The whole blob's size.
    public let size: UInt64
    /// The bytes `read` delivers.
    public let range: Range<UInt64>

    /// Whether `read` delivers the whole blob (and so verifies it).
    public var isWhole: Bool { range == 0..<size }

    /// Hands the bytes to `sink` in order.
    public func read(into sink: (ByteBuffer) async throws -> Void) async throws {
        var hasher = SHA256Hasher()
        let verify = isWhole
        let count = try await client.readBuffers(path, offset: range.lowerBound, length: UInt64(range.count)) { buffer in
            if verify { hasher.update(buffer) }
            try await sink(buffer)
        }
        guard count == UInt64(range.count) else {
            throw ImageStoreError.sizeInvalid("blob \(digest) ended after \(count) of \(range.count) bytes")
        }
        if verify, hasher.finalize() != digest {
            throw ImageStoreError.digestInvalid("blob \(digest) in the store reads back with digest \(hasher.finalize())")
        }
    }
}

/// An async sequence of buffers already in memory.
public struct ByteBufferChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let buffers: [ByteBuffer]

    public init(_ buffers: [ByteBuffer]) {
        self.buffers = buffers
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: IndexingIterator<[ByteBuffer]>
        public mutating func next() async -> ByteBuffer? { remaining.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: buffers.makeIterator()) }
}
