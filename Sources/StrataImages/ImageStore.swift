import Foundation
import Logging
import NIOCore
import StrataClient
import StrataCore
import StrataWire
import Synchronization

/// Container images in the DFS, under `/system/images/` (docs/images.md):
///
/// - `blobs/sha256/<hex>`: every blob (layers, configs, manifests), stored once by its digest,
///   verified while it is written and while it is read;
/// - `uploads/<id>`: blobs being written, renamed into `blobs/` once their digest checks out;
/// - `index/`: the repositories, their manifests and tags, as a `DFSStateStore` (a snapshot
///   plus a log of `ImageStoreState.Record`s).
///
/// The index is kept in memory and changed only through records made durable first. One
/// process owns the index's log at a time (`open` takes it over); a store whose log another
/// process took over reads the index again and retries its change once, so the CLI and the
/// registry can take turns. Garbage collection deletes only blobs that no manifest names and
/// that are older than a grace period, so blobs pushed by another process just before their
/// manifest are safe.
public final class ImageStore: Sendable {
    public struct Options: Sendable {
        /// Where the store lives in the DFS.
        public var root = "/system/images"
        /// Blobs written less than this long ago are never collected, referenced or not: a
        /// client may be about to push the manifest that names them.
        public var garbageGraceSeconds: Double = 3600
        /// Uploads untouched this long are abandoned, and garbage collection removes them.
        public var abandonedUploadSeconds: Double = 7 * 24 * 3600
        /// A snapshot of the index is written after this many records (and on open).
        public var snapshotEveryRecords = 1000
        /// The largest blob the store takes.
        public var maximumBlobBytes: UInt64 = 64 << 30
        /// Replicas of blobs and the index; nil for the name node's default.
        public var replication: Int?

        public init() {}
    }

    public let client: DFSClient
    public let options: Options
    let clock: any Clock
    let logger: Logger
    let log: DFSStateStore
    let state = Mutex(ImageStoreState())
    let uploads = Mutex<[String: UploadSession]>([:])
    /// Signalled when a call gives an upload back: one waiting for it (a client retrying a chunk
    /// whose connection broke while the broken one is still being wound up) goes on.
    let uploadReleases = EventCounter()
    /// Index changes, opening, and garbage collection's deletes, one at a time.
    let gate = SerialGate()

    /// What the store knows of an upload between its chunks: the hash of the bytes so far.
    struct UploadSession {
        var hasher = SHA256Hasher()
        /// A chunk is being written (or the session being read back after a restart).
        var busy = true
    }

    public init(client: DFSClient, options: Options = Options(), clock: any Clock = SystemClock(), logger: Logger) {
        self.client = client
        self.options = options
        self.clock = clock
        self.logger = logger
        var storeOptions = DFSStateStore.Options()
        storeOptions.replication = options.replication
        self.log = DFSStateStore(client: client, directory: options.root + "/index", logger: logger, options: storeOptions)
    }

    var blobsDirectory: String { options.root + "/blobs/sha256" }
    var uploadsDirectory: String { options.root + "/uploads" }

    func blobPath(_ digest: Digest) -> String { blobsDirectory + "/" + digest.hex }
    func uploadPath(_ id: String) -> String { uploadsDirectory + "/" + id }

    // MARK: - Opening

    /// Creates the store's directories if needed, takes over the index's log and reads the
    /// index (snapshot and records), then writes a fresh snapshot if records followed the last.
    public func open() async throws {
        try await gate.withLock {
            try await client.mkdirs(blobsDirectory)
            try await client.mkdirs(uploadsDirectory)
            try await openIndex()
        }
    }

    /// Reads the index again from the DFS (taking its log back from another process), to see
    /// what another process changed.
    public func reload() async throws {
        try await gate.withLock {
            try? await log.close()
            try await openIndex()
        }
    }

    /// Reads the index again if another process has taken its log over since this store last
    /// read it (a `strata image` command run while the registry serves): a long-running owner
    /// then answers from the index as it is on the DFS, not from what it last wrote itself —
    /// otherwise it would not show an image pushed by the CLI, would still show one the CLI
    /// removed, and would let a blob an image pushed by the CLI names be deleted. When nothing
    /// changed this costs one listing of the index directory.
    public func reloadIfTakenOver() async throws {
        guard try await indexWasTakenOver() else { return }
        try await gate.withLock {
            guard try await indexWasTakenOver() else { return }
            try? await log.close()
            try await openIndex()
        }
    }

    /// Whether the index directory holds a log newer than the one this store appends to (a
    /// store that opens the index starts a new log), or this store has none.
    private func indexWasTakenOver() async throws -> Bool {
        func sequence(_ path: String) -> UInt64? {
            if case .log(let sequence) = DFSStateStoreFormat.FileName((path as NSString).lastPathComponent) { return sequence }
            return nil
        }
        guard let current = await log.currentLogPath.flatMap(sequence) else { return true }
        let newest = try await client.list(log.directory).compactMap { sequence($0.path) }.max()
        return newest != current
    }

