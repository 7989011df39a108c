import Foundation
import NIOCore
import StrataCore

extension ImageStore {
    /// What a push did.
    public struct PushReport: Sendable, Equatable, Codable {
        public var repository: String
        public var tag: String
        /// The pushed manifest's (or index's) digest.
        public var digest: Digest
        public var mediaType: String
        /// Blobs written now.
        public var storedBlobs: [Digest] = []
        /// Blobs that were in the store already (stored once, shared).
        public var existingBlobs: [Digest] = []
        public var storedBytes: UInt64 = 0
    }

    /// Pushes a local image: each blob not yet in the store (verified against its digest as it
    /// streams), then the manifests, children first, the image's under `tag`.
    @discardableResult
    public func push(
        _ source: ImageSource, repository: String, tag: String, progress: (Digest, UInt64) -> Void = { _, _ in }
    ) async throws -> PushReport {
        try ImageNames.validateRepository(repository)
        try ImageNames.validateTag(tag)
        let top = source.top
        var report = PushReport(repository: repository, tag: tag, digest: top.digest, mediaType: top.mediaType)
        for manifest in source.manifests {
            for blob in manifest.blobs where !report.storedBlobs.contains(blob.digest) && !report.existingBlobs.contains(blob.digest) {
                guard let range = source.blobs[blob.digest] else { throw ImageSourceError("the image names blob \(blob.digest), which it does not hold") }
                if let size = try await blobInfo(blob.digest), size == blob.size {
                    report.existingBlobs.append(blob.digest)
                    continue
                }
                try await putBlob(range.chunks(), expected: blob.digest, expectedSize: blob.size)
                report.storedBlobs.append(blob.digest)
                report.storedBytes += blob.size
                progress(blob.digest, blob.size)
            }
            let reference: ManifestReference = manifest.digest == top.digest ? .tag(tag) : .digest(manifest.digest)
            try await putManifest(repository: repository, reference: reference, bytes: manifest.bytes, mediaType: manifest.mediaType)
        }
        return report
    }

    /// What a pull wrote.
    public struct PullReport: Sendable, Equatable, Codable {
        /// The digest of the manifest (or index) in the layout.
        public var digest: Digest
        public var mediaType: String
        /// The digest in the store, when it differs: a Docker schema 2 manifest is written to
        /// the layout as the OCI manifest it converts to.
        public var storedDigest: Digest?
        /// Config and layer blobs written, and their bytes.
        public var blobs: Int
        public var bytes: UInt64
    }

    /// Writes an image as an OCI image layout in `directory` (created if needed; an existing
    /// layout keeps its other images): every manifest and blob under `blobs/sha256/`, each
    /// verified against its digest before it takes its name, and an `index.json` entry
    /// naming the image `reference`'s tag. Configs and layers are written as they are stored;
    /// a Docker schema 2 manifest or manifest list becomes the OCI manifest or index it
    /// converts to (what `skopeo copy` to a layout does), as tools read only those from a layout.
    @discardableResult
    public func pull(repository: String, reference: ManifestReference, to directory: String) async throws -> PullReport {
        let top = try await getManifest(repository: repository, reference: reference)
        let blobsDirectory = directory + "/blobs/sha256"
        try FileManager.default.createDirectory(atPath: blobsDirectory, withIntermediateDirectories: true)
        var report = PullReport(digest: top.digest, mediaType: top.mediaType, blobs: 0, bytes: 0)
        var written = Set<Digest>()
        let descriptor = try await writeLayoutManifest(top, repository: repository, into: blobsDirectory, written: &written, report: &report, depth: 0)
        report.digest = descriptor.digest
        report.mediaType = descriptor.mediaType
        report.storedDigest = descriptor.digest == top.digest ? nil : top.digest
        let layoutPath = directory + "/oci-layout"
        if !FileManager.default.fileExists(atPath: layoutPath) {
            try Self.writeLayoutFile(Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: layoutPath)
        }
        var index = OCIImageIndex(mediaType: OCIMediaType.imageIndex, manifests: [])
        let indexPath = directory + "/index.json"
        if let existing = FileManager.default.contents(atPath: indexPath) {
            index = try JSONDecoder().decode(OCIImageIndex.self, from: existing)
        }
        var entry = descriptor
        if case .tag(let tag) = reference {
            entry.annotations = [Descriptor.refNameAnnotation: tag]
            index.manifests.removeAll { $0.annotations?[Descriptor.refNameAnnotation] == tag }
        }
        index.manifests.append(entry)
        try Self.writeLayoutFile(Array(try JSONEncoder.canonical.encode(index)), to: indexPath)
        return report
    }

