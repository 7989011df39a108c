import Dispatch
import Glibc
import Logging
import StrataImages

/// A root filesystem from the cache, held for a task: not evicted or deleted until released.
public struct RootfsLease: Sendable, Hashable {
    /// The cache key: `RootfsCache.key(for:)` of the image's layers.
    public let key: String
    /// The directory runc runs the task from, read-only (`ContainerSpec(readOnly: true)`).
    public let rootFilesystem: String
    let generation: UInt64
}

/// Root filesystems unpacked from image layers, cached on the agent's disk by the image's
/// layers and shared read-only by the tasks that run from them.
///
/// **Layout** (docs/formats.md, "The agent's image cache"), under `directory`
/// (`<agent work directory>/images`):
/// - `rootfs/<key>/rootfs/` the root filesystem, `rootfs/<key>/manifest` what it holds
///   (`RootfsManifest`); an entry is there only once complete: layers are unpacked into
///   `tmp/<key>.<random>/`, its manifest written and the file system synced, and only then is
///   the directory renamed into `rootfs/`. `tmp/` is emptied when the cache opens.
/// - `trash/` holds entries taken out of the cache (evicted, or found damaged while tasks still
///   use them) until they are deleted.
///
/// **Key**: the layers' digests chained as the OCI image spec chains diff ids into a ChainID
/// (`key(L1) = digest(L1)`, `key(L1…Ln) = sha256(key(L1…Ln-1) + " " + digest(Ln))`), but over
/// the digests of the blobs as stored, which the manifest names and the unpack verifies, rather
/// than over diff ids (the digests of the uncompressed tars), which only the image config
/// names and which would have to be trusted or computed by decompressing first. The same
/// layers compressed differently therefore make a second entry: disk, not correctness.
///
/// **Use**: `acquire` returns a lease on a verified root filesystem, unpacking it first when it
/// is not cached; requests for the same key at once share one unpack (or one check). Each
/// acquire checks the entry against its manifest (an `lstat` per path; see `RootfsManifest`)
/// and unpacks it again, beside the damaged one, when anything differs. `release` gives the
/// lease back. The cache's allocated bytes are kept at most `capacityBytes` by evicting the
/// least recently used entries no task holds; a root filesystem larger than the whole bound
/// is refused.
///
/// **Sharing**: tasks share one copy, read-only: runc is told to mount the root read-only with
/// a tmpfs at `/tmp` (`ContainerSpec.readOnly`), and the mount points it needs are made in the
/// root filesystem before its manifest is recorded, so runc writes nothing in it. An overlay
/// mount per task would give tasks a writable root as well, but it needs root, mounts to undo
/// after every task, and upper directories on a file system overlayfs accepts.
///
/// File system work runs on a dispatch queue of its own, never on Swift's cooperative pool.
public actor RootfsCache {
    /// Streams a layer's blob (as stored, compressed) in chunks: the DFS in the agent, a file or
    /// memory in tests.
    public typealias LayerSource = @Sendable (ImageLayer) async throws -> any AsyncSequence<[UInt8], any Error>

    /// The mount points runc needs in a root filesystem and their modes (`OCIConfiguration.mountPoints`).
    public static let containerMountPoints = OCIConfiguration.mountPoints

    public nonisolated let directory: String
    public nonisolated let capacityBytes: Int64
    let mountPoints: [(path: String, mode: UInt32)]
    let logger: Logger
    private var index: RootfsCacheIndex
    private var manifests: [String: RootfsManifest] = [:]
    private var preparations: [String: Preparation] = [:]
    private let queue = DispatchQueue(label: "strata.rootfs-cache", attributes: .concurrent)

    /// A check or an unpack under way, and how many acquires wait for it.
    private struct Preparation {
        var task: Task<Result<UInt64, LayerUnpackError>, Never>
        var waiters: Int
    }

    /// Opens (or makes) the cache in `directory`: removes what an interrupted unpack left in
    /// `tmp/` and `trash/`, and takes the complete entries in `rootfs/`, least recently used
    /// first by their manifests' modification times (an entry whose manifest is missing or
    /// damaged is removed). Blocks while it reads the manifests: call it at start-up.
    public init(
        directory: String, capacityBytes: Int64, mountPoints: [(path: String, mode: UInt32)] = RootfsCache.containerMountPoints, logger: Logger
    ) throws(LayerUnpackError) {
        self.directory = directory
        self.capacityBytes = capacityBytes
        self.mountPoints = mountPoints
        self.logger = logger
        index = RootfsCacheIndex(capacityBytes: capacityBytes)
        for subdirectory in ["rootfs", "tmp", "trash"] {
            if let problem = makeDirectories("\(directory)/\(subdirectory)", mode: 0o700) {
                throw LayerUnpackError(.io, "cannot make the image cache's directory: \(problem)")
            }
        }
        for subdirectory in ["tmp", "trash"] {
            for name in (try? Self.names(in: "\(directory)/\(subdirectory)")) ?? [] {
                Self.removeTree("\(directory)/\(subdirectory)/\(name)", logger: logger)
            }
        }
        var found: [(key: String, manifest: RootfsManifest, usedSeconds: Int)] = []
        for key in try Self.names(in: "\(directory)/rootfs") {
            let manifestPath = Self.manifestPath(directory, key)
            var information = stat()
            guard let bytes = readWholeFile(manifestPath), let manifest = RootfsManifest.decode(bytes), manifest.key == key,
                stat(manifestPath, &information) == 0
            else {
                logger.warning("removing an image cache entry without a sound manifest", metadata: ["key": "\(key)"])
                Self.removeTree("\(directory)/rootfs/\(key)", logger: logger)
                continue
            }
            found.append((key, manifest, information.st_mtim.tv_sec))
        }
        for entry in found.sorted(by: { $0.usedSeconds < $1.usedSeconds }) {
            manifests[entry.key] = entry.manifest
            _ = index.add(entry.key, allocatedBytes: entry.manifest.allocatedBytes)
        }
    }

    /// The cache key of an image with these layers (bottom first): 64 hex digits.
    public nonisolated static func key(for layers: [ImageLayer]) throws(LayerUnpackError) -> String {
        var chain: Digest?
        for layer in layers {
            guard let digest = Digest(layer.digest) else {
                throw LayerUnpackError(.unsupported, "layer digest '\(layer.digest)' is not sha256:<64 lowercase hex digits>")
            }
            guard OCIMediaType.layerCompression(layer.mediaType) != nil else {
                throw LayerUnpackError(.unsupported, "layer \(layer.digest) has media type '\(layer.mediaType)', which Strata does not unpack")
            }
            chain = chain.map { Digest.of(Array("\($0) \(digest)".utf8)) } ?? digest
        }
        guard let chain else { throw LayerUnpackError(.unsupported, "an image without layers has no root filesystem") }
        return chain.hex
    }

    // MARK: Leases

    /// A lease on the root filesystem of an image with `layers` (bottom first), checked against
    /// its manifest, or unpacked from `source` when it is not cached or is damaged. Throws when
    /// a layer cannot be read, fails its digest, is damaged or unsafe, or the root filesystem
    /// would not fit the cache; nothing of it is left behind then.
    public func acquire(_ layers: [ImageLayer], from source: @escaping LayerSource) async throws(LayerUnpackError) -> RootfsLease {
        let key = try Self.key(for: layers)
        if preparations[key] == nil {
            let task = Task { await self.prepare(key, layers: layers, source: source) }
            preparations[key] = Preparation(task: task, waiters: 0)
        }
        preparations[key]!.waiters += 1
        let generation = try await preparations[key]!.task.value.get()
        return RootfsLease(key: key, rootFilesystem: Self.rootFilesystemPath(directory, key), generation: generation)
    }

    /// Gives a lease back. An entry no lease holds may be evicted; one taken out of the cache
    /// while held is deleted with its last lease.
    public func release(_ lease: RootfsLease) async {
        switch index.release(lease.key, generation: lease.generation) {
        case .kept:
            await evict()
        case .retiredUnused:
            await removeOffActor(Self.trashPath(directory, lease.key, lease.generation))
        }
    }

    /// The keys of the complete entries.
    public var cachedKeys: Set<String> { Set(index.entries.keys) }

    /// Disk space the complete entries take.
    public var allocatedBytes: Int64 { index.allocatedBytes }

    /// Reads every file of a cached entry to check it against its manifest (what the check
    /// before each use cannot see: bytes changed under the file system). Nil when intact or
    /// not cached; otherwise what differs. The entry is not removed here: the next acquire
    /// unpacks it again only when its own check finds damage.
    public func verifyContents(of key: String) async -> String? {
        guard let manifest = manifests[key] else { return nil }
        let path = Self.rootFilesystemPath(directory, key)
        return await onQueue(queue) { manifest.verify(rootFilesystem: path, deep: true) }
    }

    // MARK: Checking and unpacking

    private func prepare(_ key: String, layers: [ImageLayer], source: @escaping LayerSource) async -> Result<UInt64, LayerUnpackError> {
        let result: Result<UInt64, LayerUnpackError>
        do throws(LayerUnpackError) {
            result = .success(try await checkOrUnpack(key, layers: layers, source: source))
        } catch {
            result = .failure(error)
        }
        // Every acquire waiting gets its reference now, before anything can evict the entry.
        let waiters = preparations.removeValue(forKey: key)?.waiters ?? 0
        if case .success = result {
            _ = index.acquire(key, count: waiters)
            // Last use, for the order of eviction after a restart.
            _ = utimensat(AT_FDCWD, Self.manifestPath(directory, key), nil, 0)
        }
        return result
    }

    private func checkOrUnpack(_ key: String, layers: [ImageLayer], source: @escaping LayerSource) async throws(LayerUnpackError) -> UInt64 {
        if let manifest = manifests[key], let generation = index.entries[key]?.generation {
            let path = Self.rootFilesystemPath(directory, key)
            guard let damage = await onQueue(queue, { manifest.verify(rootFilesystem: path, deep: false) }) else { return generation }
            logger.warning("a cached root filesystem is damaged; unpacking it again", metadata: ["key": "\(key)", "damage": "\(damage)"])
            await retire(key, generation: generation)
        }
        return try await unpack(key, layers: layers, source: source)
    }

    /// Takes a damaged entry out: deleted now, or once the tasks using it release it.
    private func retire(_ key: String, generation: UInt64) async {
        manifests[key] = nil
        let inUse = index.retire(key)
        let trash = Self.trashPath(directory, key, generation)
        guard rename(Self.entryPath(directory, key), trash) == 0 else {
            logger.error("cannot move a damaged image cache entry aside", metadata: ["key": "\(key)", "error": "\(describe(errno: errno))"])
            await removeOffActor(Self.entryPath(directory, key))
            return
        }
        if !inUse { await removeOffActor(trash) }
    }

    private func unpack(_ key: String, layers: [ImageLayer], source: @escaping LayerSource) async throws(LayerUnpackError) -> UInt64 {
        let temporary = "\(directory)/tmp/\(key).\(UInt64.random(in: 0...UInt64.max))"
        let rootFilesystem = "\(temporary)/rootfs"
        do throws(LayerUnpackError) {
            try await onQueue(queue) { () throws(LayerUnpackError) in
                guard mkdir(temporary, 0o700) == 0, mkdir(rootFilesystem, 0o755) == 0 else {
                    throw RootDirectory.failure("cannot make \(rootFilesystem)", errno)
                }
            }
            var writtenBytes: Int64 = 0
            for layer in layers {
                let chunks: any AsyncSequence<[UInt8], any Error>
                do {
                    chunks = try await source(layer)
                } catch {
                    throw LayerUnpackError(.io, "cannot read layer \(layer.digest): \(error)")
                }
                writtenBytes += try await LayerUnpacker.apply(
                    layer, chunks: chunks, onto: rootFilesystem, maximumBytes: capacityBytes - writtenBytes)
            }
            let (directory, mountPoints) = (self.directory, self.mountPoints)
            let manifest = try await onQueue(queue) { () throws(LayerUnpackError) in
                try Self.complete(temporary, into: Self.entryPath(directory, key), key: key, layers: layers, mountPoints: mountPoints)
            }
            manifests[key] = manifest
            let generation = index.add(key, allocatedBytes: manifest.allocatedBytes)
            logger.info(
                "unpacked an image's root filesystem",
                metadata: ["key": "\(key)", "layers": "\(layers.count)", "bytes": "\(manifest.allocatedBytes)", "entries": "\(manifest.entries.count)"])
            await evict()
            return generation
        } catch {
            await removeOffActor(temporary)
            throw error
        }
    }

    /// Makes the mount points, records the manifest, syncs the file system and renames the
    /// finished entry into place: an entry in `rootfs/` is always complete.
    private static func complete(
        _ temporary: String, into destination: String, key: String, layers: [ImageLayer], mountPoints: [(path: String, mode: UInt32)]
    ) throws(LayerUnpackError) -> RootfsManifest {
        let rootFilesystem = "\(temporary)/rootfs"
        let root = try RootDirectory(path: rootFilesystem)
        for mountPoint in mountPoints {
            let components = try RootDirectory.components(of: mountPoint.path)
            guard let name = components.last, let parent = try root.directory(components.dropLast(), create: true) else { continue }
            // What the image has there stays as it is.
            if RootDirectory.status(parent.descriptor, name) == nil {
                guard mkdirat(parent.descriptor, name, 0o700) == 0, fchmodat(parent.descriptor, name, mode_t(mountPoint.mode), 0) == 0 else {
                    throw RootDirectory.failure("cannot make the mount point /\(mountPoint.path)", errno)
                }
            }
        }
        let manifest = try RootfsManifest.record(rootFilesystem: rootFilesystem, key: key, layers: layers)
        // The files' contents reach the disk before the entry is complete (one syncfs rather
        // than an fsync per file).
        guard syncFileSystem(root.descriptor) == 0 else { throw RootDirectory.failure("cannot sync \(rootFilesystem)", errno) }
        if let problem = writeDurably("\(temporary)/manifest", manifest.encoded()) {
            throw LayerUnpackError(.io, "cannot write the manifest of \(temporary): \(problem)")
        }
        guard rename(temporary, destination) == 0 else { throw RootDirectory.failure("cannot move \(temporary) to \(destination)", errno) }
        let parent = open(String(destination[..<destination.lastIndex(of: "/")!]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if parent >= 0 {
            fsync(parent)
            close(parent)
        }
        return manifest
    }

    /// Evicts unused entries, least recently used first, until the cache fits its bound.
    private func evict() async {
        let victims = index.evict(sparing: Set(preparations.keys))
        for key in victims {
            manifests[key] = nil
            let trash = "\(directory)/trash/\(key).evicted.\(UInt64.random(in: 0...UInt64.max))"
            logger.info("evicting an image's root filesystem", metadata: ["key": "\(key)"])
            // Out of `rootfs/` at once, so that an unpack of the same key can take its place.
            let moved = rename(Self.entryPath(directory, key), trash) == 0
            await removeOffActor(moved ? trash : Self.entryPath(directory, key))
        }
    }

    private func removeOffActor(_ path: String) async {
        let logger = self.logger
        await onQueue(queue) { Self.removeTree(path, logger: logger) }
    }

    // MARK: Paths and files

    static func entryPath(_ directory: String, _ key: String) -> String { "\(directory)/rootfs/\(key)" }
    static func rootFilesystemPath(_ directory: String, _ key: String) -> String { "\(directory)/rootfs/\(key)/rootfs" }
    static func manifestPath(_ directory: String, _ key: String) -> String { "\(directory)/rootfs/\(key)/manifest" }
    static func trashPath(_ directory: String, _ key: String, _ generation: UInt64) -> String { "\(directory)/trash/\(key).\(generation)" }

    static func names(in path: String) throws(LayerUnpackError) -> [String] {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RootDirectory.failure("cannot open \(path)", errno) }
        defer { close(descriptor) }
        return try RootDirectory.names(in: descriptor, shown: path)
    }

    /// Removes a directory tree without following links; logs what it could not remove.
    static func removeTree(_ path: String, logger: Logger) {
        guard let slash = path.lastIndex(of: "/") else { return }
        do throws(LayerUnpackError) {
            let parent = try RootDirectory(path: String(path[..<slash]))
            try parent.remove(parent.descriptor, String(path[path.index(after: slash)...]), shown: path)
        } catch {
            logger.error("cannot remove an image cache directory", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}

/// glibc's `syncfs`, which Swift's Glibc module leaves out (it needs _GNU_SOURCE): looked up by
/// name, as `GNUSpawn` does, so that no C shim is needed. Without it, `sync`.
private let syncFileSystem: @Sendable (Int32) -> Int32 = {
    typealias SyncFileSystem = @convention(c) (Int32) -> Int32
    guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, "syncfs") else {
        return { _ in
            sync()
            return 0
        }
    }
    let function = unsafeBitCast(address, to: SyncFileSystem.self)
    return { function($0) }
}()

/// Runs `body` on `queue` and returns what it returns.
func onQueue<Value: Sendable>(_ queue: DispatchQueue, _ body: @escaping @Sendable () -> Value) async -> Value {
    await withCheckedContinuation { continuation in
        queue.async { continuation.resume(returning: body()) }
    }
}

/// The whole file, or nil when it cannot be read.
func readWholeFile(_ path: String) -> [UInt8]? {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        guard count >= 0 else { return nil }
        if count == 0 { return bytes }
        bytes += buffer[..<count]
    }
}

/// Writes a new file (mode 0600) and fsyncs it; returns the problem, or nil.
func writeDurably(_ path: String, _ bytes: [UInt8]) -> String? {
    if let problem = writeNewFile(path, bytes) { return problem }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return describe(errno: errno) }
    defer { close(descriptor) }
    return fsync(descriptor) == 0 ? nil : describe(errno: errno)
}
