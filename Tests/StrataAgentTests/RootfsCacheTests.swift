import Foundation
import Logging
import StrataImages
import Synchronization
import Testing

@testable import StrataAgent

/// Layers served from memory, counting how often each is read.
final class CountingLayerSource: Sendable {
    private let layers: [String: TestLayer]
    private let reads = Mutex<[String: Int]>([:])

    init(_ layers: [TestLayer]) {
        self.layers = Dictionary(layers.map { ($0.layer.digest, $0) }, uniquingKeysWith: { first, _ in first })
    }

    var source: RootfsCache.LayerSource {
        { [self] layer in
            reads.withLock { $0[layer.digest, default: 0] += 1 }
            guard let found = layers[layer.digest] else { throw FixtureError("no layer \(layer.digest)") }
            return found.chunks(chunkBytes: 65536)
        }
    }

    var totalReads: Int { reads.withLock { $0.values.reduce(0, +) } }
}

extension LayerScratch {
    func cache(capacityBytes: Int64 = 1 << 30) throws -> RootfsCache {
        var logger = Logger(label: "strata.rootfs-cache.test")
        logger.logLevel = .debug
        return try RootfsCache(directory: "\(directory)/images", capacityBytes: capacityBytes, logger: logger)
    }

    /// A gzip layer of the files given (path: contents).
    func layer(_ files: [(String, String)], command: String? = "gzip -c") throws -> TestLayer {
        var tar = TestTar()
        for (path, contents) in files { tar.file(path, contents) }
        return TestLayer(
            blob: try TestLayer.compressed(tar.archive, with: command, in: self),
            mediaType: command == nil ? TestLayer.tarType : command!.hasPrefix("zstd") ? TestLayer.zstdType : TestLayer.gzipType)
    }

    /// A layer of one file of `bytes` random bytes.
    func randomLayer(_ name: String, bytes: Int) throws -> TestLayer {
        let tar = try shell("mkdir -p r-\(name) && head -c \(bytes) /dev/urandom > r-\(name)/\(name) && tar -C r-\(name) -cf - \(name)")
        return TestLayer(blob: tar, mediaType: TestLayer.tarType)
    }

    func names(_ subdirectory: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/images/\(subdirectory)")) ?? []
    }
}

@Suite(.timeLimit(.minutes(2)))
struct RootfsCacheTests {
    @Test func aSecondAcquireOfTheSameImageReadsNoLayer() async throws {
        let scratch = try LayerScratch()
        let base = try scratch.layer([("etc/os", "base\n"), ("bin/tool", "tool")])
        let top = try scratch.layer([("etc/os", "top\n")], command: "zstd -c -q")
        let layers = CountingLayerSource([base, top])
        let cache = try scratch.cache()
        let first = try await cache.acquire([base.layer, top.layer], from: layers.source)
        #expect(layers.totalReads == 2)
        #expect(scratch.read("\(first.rootFilesystem)/etc/os") == "top\n")
        #expect(scratch.read("\(first.rootFilesystem)/bin/tool") == "tool")
        for mountPoint in ["proc", "dev", "sys", "tmp", "mnt/sandbox"] {
            #expect(scratch.status("\(first.rootFilesystem)/\(mountPoint)").map(RootDirectory.isDirectory) == true, "\(mountPoint)")
        }
        // runc gives the /tmp tmpfs its mount point's mode.
        #expect(scratch.status("\(first.rootFilesystem)/tmp").map { $0.st_mode & 0o7777 } == 0o1777)
        await cache.release(first)
        let second = try await cache.acquire([base.layer, top.layer], from: layers.source)
        #expect(layers.totalReads == 2)
        #expect(second.rootFilesystem == first.rootFilesystem)
        await cache.release(second)

        // The order of layers is part of the image.
        let reversed = try await cache.acquire([top.layer, base.layer], from: layers.source)
        #expect(reversed.key != first.key)
        #expect(scratch.read("\(reversed.rootFilesystem)/etc/os") == "base\n")
        await cache.release(reversed)

        // A cache opened again on the same directory (an agent restart) has it too.
        let reopened = try scratch.cache()
        #expect(await reopened.cachedKeys == [first.key, reversed.key])
        let third = try await reopened.acquire([base.layer, top.layer], from: layers.source)
        #expect(layers.totalReads == 4)
        await reopened.release(third)
    }

