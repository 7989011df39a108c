import Foundation

extension ImageStore {
    /// A manifest as stored: its exact bytes, digest and media type.
    public struct StoredManifest: Sendable, Equatable {
        public var digest: Digest
        public var mediaType: String
        public var bytes: [UInt8]
    }

    /// Puts a manifest into a repository under `reference` (a tag, or its own digest) and
    /// returns its digest. Refused: bytes that are not a manifest (`manifestInvalid`), a
    /// manifest naming a blob the store does not have or of another size, or a child manifest
    /// the repository does not have (`manifestBlobUnknown`), a digest reference that is not the
    /// manifest's (`digestInvalid`). The bytes are stored as they are, as a blob.
    @discardableResult
    public func putManifest(
        repository: String, reference: ManifestReference, bytes: [UInt8], mediaType: String?
    ) async throws -> Digest {
        try ImageNames.validateRepository(repository)
        let manifest = try Manifest(bytes: bytes, declaredMediaType: mediaType)
        if case .digest(let digest) = reference, digest != manifest.digest {
            throw ImageStoreError.digestInvalid("the manifest's digest is \(manifest.digest), not \(digest) as its reference says")
        }
        return try await gate.withLock {
            // Under the gate, garbage collection deletes nothing between these checks and the record.
            for blob in manifest.blobs {
                guard let size = try await blobInfo(blob.digest) else { throw ImageStoreError.manifestBlobUnknown(blob.digest) }
                guard size == blob.size else {
                    throw ImageStoreError.manifestInvalid("the manifest gives \(blob.digest) a size of \(blob.size) bytes; the blob has \(size)")
                }
            }
            try await putBlob(manifest.bytes, expected: manifest.digest)
            let now = clock.wallTimeMs
            try await commit { state throws(ImageStoreError) in
                try state.putManifest(repository: repository, reference: reference, manifest: manifest, pushedMs: now)
            }
            return manifest.digest
        }
    }

    /// What the index says of a manifest (for HEAD): its digest and entry, without reading it.
    public func manifestEntry(
        repository: String, reference: ManifestReference
    ) throws(ImageStoreError) -> (digest: Digest, entry: ImageStoreState.ManifestEntry) {
        try state.withLock { state throws(ImageStoreError) in try state.resolve(repository: repository, reference: reference) }
    }

    /// A manifest by tag or digest, read from its blob and verified.
    public func getManifest(repository: String, reference: ManifestReference) async throws -> StoredManifest {
        let (digest, entry) = try manifestEntry(repository: repository, reference: reference)
        let bytes: [UInt8]
        do {
            bytes = try await readBlob(digest)
        } catch ImageStoreError.blobUnknown {
            throw ImageStoreError.manifestUnknown("manifest \(digest) of \(repository) is missing from the blob store")
        }
        return StoredManifest(digest: digest, mediaType: entry.mediaType, bytes: bytes)
    }

    /// Removes a tag; the manifest stays in the repository (by digest).
    public func deleteTag(repository: String, tag: String) async throws {
        _ = try await gate.withLock {
            try await commit { state throws(ImageStoreError) in try state.deleteTag(repository: repository, tag: tag) }
        }
    }

    /// Removes a manifest and its tags from a repository (its blobs stay until garbage
    /// collection finds nothing else names them).
    public func deleteManifest(repository: String, digest: Digest) async throws {
        _ = try await gate.withLock {
            try await commit { state throws(ImageStoreError) in try state.deleteManifest(repository: repository, digest: digest) }
        }
    }

    /// What `removeImage` took out of the index.
    public struct RemovedImage: Sendable, Equatable {
        /// The manifests that left the repository.
        public var manifests: [Digest]
        /// Everything those manifests referenced (themselves included): the blobs garbage
        /// collection may now free, if no other manifest names them.
        public var released: Set<Digest>
        /// When they were let go (wall clock, milliseconds since the epoch).
        public var releasedMs: Int64

