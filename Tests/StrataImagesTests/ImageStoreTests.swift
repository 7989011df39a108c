import Foundation
import NIOCore
import StrataClient
import StrataCore
import StrataTestKit
import Testing

@testable import StrataImages

/// The image store against a real name node and data nodes on loopback.
@Suite(.serialized) struct ImageStoreTests {
    static func chunks(_ bytes: [UInt8], pieceBytes: Int = 1000) -> ByteBufferChunks {
        ByteBufferChunks(stride(from: 0, to: bytes.count, by: pieceBytes).map {
            ByteBuffer(bytes: bytes[$0..<min(bytes.count, $0 + pieceBytes)])
        })
    }

    @Test func pushThenPullGivesByteIdenticalBlobsAndTheSameManifest() async throws {
        try await withTemporaryDirectory { directory in
            let layout = try TestLayout.write(at: directory + "/source", tag: "1", layers: [try TestLayout.busyboxLayer()])
            try await withImageStore { cluster, store in
                let report = try await store.push(try ImageSource.open(layout.directory), repository: "tools/busybox", tag: "1")
                #expect(report.digest == layout.manifest)
                #expect(Set(report.storedBlobs) == Set([layout.config] + layout.layers))
                #expect(store.listImages().map { "\($0.repository):\($0.tag)@\($0.digest)" } == ["tools/busybox:1@\(layout.manifest)"])

                let pulled = directory + "/pulled"
                let pull = try await store.pull(repository: "tools/busybox", reference: .tag("1"), to: pulled)
                #expect(pull.digest == layout.manifest)
                for blob in layout.blobs {
                    let original = FileManager.default.contents(atPath: layout.directory + "/blobs/sha256/" + blob.hex)
                    let copy = FileManager.default.contents(atPath: pulled + "/blobs/sha256/" + blob.hex)
                    #expect(original != nil && original == copy, "\(blob)")
                }
                // The pulled layout is a layout: it reads back as the same image.
                let again = try ImageSource.open(pulled, reference: "1")
                #expect(again.top.digest == layout.manifest)

                let resolved = try await store.resolve(repository: "tools/busybox", reference: .tag("1"))
                #expect(resolved.digest == layout.manifest)
                #expect(resolved.configuration.config?.cmd == ["sh"])
                #expect(resolved.layers.map(\.digest) == layout.layers)

                // A whole blob reads back verified; a range reads the bytes asked for.
                let layer = try #require(FileManager.default.contents(atPath: layout.directory + "/blobs/sha256/" + layout.layers[0].hex))
                var ranged: [UInt8] = []
                try await store.openBlob(layout.layers[0], range: 1000..<5000).read { ranged += $0.readableBytesView }
                #expect(ranged == Array(layer[1000..<5000]))
                await expectStoreError("RANGE_INVALID", "a range past the end") {
                    _ = try await store.openBlob(layout.layers[0], range: UInt64(layer.count)..<UInt64(layer.count + 10))
                }
                await expectStoreError("BLOB_UNKNOWN", "a blob not in the store") { _ = try await store.openBlob(Digest.of([9])) }
                await expectStoreError("MANIFEST_UNKNOWN", "an unknown tag") {
                    _ = try await store.getManifest(repository: "tools/busybox", reference: .tag("2"))
                }
                await expectStoreError("NAME_UNKNOWN", "an unknown repository") {
                    _ = try await store.getManifest(repository: "tools/other", reference: .tag("1"))
                }
                #expect(cluster.dataNodes.count == 3)
            }
        }
    }

