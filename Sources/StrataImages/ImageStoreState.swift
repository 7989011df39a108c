/// The image store's index: which repositories there are, the manifests each holds and the tags
/// that point to them. A value that only decides and applies: `ImageStore` (the shell) logs the
/// records a decision returns to the DFS, then applies them; replaying the same records
/// rebuilds the same state after a restart.
public struct ImageStoreState: Codable, Equatable, Sendable {
    /// What the index keeps about a manifest in a repository.
    public struct ManifestEntry: Codable, Equatable, Sendable {
        public var mediaType: String
        public var size: UInt64
        /// Config and layers (an image manifest).
        public var blobs: [Digest]
        /// Child manifests (an index), which are manifests of the same repository.
        public var children: [Digest]
        /// The config's and layers' bytes, as the manifest gives them.
        public var blobBytes: UInt64
        /// When it was pushed (wall clock, milliseconds since the epoch; shown, never decided on).
        public var pushedMs: Int64

        public init(mediaType: String, size: UInt64, blobs: [Digest], children: [Digest], blobBytes: UInt64, pushedMs: Int64) {
            self.mediaType = mediaType
            self.size = size
            self.blobs = blobs
            self.children = children
            self.blobBytes = blobBytes
            self.pushedMs = pushedMs
        }

        /// The manifest's own bytes and its blobs'.
        public var contentBytes: UInt64 { size + blobBytes }
    }

    public struct Repository: Codable, Equatable, Sendable {
        public var manifests: [Digest: ManifestEntry] = [:]
        public var tags: [String: Digest] = [:]
    }

    /// One change, as logged.
    public enum Record: Codable, Equatable, Sendable {
        /// A manifest is in the repository (again), and `tag`, if any, points to it.
        case manifestPut(repository: String, digest: Digest, entry: ManifestEntry, tag: String?)
        case tagDeleted(repository: String, tag: String)
        /// The manifest leaves the repository with every tag pointing to it.
        case manifestDeleted(repository: String, digest: Digest)
    }

    public private(set) var repositories: [String: Repository] = [:]

    public init() {}

    // MARK: - Applying

    public mutating func apply(_ record: Record) {
        switch record {
        case .manifestPut(let name, let digest, let entry, let tag):
            repositories[name, default: Repository()].manifests[digest] = entry
            if let tag { repositories[name]!.tags[tag] = digest }
        case .tagDeleted(let name, let tag):
            repositories[name]?.tags[tag] = nil
        case .manifestDeleted(let name, let digest):
            guard var repository = repositories[name] else { return }
            repository.manifests[digest] = nil
            repository.tags = repository.tags.filter { $0.value != digest }
            // A repository is there while it holds a manifest.
            repositories[name] = repository.manifests.isEmpty ? nil : repository
        }
    }

    // MARK: - Deciding

    /// Records that put a manifest into a repository (tagged, when the reference is a tag). The
    /// children of an index must be manifests of the repository already; that its blobs are
    /// in the store is the shell's to check.
    public func putManifest(
        repository name: String, reference: ManifestReference, manifest: Manifest, pushedMs: Int64
    ) throws(ImageStoreError) -> [Record] {
        try ImageNames.validateRepository(name)
        var tag: String?
        switch reference {
        case .tag(let text): tag = text
        case .digest(let digest):
            guard digest == manifest.digest else {
                throw .digestInvalid("the manifest's digest is \(manifest.digest), not \(digest) as its reference says")
            }
        }
        let existing = repositories[name]?.manifests ?? [:]
        for child in manifest.children where existing[child.digest] == nil {
            throw .manifestBlobUnknown(child.digest)
        }
        let entry = ManifestEntry(
            mediaType: manifest.mediaType, size: UInt64(manifest.bytes.count), blobs: manifest.blobs.map(\.digest),
            children: manifest.children.map(\.digest), blobBytes: manifest.blobs.map(\.size).reduce(0, +), pushedMs: pushedMs)
        return [.manifestPut(repository: name, digest: manifest.digest, entry: entry, tag: tag)]
    }

    /// Records that remove a tag.
    public func deleteTag(repository name: String, tag: String) throws(ImageStoreError) -> [Record] {
        let repository = try self.repository(name)
        guard repository.tags[tag] != nil else { throw .manifestUnknown("no tag \(tag) in \(name)") }
        return [.tagDeleted(repository: name, tag: tag)]
    }