    /// Writes a manifest's blobs (an index's manifests first) and then the manifest, converted
    /// to OCI if it is Docker's; returns its descriptor in the layout.
    private func writeLayoutManifest(
        _ stored: StoredManifest, repository: String, into blobsDirectory: String, written: inout Set<Digest>, report: inout PullReport,
        depth: Int
    ) async throws -> Descriptor {
        guard depth < 4 else { throw ImageStoreError.unsupported("indexes nested too deep in \(repository)") }
        let manifest = try Manifest(bytes: stored.bytes, declaredMediaType: stored.mediaType)
        var bytes = stored.bytes
        var mediaType = stored.mediaType
        switch manifest.content {
        case .image(var image):
            for blob in manifest.blobs where !written.contains(blob.digest) {
                report.bytes += try await download(blob.digest, to: blobsDirectory + "/" + blob.digest.hex)
                report.blobs += 1
                written.insert(blob.digest)
            }
            if stored.mediaType == OCIMediaType.dockerManifest {
                image.mediaType = OCIMediaType.imageManifest
                image.config.mediaType = Self.ociMediaType(image.config.mediaType)
                for position in image.layers.indices { image.layers[position].mediaType = Self.ociMediaType(image.layers[position].mediaType) }
                bytes = Array(try JSONEncoder.canonical.encode(image))
                mediaType = OCIMediaType.imageManifest
            }
        case .index(var index):
            var changed = stored.mediaType == OCIMediaType.dockerManifestList
            for position in index.manifests.indices {
                let child = try await getManifest(repository: repository, reference: .digest(index.manifests[position].digest))
                let written = try await writeLayoutManifest(
                    child, repository: repository, into: blobsDirectory, written: &written, report: &report, depth: depth + 1)
                if written.digest != child.digest {
                    changed = true
                    index.manifests[position].digest = written.digest
                    index.manifests[position].size = written.size
                    index.manifests[position].mediaType = written.mediaType
                }
            }
            if changed {
                index.mediaType = OCIMediaType.imageIndex
                bytes = Array(try JSONEncoder.canonical.encode(index))
                mediaType = OCIMediaType.imageIndex
            }
        }
        let digest = Digest.of(bytes)
        try Self.writeLayoutFile(bytes, to: blobsDirectory + "/" + digest.hex)
        written.insert(digest)
        return Descriptor(mediaType: mediaType, digest: digest, size: UInt64(bytes.count))
    }

    /// The OCI media type of a Docker config or layer media type (others are kept).
    static func ociMediaType(_ dockerMediaType: String) -> String {
        switch dockerMediaType {
        case OCIMediaType.dockerConfig: OCIMediaType.imageConfig
        case OCIMediaType.dockerLayerTarGzip: OCIMediaType.layerTarGzip
        case OCIMediaType.dockerLayerTar: OCIMediaType.layerTar
        case OCIMediaType.dockerForeignLayerTarGzip: OCIMediaType.layerNondistributableTarGzip
        default: dockerMediaType
        }
    }

    /// Streams a blob into a local file (a temporary name, renamed once the digest checks out).
    func download(_ digest: Digest, to path: String) async throws -> UInt64 {
        let reader = try await openBlob(digest)
        let temporary = path + ".partial"
        let file = try LocalFile(path: temporary, mode: .createOrTruncate)
        do {
            var offset: UInt64 = 0
            try await reader.read { buffer in
                try buffer.withUnsafeReadableBytes { try file.write($0, at: offset) }
                offset += UInt64(buffer.readableBytes)
            }
            try file.close()
            // rename(2) replaces a file of an earlier pull in place.
            guard rename(temporary, path) == 0 else { throw SystemCallError(call: "rename", path: path, errorNumber: errno) }
            return offset
        } catch {
            try? file.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    static func writeLayoutFile(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