    @Test func twoImagesSharingABaseLayerStoreItOnceAndRemovingOneFreesOnlyItsOwnBlobs() async throws {
        try await withTemporaryDirectory { directory in
            let base = try TestLayout.busyboxLayer()
            let first = try TestLayout.write(at: directory + "/first", tag: "1", layers: [base, TestLayout.fileLayer("etc/motd", "first")])
            let second = try TestLayout.write(
                at: directory + "/second", tag: "1", layers: [base, TestLayout.fileLayer("etc/motd", "second")], cmd: ["ls"])
            #expect(first.layers[0] == second.layers[0])
            // The default grace period: removing an image frees its blobs all the same.
            try await withImageStore(configure: { $0.garbageGraceSeconds = 3600 }) { cluster, store in
                try await store.push(try ImageSource.open(first.directory), repository: "apps/first", tag: "1")
                let report = try await store.push(try ImageSource.open(second.directory), repository: "apps/second", tag: "1")
                #expect(report.existingBlobs == [second.layers[0]])
                try await using(cluster.client()) { client in
                    // 2 manifests, 2 configs, 3 layers: the base layer once.
                    #expect(try await storedBlobs(client) == first.blobs.union(second.blobs))
                    #expect(try await storedBlobs(client).count == 7)

                    // Nothing is collected while both images are there.
                    #expect(try await store.collectGarbage().removedBlobs.isEmpty)

                    let removed = try await store.removeImage(repository: "apps/first", tag: "1")
                    #expect(removed.manifests == [first.manifest])
                    #expect(removed.released == first.blobs)
                    // Within the grace period nothing goes, but for what the removal released.
                    #expect(try await store.collectGarbage().removedBlobs.isEmpty)
                    let report = try await store.collectGarbage(after: removed)
                    #expect(Set(report.removedBlobs.map(\.digest)) == first.blobs.subtracting(second.blobs))
                    #expect(report.removedBlobs.count == 3)
                    #expect(try await storedBlobs(client) == second.blobs)
                    #expect(store.listRepositories().names == ["apps/second"])

                    // The second image is whole.
                    let pull = try await store.pull(repository: "apps/second", reference: .tag("1"), to: directory + "/pulled")
                    #expect(pull.blobs == 3)
                }
            }
        }
    }

    @Test func blobsNotYetNamedByAManifestAreKeptThroughTheGracePeriodAndUploadsAreNeverTouched() async throws {
        try await withImageStore(configure: { $0.garbageGraceSeconds = 3600 }) { cluster, store in
            let (loose, _) = try await store.putBlob(Array("a layer waiting for its manifest".utf8))
            let upload = try await store.startUpload()
            try await store.appendUpload(upload, Self.chunks(Array("half a blob".utf8)))
            let report = try await store.collectGarbage()
            #expect(report.removedBlobs.isEmpty)
            #expect(report.keptRecent == 1)
            #expect(try await store.blobInfo(loose) != nil)
            #expect(try await store.uploadLength(upload) == 11)

            // Without a grace period the loose blob goes, and the upload still stays.
            try await using(cluster.client()) { client in
                let impatient = makeStore(client)
                try await impatient.open()
                let report = try await impatient.collectGarbage()
                #expect(report.removedBlobs.map(\.digest) == [loose])
                #expect(report.removedUploads.isEmpty)
                try await impatient.close()
            }
            #expect(try await store.uploadLength(upload) == 11)
            try await store.finishUpload(upload, digest: Digest.of(Array("half a blob".utf8)))
        }
    }

    @Test func aBlobWhoseDigestDoesNotMatchStoresNothing() async throws {
        try await withImageStore { cluster, store in
            let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
            await expectStoreError("DIGEST_INVALID", "a monolithic upload with the wrong digest") {
                try await store.putBlob(Self.chunks(bytes, pieceBytes: 65_536), expected: Digest.of([1]))
            }
            await expectStoreError("SIZE_INVALID", "a monolithic upload of the wrong size") {
                try await store.putBlob(Self.chunks(bytes), expected: Digest.of(bytes), expectedSize: 5)
            }
            let upload = try await store.startUpload()
            try await store.appendUpload(upload, Self.chunks(Array(bytes[..<100_000])))
            await expectStoreError("RANGE_INVALID", "a chunk that does not start at the end") {
                try await store.appendUpload(upload, Self.chunks([1, 2, 3]), at: 5)
            }
            try await store.appendUpload(upload, Self.chunks(Array(bytes[100_000...])), at: 100_000)
            await expectStoreError("DIGEST_INVALID", "a chunked upload finished with the wrong digest") {
                try await store.finishUpload(upload, digest: Digest.of([2]))
            }
            await expectStoreError("BLOB_UPLOAD_UNKNOWN", "the upload after it failed") { _ = try await store.uploadLength(upload) }
            await expectStoreError("BLOB_UPLOAD_UNKNOWN", "an upload id that is a path") { _ = try await store.uploadLength("../blobs") }
            try await using(cluster.client()) { (client: DFSClient) async throws in
                #expect(try await storedBlobs(client).isEmpty)
                #expect(try await client.list("/system/images/uploads").isEmpty)
            }
            #expect(try await store.blobInfo(Digest.of(bytes)) == nil)
        }
    }