        public init(manifests: [Digest] = [], released: Set<Digest> = [], releasedMs: Int64 = 0) {
            self.manifests = manifests
            self.released = released
            self.releasedMs = releasedMs
        }

        /// Both removals, as of the later one.
        public func merging(_ other: RemovedImage) -> RemovedImage {
            RemovedImage(manifests: manifests + other.manifests, released: released.union(other.released), releasedMs: max(releasedMs, other.releasedMs))
        }
    }

    /// Removes a tag, and the manifests nothing else in the repository keeps (the one it named,
    /// and an index's children). `collectGarbage(after:)` then frees the blobs no other
    /// manifest names, without waiting out the grace period for them.
    @discardableResult
    public func removeImage(repository: String, tag: String) async throws -> RemovedImage {
        try await gate.withLock {
            let before = index
            let now = clock.wallTimeMs
            let records = try await commit { state throws(ImageStoreError) in try state.removeImage(repository: repository, tag: tag) }
            var removed = RemovedImage(releasedMs: now)
            for case .manifestDeleted(_, let digest) in records {
                removed.manifests.append(digest)
                removed.released.insert(digest)
                if let entry = before.repositories[repository]?.manifests[digest] {
                    removed.released.formUnion(entry.blobs + entry.children)
                }
            }
            return removed
        }
    }

    /// An image ready to run: the manifest for a platform (through an index, if the reference
    /// names one) and its config.
    public struct ResolvedImage: Sendable, Equatable {
        public var repository: String
        /// The image manifest's digest (not the index's).
        public var digest: Digest
        public var mediaType: String
        public var manifest: OCIImageManifest
        /// The index the manifest was chosen from, if any.
        public var indexDigest: Digest?
        public var configuration: OCIImageConfiguration
        public var layers: [Descriptor] { manifest.layers }
    }

    /// The manifest and config of an image for `platform` (default linux/amd64), following an
    /// index to the platform's manifest: what an agent needs to run it.
    public func resolve(repository: String, reference: ManifestReference, platform: Platform = .linuxAMD64) async throws -> ResolvedImage {
        var stored = try await getManifest(repository: repository, reference: reference)
        var manifest = try Manifest(bytes: stored.bytes, declaredMediaType: stored.mediaType)
        var indexDigest: Digest?
        if let index = manifest.index {
            let child = try Self.choose(platform, from: index.manifests, in: "\(repository)@\(stored.digest)")
            indexDigest = stored.digest
            stored = try await getManifest(repository: repository, reference: .digest(child.digest))
            manifest = try Manifest(bytes: stored.bytes, declaredMediaType: stored.mediaType)
        }
        guard let image = manifest.image else {
            throw ImageStoreError.unsupported("\(repository)@\(stored.digest) is an index inside an index")
        }
        let configuration = try OCIImageConfiguration.decode(try await readBlob(image.config.digest))
        return ResolvedImage(
            repository: repository, digest: stored.digest, mediaType: stored.mediaType, manifest: image, indexDigest: indexDigest,
            configuration: configuration)
    }

    /// The entry of an index for a platform: same OS and architecture, and variant when the
    /// platform names one; an index with a single entry without a platform is taken as it is.
    static func choose(_ platform: Platform, from manifests: [Descriptor], in name: String) throws(ImageStoreError) -> Descriptor {
        if let match = manifests.first(where: { candidate in
            guard let candidatePlatform = candidate.platform else { return false }
            return candidatePlatform.os == platform.os && candidatePlatform.architecture == platform.architecture
                && (platform.variant == nil || candidatePlatform.variant == platform.variant)
        }) {
            return match
        }
        if manifests.count == 1, manifests[0].platform == nil { return manifests[0] }
        let offered = manifests.compactMap { $0.platform?.description }
        throw .manifestUnknown("\(name) has no manifest for \(platform) (it has: \(offered.isEmpty ? "none" : offered.joined(separator: ", ")))")
    }
}