    /// Records that remove a manifest (and its tags) from a repository. Refused while an index
    /// of the repository names it: its layers would be collected from under the index.
    public func deleteManifest(repository name: String, digest: Digest) throws(ImageStoreError) -> [Record] {
        let repository = try self.repository(name)
        guard repository.manifests[digest] != nil else { throw .manifestUnknown("no manifest \(digest) in \(name)") }
        if let parent = repository.manifests.first(where: { $0.value.children.contains(digest) }) {
            throw .unsupported("manifest \(digest) is named by the index \(parent.key) in \(name); delete that first")
        }
        return [.manifestDeleted(repository: name, digest: digest)]
    }

    /// Records that remove a tag, and the manifest it pointed to when nothing else in the
    /// repository (another tag, an index) keeps it, and likewise an index's children.
    public func removeImage(repository name: String, tag: String) throws(ImageStoreError) -> [Record] {
        let repository = try self.repository(name)
        guard let digest = repository.tags[tag] else { throw .manifestUnknown("no tag \(tag) in \(name)") }
        var records: [Record] = [.tagDeleted(repository: name, tag: tag)]
        var after = self
        after.apply(records[0])
        var candidates = [digest]
        while let candidate = candidates.popLast() {
            guard let current = after.repositories[name], let entry = current.manifests[candidate],
                !current.tags.values.contains(candidate),
                !current.manifests.values.contains(where: { $0.children.contains(candidate) })
            else { continue }
            let record = Record.manifestDeleted(repository: name, digest: candidate)
            records.append(record)
            after.apply(record)
            candidates += entry.children
        }
        return records
    }

    // MARK: - Reading

    public func repository(_ name: String) throws(ImageStoreError) -> Repository {
        try ImageNames.validateRepository(name)
        guard let repository = repositories[name] else { throw .nameUnknown("no repository \(name)") }
        return repository
    }

    /// The digest a reference names in a repository.
    public func resolve(repository name: String, reference: ManifestReference) throws(ImageStoreError) -> (Digest, ManifestEntry) {
        let repository = try self.repository(name)
        let digest: Digest
        switch reference {
        case .tag(let tag):
            guard let tagged = repository.tags[tag] else { throw .manifestUnknown("no tag \(tag) in \(name)") }
            digest = tagged
        case .digest(let given):
            digest = given
        }
        guard let entry = repository.manifests[digest] else { throw .manifestUnknown("no manifest \(digest) in \(name)") }
        return (digest, entry)
    }

    /// Every blob some manifest of some repository needs: the manifests themselves, their
    /// configs and layers.
    public var referencedBlobs: Set<Digest> {
        var referenced = Set<Digest>()
        for repository in repositories.values {
            for (digest, entry) in repository.manifests {
                referenced.insert(digest)
                referenced.formUnion(entry.blobs)
                referenced.formUnion(entry.children)
            }
        }
        return referenced
    }

    /// Sorted names after `last`, at most `limit` of them (nil: all), and whether more follow.
    public static func page(_ names: some Sequence<String>, limit: Int?, after last: String?) -> (names: [String], more: Bool) {
        let following = names.sorted().filter { last == nil || $0 > last! }
        guard let limit, following.count > limit else { return (following, false) }
        return (Array(following.prefix(max(0, limit))), true)
    }
}

/// What garbage collection deletes, decided from a listing of the blobs and the index.
public enum GarbageCollectionPlan {
    public struct Blob: Equatable, Sendable {
        public var digest: Digest
        public var size: UInt64
        /// When the blob was last written (wall clock, milliseconds since the epoch).
        public var modifiedMs: Int64

        public init(digest: Digest, size: UInt64, modifiedMs: Int64) {
            self.digest = digest
            self.size = size
            self.modifiedMs = modifiedMs
        }
    }

    /// Blobs no manifest references and written at least `graceMs` before `nowMs` (a blob
    /// written more recently may be about to be named by a manifest being pushed); and how
    /// many unreferenced blobs are kept for being recent. A blob in `released` (what an image
    /// just removed referenced) goes despite the grace period if it was last written at or
    /// before `releasedMs`, when it was let go: it was referenced then, so it is no upload
    /// waiting for its manifest, unless written again since.
    public static func unreferenced(
        _ blobs: [Blob], referenced: Set<Digest>, nowMs: Int64, graceMs: Int64, released: Set<Digest> = [], releasedMs: Int64 = 0
    ) -> (delete: [Blob], keptRecent: Int) {
        var delete: [Blob] = []
        var keptRecent = 0
        for blob in blobs where !referenced.contains(blob.digest) {
            if nowMs - blob.modifiedMs >= graceMs || (released.contains(blob.digest) && blob.modifiedMs <= releasedMs) {
                delete.append(blob)
            } else {
                keptRecent += 1
            }
        }
        return (delete.sorted { $0.digest < $1.digest }, keptRecent)
    }
}