    /// Closes the index's log. Every change was durable when it returned, so a log that fails
    /// to close (another process took the index over since) loses nothing: that is logged, not
    /// thrown.
    public func close() async throws {
        try await gate.withLock {
            do {
                try await log.close()
            } catch let error as DFSStateStoreError {
                logger.info("the image index log was taken over or had failed; nothing is lost", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Replays the index into memory; the caller holds the gate.
    private func openIndex() async throws {
        let (snapshot, records) = try await log.open()
        var replayed = ImageStoreState()
        if let snapshot { replayed = try ImageStoreCoding.decodeSnapshot(snapshot) }
        for bytes in records { replayed.apply(try ImageStoreCoding.decode(bytes)) }
        state.withLock { $0 = replayed }
        // Each open starts a log; a snapshot lets the logs before it go, so short-lived
        // owners (every CLI command) do not pile up empty logs.
        let logs = try await client.list(log.directory).filter {
            if case .log = DFSStateStoreFormat.FileName(($0.path as NSString).lastPathComponent) { return true }
            return false
        }
        if !records.isEmpty || logs.count > 1 {
            try await log.writeSnapshot(try ImageStoreCoding.encodeSnapshot(replayed))
        }
        logger.debug("image index opened", metadata: ["records": "\(records.count)", "repositories": "\(replayed.repositories.count)"])
    }

    /// Logs the records `decide` returns for the current index, then applies them; the caller
    /// holds the gate. When the log fails (another process took it over, or a write failed),
    /// the index is read again and `decide` runs once more on what is there.
    @discardableResult
    func commit(
        _ decide: (ImageStoreState) throws(ImageStoreError) -> [ImageStoreState.Record]
    ) async throws -> [ImageStoreState.Record] {
        var retried = false
        while true {
            let records = try decide(state.withLock { $0 })
            guard !records.isEmpty else { return [] }
            do {
                try await log.append(try records.map(ImageStoreCoding.encode))
            } catch let error as DFSStateStoreError where !retried && (error.kind == .writeFailed || error.kind == .notOpen) {
                logger.info("image index log lost; reading the index again", metadata: ["error": "\(error)"])
                retried = true
                try? await log.close()
                try await openIndex()
                continue
            }
            let snapshot = state.withLock { state -> ImageStoreState in
                for record in records { state.apply(record) }
                return state
            }
            if await log.recordsSinceSnapshot >= options.snapshotEveryRecords {
                try await log.writeSnapshot(try ImageStoreCoding.encodeSnapshot(snapshot))
            }
            return records
        }
    }

    /// The index as it is now.
    public var index: ImageStoreState { state.withLock { $0 } }

    // MARK: - Repositories and tags

    /// A page of names: sorted, those after `last`, at most `n`; `more` says whether any follow.
    public struct NamePage: Sendable, Equatable {
        public var names: [String]
        public var more: Bool
    }

    /// Repository names, sorted, after `last`, at most `n` of them.
    public func listRepositories(n: Int? = nil, last: String? = nil) -> NamePage {
        let (names, more) = ImageStoreState.page(state.withLock { Array($0.repositories.keys) }, limit: n, after: last)
        return NamePage(names: names, more: more)
    }

    /// A repository's tags, sorted, after `last`, at most `n` of them.
    public func listTags(repository: String, n: Int? = nil, last: String? = nil) throws(ImageStoreError) -> NamePage {
        let tags = try state.withLock { state throws(ImageStoreError) in Array(try state.repository(repository).tags.keys) }
        let (names, more) = ImageStoreState.page(tags, limit: n, after: last)
        return NamePage(names: names, more: more)
    }

    /// One tagged image, as `strata image ls` shows it.
    public struct TaggedImage: Sendable, Equatable, Codable {
        public var repository: String
        public var tag: String
        public var digest: Digest
        public var mediaType: String
        /// The manifest's, config's and layers' bytes (for an index, its manifests' too).
        public var size: UInt64
        public var pushedMs: Int64
    }

    /// Every tag of every repository, sorted by repository and tag.
    public func listImages() -> [TaggedImage] {
        state.withLock { state in
            var images: [TaggedImage] = []
            for (name, repository) in state.repositories {
                for (tag, digest) in repository.tags {
                    guard let entry = repository.manifests[digest] else { continue }
                    let children = entry.children.compactMap { repository.manifests[$0]?.contentBytes }
                    images.append(TaggedImage(
                        repository: name, tag: tag, digest: digest, mediaType: entry.mediaType,
                        size: entry.contentBytes + children.reduce(0, +), pushedMs: entry.pushedMs))
                }
            }
            return images.sorted { ($0.repository, $0.tag) < ($1.repository, $1.tag) }
        }
    }
}

/// How the index's records and snapshots are encoded in its log: JSON.
enum ImageStoreCoding {
    static func encode(_ record: ImageStoreState.Record) throws -> [UInt8] {
        Array(try JSONEncoder.canonical.encode(record))
    }

    static func decode(_ bytes: [UInt8]) throws -> ImageStoreState.Record {
        try JSONDecoder().decode(ImageStoreState.Record.self, from: Data(bytes))
    }

    static func encodeSnapshot(_ state: ImageStoreState) throws -> [UInt8] {
        Array(try JSONEncoder.canonical.encode(state))
    }

    static func decodeSnapshot(_ bytes: [UInt8]) throws -> ImageStoreState {
        try JSONDecoder().decode(ImageStoreState.self, from: Data(bytes))
    }
}
