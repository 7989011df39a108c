import Foundation
import StrataWire

extension ImageStore {
    /// What a garbage collection did.
    public struct GarbageCollectionReport: Sendable, Equatable, Codable {
        /// Blobs deleted, with their sizes.
        public var removedBlobs: [RemovedBlob] = []
        /// Unreferenced blobs kept because they were written within the grace period.
        public var keptRecent = 0
        /// Abandoned uploads deleted.
        public var removedUploads: [String] = []

        public var freedBytes: UInt64 { removedBlobs.map(\.size).reduce(0, +) }

        public struct RemovedBlob: Sendable, Equatable, Codable {
            public var digest: Digest
            public var size: UInt64
        }
    }

    /// Deletes the blobs no manifest of any repository names, except those written within
    /// `options.garbageGraceSeconds`; never a blob still referenced (each is checked again
    /// against the index, under the gate, right before it goes), never one being uploaded
    /// (those are under `uploads/` until they are complete). Uploads untouched for
    /// `options.abandonedUploadSeconds` are deleted too. After `removeImage`, pass what it
    /// removed: the blobs it released are freed at once, grace period or not, unless they were
    /// written again since.
    public func collectGarbage(after removed: RemovedImage? = nil) async throws -> GarbageCollectionReport {
        let nowMs = clock.wallTimeMs
        var blobs: [GarbageCollectionPlan.Blob] = []
        for entry in try await client.list(blobsDirectory) where entry.kind != .directory {
            guard let digest = Digest("sha256:" + (entry.path as NSString).lastPathComponent) else {
                logger.warning("ignoring a file in the blob store that is not named by a digest", metadata: ["path": "\(entry.path)"])
                continue
            }
            blobs.append(.init(digest: digest, size: entry.length, modifiedMs: entry.modificationTimeMs))
        }
        let plan = GarbageCollectionPlan.unreferenced(
            blobs, referenced: index.referencedBlobs, nowMs: nowMs, graceMs: Int64(options.garbageGraceSeconds * 1000),
            released: removed?.released ?? [], releasedMs: removed?.releasedMs ?? 0)
        var report = GarbageCollectionReport(keptRecent: plan.keptRecent)
        for blob in plan.delete {
            let removed = try await gate.withLock { () async throws -> Bool in
                guard !index.referencedBlobs.contains(blob.digest) else { return false }
                return try await client.delete(blobPath(blob.digest), recursive: false)
            }
            if removed { report.removedBlobs.append(.init(digest: blob.digest, size: blob.size)) }
        }

        let abandonedMs = Int64(options.abandonedUploadSeconds * 1000)
        for entry in try await client.list(uploadsDirectory) where entry.kind != .directory && nowMs - entry.modificationTimeMs >= abandonedMs {
            let id = (entry.path as NSString).lastPathComponent
            let inUse = uploads.withLock { $0[id]?.busy == true }
            guard !inUse else { continue }
            uploads.withLock { $0[id] = nil }
            if try await client.delete(entry.path, recursive: false) { report.removedUploads.append(id) }
        }
        if !report.removedBlobs.isEmpty {
            logger.info("image store garbage collected", metadata: [
                "blobs": "\(report.removedBlobs.count)", "bytes": "\(report.freedBytes)", "uploads": "\(report.removedUploads.count)"])
        }
        return report
    }
}