    @Test func aChunkedUploadResumesInANewStoreAfterARestart() async throws {
        try await withImageStore { cluster, store in
            let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let upload = try await store.startUpload()
            #expect(try await store.appendUpload(upload, Self.chunks(Array(bytes[..<70_000]))) == 70_000)
            try await using(cluster.client()) { client in
                // Another process (a restarted registry) has no session in memory: it hashes the file again.
                let restarted = makeStore(client)
                try await restarted.open()
                #expect(try await restarted.uploadLength(upload) == 70_000)
                try await restarted.appendUpload(upload, Self.chunks(Array(bytes[70_000...])), at: 70_000)
                let (digest, size) = try await restarted.finishUpload(upload, digest: Digest.of(bytes))
                #expect(digest == Digest.of(bytes))
                #expect(size == 200_000)
                var read: [UInt8] = []
                try await restarted.openBlob(digest).read { read += $0.readableBytesView }
                #expect(read == bytes)
                try await restarted.close()
                // The same bytes again are stored once.
                try await store.putBlob(bytes, expected: digest)
                #expect(try await storedBlobs(client) == [digest])
                #expect(try await client.list("/system/images/uploads").isEmpty)
            }
        }
    }

    @Test func manifestsNamingMissingBlobsOrNotJSONAreRefused() async throws {
        try await withImageStore { cluster, store in
            let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
            let (configDigest, _) = try await store.putBlob(config)
            let missing = Digest.of(Array("never pushed".utf8))
            let text = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},
                 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(missing)","size":12}]}
                """
            do {
                try await store.putManifest(repository: "a", reference: .tag("1"), bytes: Array(text.utf8), mediaType: OCIMediaType.imageManifest)
                Issue.record("a manifest naming a missing blob was taken")
            } catch let error as ImageStoreError {
                #expect(error == .manifestBlobUnknown(missing))
                #expect(error.code == "MANIFEST_BLOB_UNKNOWN")
            }
            await expectStoreError("MANIFEST_INVALID", "not JSON") {
                try await store.putManifest(repository: "a", reference: .tag("1"), bytes: Array("{".utf8), mediaType: nil)
            }
            let wrongSize = text.replacingOccurrences(of: #""size":\#(config.count)"#, with: #""size":1"#)
                .replacingOccurrences(of: ",\n \"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"\(missing)\",\"size\":12}]", with: "")
            await expectStoreError("MANIFEST_INVALID", "a config of the wrong size") {
                try await store.putManifest(repository: "a", reference: .tag("1"), bytes: Array(wrongSize.utf8), mediaType: nil)
            }
            await expectStoreError("NAME_INVALID", "a bad repository name") {
                try await store.putManifest(repository: "A", reference: .tag("1"), bytes: Array(text.utf8), mediaType: nil)
            }
            await expectStoreError("DIGEST_INVALID", "a digest reference that is not the manifest's") {
                try await store.putManifest(repository: "a", reference: .digest(missing), bytes: Array(text.utf8), mediaType: nil)
            }
            #expect(store.listRepositories().names.isEmpty)
            try await using(cluster.client()) { (client: DFSClient) async throws in
                // Only the config: no manifest was stored.
                #expect(try await storedBlobs(client) == [configDigest])
            }
        }
    }

    @Test func aReopenedStoreSeesTheSameTagsAndAnotherProcessCanTakeTheIndexOver() async throws {
        try await withTemporaryDirectory { directory in
            let layout = try TestLayout.write(at: directory + "/source", tag: "1", layers: [TestLayout.fileLayer("etc/a", "a")])
            let source = try ImageSource.open(layout.directory)
            try await LocalCluster.withTemporary(prefix: "strata-images-") { cluster in
                try await using(cluster.client()) { client in
                    let first = makeStore(client) { $0.snapshotEveryRecords = 3 }
                    try await first.open()
                    for tag in ["1", "2", "3", "4"] { try await first.push(source, repository: "x/y", tag: tag) }
                    try await first.deleteTag(repository: "x/y", tag: "2")
                    try await first.push(source, repository: "z", tag: "latest")

                    // A second store (another process) takes the index over while the first is open.
                    let second = makeStore(client)
                    try await second.open()
                    #expect(second.index == first.index)
                    #expect(try second.listTags(repository: "x/y").names == ["1", "3", "4"])
                    #expect(try second.listTags(repository: "x/y", n: 2).names == ["1", "3"])
                    #expect(try second.listTags(repository: "x/y", n: 2, last: "3") == .init(names: ["4"], more: false))
                    #expect(second.listRepositories(n: 1) == .init(names: ["x/y"], more: true))
                    try await second.push(source, repository: "w", tag: "1")

                    // The first store's log was taken over: its next change reads the index again first.
                    try await first.deleteTag(repository: "x/y", tag: "3")
                    #expect(first.listRepositories().names == ["w", "x/y", "z"])
                    try await first.close()
                    try await second.close()

                    let third = makeStore(client)
                    try await third.open()
                    #expect(third.listRepositories().names == ["w", "x/y", "z"])
                    #expect(try third.listTags(repository: "x/y").names == ["1", "4"])
                    #expect(try await third.getManifest(repository: "z", reference: .tag("latest")).digest == layout.manifest)
                    try await third.close()
                }
            }
        }
    }

    @Test func anIndexIsPushedWithItsManifestsResolvedForLinuxAMD64PulledAndRemovedWhole() async throws {
        try await withTemporaryDirectory { directory in
            let (index, amd64, arm64) = try TestLayout.writeMultiPlatform(
                at: directory + "/multi", tag: "1", layers: [TestLayout.fileLayer("etc/a", "shared")])
            let source = try ImageSource.open(directory + "/multi")
            #expect(source.top.digest == index)
            #expect(source.manifests.map(\.digest) == [arm64.manifest, amd64.manifest, index])
            try await withImageStore { cluster, store in
                let report = try await store.push(source, repository: "multi", tag: "1")
                #expect(report.digest == index)
                #expect(report.storedBlobs.count == 3)  // two configs, one shared layer
                #expect(try store.manifestEntry(repository: "multi", reference: .digest(amd64.manifest)).entry.blobs.count == 2)
                #expect(store.listImages().map(\.tag) == ["1"])

                let resolved = try await store.resolve(repository: "multi", reference: .tag("1"))
                #expect(resolved.indexDigest == index)
                #expect(resolved.digest == amd64.manifest)
                #expect(resolved.configuration.config?.cmd == ["amd64"])
                let arm = try await store.resolve(repository: "multi", reference: .tag("1"), platform: Platform(architecture: "arm64", os: "linux"))
                #expect(arm.digest == arm64.manifest)
                await expectStoreError("UNSUPPORTED", "deleting a manifest the index names") {
                    try await store.deleteManifest(repository: "multi", digest: amd64.manifest)
                }

                let pull = try await store.pull(repository: "multi", reference: .tag("1"), to: directory + "/pulled")
                #expect(pull.digest == index)
                #expect(pull.storedDigest == nil)
                #expect(try ImageSource.open(directory + "/pulled").manifests.map(\.digest) == source.manifests.map(\.digest))

                let removed = try await store.removeImage(repository: "multi", tag: "1")
                #expect(Set(removed.manifests) == [index, amd64.manifest, arm64.manifest])
                let collected = try await store.collectGarbage(after: removed)
                #expect(collected.removedBlobs.count == 6)
                try await using(cluster.client()) { (client: DFSClient) async throws in
                    #expect(try await storedBlobs(client).isEmpty)
                }
                #expect(store.listRepositories().names.isEmpty)
            }
        }
    }
}
