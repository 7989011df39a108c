import Foundation
import NIOCore
import StrataClient
import StrataCore
import StrataWire

extension ImageStore {
    /// Starts a resumable upload (the registry's POST): an empty file under `uploads/`. Returns
    /// its id.
    public func startUpload() async throws -> String {
        let id = Self.newUploadId()
        try await client.createEmpty(uploadPath(id), overwrite: false, replication: options.replication)
        uploads.withLock { $0[id] = UploadSession(busy: false) }
        return id
    }

    /// The bytes an upload has so far (the registry's GET of an upload, and the `Range` it
    /// answers with). After a restart the upload's hash is computed again from its file.
    public func uploadLength(_ id: String) async throws -> UInt64 {
        let session = try await claim(id)
        release(id, session)
        return session.hasher.count
    }

    /// Appends `chunks` to an upload (the registry's PATCH) and returns its new length. With
    /// `offset`, the chunk must start where the upload ends (else `rangeInvalid`, nothing
    /// written). Chunks of one upload are taken one at a time: another while one is being
    /// written waits for it (for at most `uploadBusyWaitSeconds`, then `blobUploadInvalid`).
    @discardableResult
    public func appendUpload<Chunks: AsyncSequence>(
        _ id: String, _ chunks: Chunks, at offset: UInt64? = nil
    ) async throws -> UInt64 where Chunks.Element == ByteBuffer {
        var session = try await claim(id)
        if let offset, offset != session.hasher.count {
            release(id, session)
            throw ImageStoreError.rangeInvalid("upload \(id) has \(session.hasher.count) bytes; a chunk must start there, not at \(offset)")
        }
        var stream: DFSOutputStream?
        do {
            try await write(chunks, hasher: &session.hasher) {
                stream = try await client.append(uploadPath(id))
                return stream!
            }
            try await stream?.close()
        } catch {
            // What reached the file is unknown: the next call reads it back.
            release(id, nil)
            throw error
        }
        release(id, session)
        return session.hasher.count
    }

    /// Finishes an upload (the registry's PUT): its bytes must have `digest`, else the upload is
    /// deleted and `digestInvalid` thrown; otherwise it becomes the blob.
    @discardableResult
    public func finishUpload(_ id: String, digest: Digest) async throws -> (digest: Digest, size: UInt64) {
        let session = try await claim(id)
        do {
            let placed = try await placeBlob(from: uploadPath(id), hasher: session.hasher, expected: digest, expectedSize: nil)
            release(id, nil)
            return placed
        } catch {
            // Deleted (a digest that did not match), or in a state the next call reads back.
            release(id, nil)
            throw error
        }
    }

    /// Abandons an upload (the registry's DELETE) and deletes its file.
    public func cancelUpload(_ id: String) async throws {
        try Self.validateUploadId(id)
        release(id, nil)
        guard try await client.delete(uploadPath(id), recursive: false) else {
            throw ImageStoreError.blobUploadUnknown("no upload \(id)")
        }
    }

    /// Takes an upload's session for one call: from memory, or after a restart by hashing its
    /// file again (taking the file back from a writer that died mid-chunk first). While another
    /// call holds it (a chunk being written, perhaps by a client whose connection just broke),
    /// waits for it, within `uploadBusyWaitSeconds`.
    func claim(_ id: String) async throws -> UploadSession {
        let deadline = clock.now + .seconds(Self.uploadBusyWaitSeconds)
        while true {
            let seen = uploadReleases.count
            do {
                return try await claimOnce(id)
            } catch ImageStoreError.blobUploadInvalid(let message) where clock.now < deadline && message.hasPrefix(Self.busyMessage) {
                await clock.wait(for: uploadReleases, after: seen, until: deadline)
            }
        }
    }

    /// How long a call waits for another call on the same upload to end.
    static let uploadBusyWaitSeconds = 10.0
    static let busyMessage = "a chunk is being written to upload"

    private func claimOnce(_ id: String) async throws -> UploadSession {
        try Self.validateUploadId(id)
        enum Claim { case known(UploadSession), busy, unknown }
        let claim = uploads.withLock { uploads -> Claim in
            guard var session = uploads[id] else {
                uploads[id] = UploadSession(busy: true)
                return .unknown
            }
            if session.busy { return .busy }
            session.busy = true
            uploads[id] = session
            return .known(session)
        }
        switch claim {
        case .known(let session): return session
        case .busy: throw ImageStoreError.blobUploadInvalid("\(Self.busyMessage) \(id)")
        case .unknown: break
        }
        do {
            let path = uploadPath(id)
            guard let status = try await client.status(path), status.kind != .directory else {
                throw ImageStoreError.blobUploadUnknown("no upload \(id)")
            }
            if status.underConstruction { try await takeBack(path) }
            var session = UploadSession(busy: true)
            try await client.readBuffers(path) { session.hasher.update($0) }
            return session
        } catch {
            release(id, nil)
            throw error
        }
    }

    /// Gives an upload's session back after a call; nil forgets it (the next call reads the
    /// file again).
    func release(_ id: String, _ session: UploadSession?) {
        uploads.withLock { uploads in
            guard var session else {
                uploads[id] = nil
                return
            }
            session.busy = false
            uploads[id] = session
        }
        uploadReleases.signal()
    }

    /// Closes a file a dead writer left open, within a bound.
    private func takeBack(_ path: String) async throws {
        let deadline = clock.now + .seconds(Self.uploadRecoverySeconds)
        while try await !client.recoverLease(path) {
            guard clock.now < deadline else {
                throw ImageStoreError.blobUploadInvalid("the upload's last chunk is still being recovered; try again")
            }
            try await clock.sleep(milliseconds: 100)
        }
    }

    /// How long resuming an upload waits for the file system to close its last chunk.
    static let uploadRecoverySeconds = 10.0

    /// Upload ids are UUIDs, so an id from a request never reaches a path as anything else.
    static func validateUploadId(_ id: String) throws(ImageStoreError) {
        guard id.utf8.count == 36, UUID(uuidString: id) != nil, id == id.lowercased() else {
            throw .blobUploadUnknown("no upload \(id)")
        }
    }
}