    @Test func concurrentAcquiresOfOneImageUnpackItOnce() async throws {
        let scratch = try LayerScratch()
        let layer = try scratch.randomLayer("big", bytes: 4 << 20)
        let layers = CountingLayerSource([layer])
        let cache = try scratch.cache()
        let leases = try await withThrowingTaskGroup(of: RootfsLease.self) { group in
            for _ in 0..<6 { group.addTask { try await cache.acquire([layer.layer], from: layers.source) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(layers.totalReads == 1)
        #expect(Set(leases.map(\.rootFilesystem)).count == 1)
        for lease in leases { await cache.release(lease) }
    }

    @Test func aTruncatedOrOverwrittenFileInACachedEntryIsFoundAndUnpackedAgain() async throws {
        let scratch = try LayerScratch()
        let layer = try scratch.layer([("etc/data", String(repeating: "d", count: 10_000)), ("etc/other", "other")])
        let layers = CountingLayerSource([layer])
        let cache = try scratch.cache()
        let first = try await cache.acquire([layer.layer], from: layers.source)
        await cache.release(first)

        truncate("\(first.rootFilesystem)/etc/data", 100)
        let second = try await cache.acquire([layer.layer], from: layers.source)
        #expect(layers.totalReads == 2)
        #expect(scratch.read("\(second.rootFilesystem)/etc/data") == String(repeating: "d", count: 10_000))
        await cache.release(second)

        // Same size, same modification time: the change time tells, the checksum confirms.
        try scratch.shell("printf 'XXXXX' | dd of=\(first.rootFilesystem)/etc/other conv=notrunc status=none && touch -d @1700000000 \(first.rootFilesystem)/etc/other")
        let third = try await cache.acquire([layer.layer], from: layers.source)
        #expect(layers.totalReads == 3)
        #expect(scratch.read("\(third.rootFilesystem)/etc/other") == "other")
        await cache.release(third)

        // A file added, then one removed.
        try scratch.shell("echo extra > \(first.rootFilesystem)/etc/extra")
        let fourth = try await cache.acquire([layer.layer], from: layers.source)
        #expect(layers.totalReads == 4 && !scratch.exists("\(fourth.rootFilesystem)/etc/extra"))
        await cache.release(fourth)
        try FileManager.default.removeItem(atPath: "\(first.rootFilesystem)/etc/other")
        let fifth = try await cache.acquire([layer.layer], from: layers.source)
        #expect(layers.totalReads == 5 && scratch.read("\(fifth.rootFilesystem)/etc/other") == "other")
        #expect(await cache.verifyContents(of: fifth.key) == nil)
        await cache.release(fifth)
        #expect(scratch.names("trash").isEmpty && scratch.names("tmp").isEmpty)
    }

    @Test func anEntryFoundDamagedWhileInUseIsDeletedWithItsLastLease() async throws {
        let scratch = try LayerScratch()
        let layer = try scratch.layer([("file", "contents")])
        let layers = CountingLayerSource([layer])
        let cache = try scratch.cache()
        let held = try await cache.acquire([layer.layer], from: layers.source)
        truncate("\(held.rootFilesystem)/file", 1)
        let fresh = try await cache.acquire([layer.layer], from: layers.source)
        #expect(layers.totalReads == 2)
        #expect(scratch.read("\(fresh.rootFilesystem)/file") == "contents")
        #expect(scratch.names("trash").count == 1)
        await cache.release(held)
        #expect(scratch.names("trash").isEmpty)
        await cache.release(fresh)
        #expect(await cache.cachedKeys == [fresh.key])
    }

    @Test func aDamagedManifestRemovesTheEntryWhenTheCacheOpensAndLeftoversAreCleared() async throws {
        let scratch = try LayerScratch()
        let layer = try scratch.layer([("file", "contents")])
        let layers = CountingLayerSource([layer])
        let lease = try await scratch.cache().acquire([layer.layer], from: layers.source)
        let manifest = "\(scratch.directory)/images/rootfs/\(lease.key)/manifest"
        try scratch.shell("printf 'x' | dd of=\(manifest) bs=1 seek=40 conv=notrunc status=none")
        _ = try scratch.makeDirectory("images/tmp/\(lease.key).123/rootfs")
        let reopened = try scratch.cache()
        #expect(await reopened.cachedKeys.isEmpty)
        #expect(scratch.names("rootfs").isEmpty && scratch.names("tmp").isEmpty)
        let again = try await reopened.acquire([layer.layer], from: layers.source)
        #expect(layers.totalReads == 2)
        await reopened.release(again)
    }

    @Test func aFailedUnpackLeavesNoCacheEntry() async throws {
        let scratch = try LayerScratch()
        let good = try scratch.layer([("file", String(repeating: "g", count: 50_000))])
        let truncated = TestLayer(blob: Array(good.blob.dropLast(30)), mediaType: TestLayer.gzipType)
        let wrongDigest = TestLayer(blob: good.blob, mediaType: TestLayer.gzipType, digest: Digest.of([0]).description)
        var escaping = TestTar()
        escaping.file("../outside", "x")
        let unsafe = TestLayer(blob: escaping.archive, mediaType: TestLayer.tarType)
        let layers = CountingLayerSource([good, truncated, wrongDigest, unsafe])
        let cache = try scratch.cache()
        for (layer, kind) in [(truncated, LayerUnpackError.Kind.corrupt), (wrongDigest, .digestMismatch), (unsafe, .unsafePath)] {
            do {
                let lease = try await cache.acquire([good.layer, layer.layer], from: layers.source)
                Issue.record("acquired \(lease.key) from a bad layer")
            } catch {
                #expect(error.kind == kind, "\(error)")
            }
            #expect(await cache.cachedKeys.isEmpty)
            #expect(scratch.names("rootfs").isEmpty && scratch.names("tmp").isEmpty)
        }
        #expect(!scratch.exists("\(scratch.directory)/images/outside") && !scratch.exists("\(scratch.directory)/outside"))
        // A source that cannot give the layer at all.
        let missing = ImageLayer(digest: Digest.of([9]).description, mediaType: TestLayer.tarType)
        await #expect(throws: LayerUnpackError.self) { try await cache.acquire([missing], from: layers.source) }
        #expect(scratch.names("rootfs").isEmpty && scratch.names("tmp").isEmpty)
    }

    @Test func evictionUnderTheSizeBoundKeepsEntriesInUse() async throws {
        let scratch = try LayerScratch()
        let a = try scratch.randomLayer("a", bytes: 1 << 20)
        let b = try scratch.randomLayer("b", bytes: 1 << 20)
        let c = try scratch.randomLayer("c", bytes: 1 << 20)
        let layers = CountingLayerSource([a, b, c])
        // Room for two such images, not three.
        let cache = try scratch.cache(capacityBytes: (5 << 20) / 2)
        let heldA = try await cache.acquire([a.layer], from: layers.source)
        let leaseB = try await cache.acquire([b.layer], from: layers.source)
        await cache.release(leaseB)
        let leaseC = try await cache.acquire([c.layer], from: layers.source)
        // B was the least recently used of those not in use; A is in use and stays.
        #expect(await cache.cachedKeys == [heldA.key, leaseC.key])
        #expect(!scratch.exists(leaseB.rootFilesystem))
        #expect(scratch.exists("\(heldA.rootFilesystem)/a"))
        #expect(await cache.allocatedBytes <= (5 << 20) / 2)
        await cache.release(leaseC)
        await cache.release(heldA)

        // A root filesystem larger than the whole cache is refused.
        let huge = try scratch.randomLayer("huge", bytes: 3 << 20)
        await #expect(throws: LayerUnpackError.self) { try await cache.acquire([huge.layer], from: CountingLayerSource([huge]).source) }
        #expect(scratch.names("trash").isEmpty && scratch.names("tmp").isEmpty)
    }
}
