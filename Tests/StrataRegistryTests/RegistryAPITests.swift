import Foundation
import Logging
import StrataImages
import StrataTestKit
import Testing

/// The OCI distribution API on a real cluster: the registry over the image store in the DFS.
@Suite(.serialized) struct RegistryAPITests {
    @Test func theBaseEndpointAnswersAsARegistry() async throws {
        try await withRegistry { _, registry in
            let base = try await registry.call(.GET, "/v2/")
            #expect(base.status == 200 && base.text == "{}")
            #expect(base.header("Docker-Distribution-API-Version") == "registry/2.0")
            let unknown = try await registry.call(.GET, "/v3/")
            #expect(unknown.status == 404 && unknown.header("Docker-Distribution-API-Version") == "registry/2.0")
        }
    }

    /// A blob pushed in one POST, and one pushed in chunks (POST, PATCH..., PUT), read back
    /// whole and by range; a chunk out of order is 416 and the upload goes on from where it was.
    @Test func blobsPushedWholeAndInChunksReadBackWholeAndByRange() async throws {
        try await withRegistry { _, registry in
            let small = pseudoRandomBytes(10_000, seed: 1)
            let digest = try await registry.pushBlob("tools/busybox", small)
            let head = try await registry.call(.HEAD, "/v2/tools/busybox/blobs/\(digest)")
            #expect(head.status == 200 && head.header("Content-Length") == "10000" && head.body.isEmpty)
            #expect(head.header("Docker-Content-Digest") == digest.description)
            let whole = try await registry.call(.GET, "/v2/tools/busybox/blobs/\(digest)")
            #expect(whole.status == 200 && whole.body == small)
            let part = try await registry.call(.GET, "/v2/tools/busybox/blobs/\(digest)", headers: ["Range": "bytes=100-199"])
            #expect(part.status == 206 && part.body == Array(small[100..<200]))
            #expect(part.header("Content-Range") == "bytes 100-199/10000")
            let tail = try await registry.call(.GET, "/v2/tools/busybox/blobs/\(digest)", headers: ["Range": "bytes=-10"])
            #expect(tail.status == 206 && tail.body == Array(small.suffix(10)))
            let outside = try await registry.call(.GET, "/v2/tools/busybox/blobs/\(digest)", headers: ["Range": "bytes=20000-"])
            #expect(outside.status == 416 && outside.header("Content-Range") == "bytes */10000")

            // In chunks: 3 MiB in three PATCHes, the last bytes with the closing PUT.
            let large = pseudoRandomBytes(3 << 20 + 123, seed: 2)
            let started = try await registry.call(.POST, "/v2/tools/busybox/blobs/uploads/")
            #expect(started.status == 202 && started.header("Range") == "0-0")
            var location = try #require(started.header("Location"))
            #expect(location.contains("/v2/tools/busybox/blobs/uploads/"))
            var offset = 0
            for _ in 0..<3 {
                let chunk = Array(large[offset..<(offset + (1 << 20))])
                let patched = try await registry.call(
                    .PATCH, location, headers: ["Content-Range": "\(offset)-\(offset + chunk.count - 1)"], body: chunk)
                #expect(patched.status == 202 && patched.header("Range") == "0-\(offset + chunk.count - 1)")
                location = try #require(patched.header("Location"))
                offset += chunk.count
            }
            // Out of order: refused, nothing written, and the status says where to go on.
            let wrong = try await registry.call(.PATCH, location, headers: ["Content-Range": "0-9"], body: Array(large[0..<10]))
            #expect(wrong.status == 416)
            let status = try await registry.call(.GET, location)
            #expect(status.status == 204 && status.header("Range") == "0-\(offset - 1)")
            let largeDigest = Digest.of(large)
            let closed = try await registry.call(.PUT, location + "?digest=\(largeDigest)", body: Array(large[offset...]))
            #expect(closed.status == 201 && closed.header("Location") == "/v2/tools/busybox/blobs/\(largeDigest)")
            let back = try await registry.call(.GET, "/v2/tools/busybox/blobs/\(largeDigest)")
            #expect(back.body == large)
            // The finished upload is gone.
            #expect(try await registry.call(.GET, location).status == 404)

            // Mounting into another repository: the store already has the blob.
            let mounted = try await registry.call(.POST, "/v2/other/repo/blobs/uploads/?mount=\(largeDigest)&from=tools/busybox")
            #expect(mounted.status == 201 && mounted.header("Location") == "/v2/other/repo/blobs/\(largeDigest)")
            // A mount of what the store lacks starts an upload instead.
            let missing = Digest.of(Array("absent".utf8))
            let notMounted = try await registry.call(.POST, "/v2/other/repo/blobs/uploads/?mount=\(missing)&from=tools/busybox")
            #expect(notMounted.status == 202)
            let cancel = try await registry.call(.DELETE, try #require(notMounted.header("Location")))
            #expect(cancel.status == 204)
        }
    }

    @Test func manifestsByTagAndDigestTagsAndCatalogPageWithLinks() async throws {
        try await withRegistry { _, registry in
            let layer = pseudoRandomBytes(4096, seed: 3)
            let (bytes, put) = try await registry.pushManifest("apps/web", "v1", config: imageConfig("a"), layers: [layer])
            #expect(put.status == 201)
            let digest = Digest.of(bytes)
            #expect(put.header("Docker-Content-Digest") == digest.description)
            #expect(put.header("Location") == "/v2/apps/web/manifests/\(digest)")

            for reference in ["v1", digest.description] {
                let got = try await registry.call(.GET, "/v2/apps/web/manifests/\(reference)")
                #expect(got.status == 200 && got.body == bytes, "the manifest's exact bytes by \(reference)")
                #expect(got.header("Content-Type") == "application/vnd.oci.image.manifest.v1+json")
                #expect(got.header("Docker-Content-Digest") == digest.description)
                let head = try await registry.call(.HEAD, "/v2/apps/web/manifests/\(reference)")
                #expect(head.status == 200 && head.header("Content-Length") == "\(bytes.count)" && head.body.isEmpty)
            }
            for tag in ["v2", "v3", "latest"] {
                #expect(try await registry.pushManifest("apps/web", tag, config: imageConfig(tag), layers: [layer]).reply.status == 201)
            }
            _ = try await registry.pushManifest("apps/api", "1.0", config: imageConfig("api"), layers: [layer])

            let all = try await registry.call(.GET, "/v2/apps/web/tags/list")
            #expect(all.status == 200 && all.text == #"{"name":"apps/web","tags":["latest","v1","v2","v3"]}"#)
            let first = try await registry.call(.GET, "/v2/apps/web/tags/list?n=2")
            #expect(first.text == #"{"name":"apps/web","tags":["latest","v1"]}"#)
            #expect(first.header("Link") == #"</v2/apps/web/tags/list?n=2&last=v1>; rel="next""#)
            let second = try await registry.call(.GET, "/v2/apps/web/tags/list?n=2&last=v1")
            #expect(second.text == #"{"name":"apps/web","tags":["v2","v3"]}"#)
            #expect(second.header("Link") == nil)
            let none = try await registry.call(.GET, "/v2/apps/web/tags/list?n=0")
            #expect(none.text == #"{"name":"apps/web","tags":[]}"# && none.header("Link") == nil)
            let catalog = try await registry.call(.GET, "/v2/_catalog?n=1")
            #expect(catalog.text == #"{"repositories":["apps/api"]}"#)
            #expect(catalog.header("Link") == #"</v2/_catalog?n=1&last=apps%2Fapi>; rel="next""#)
            #expect(try await registry.call(.GET, "/v2/_catalog").text == #"{"repositories":["apps/api","apps/web"]}"#)

            // Deleting a tag leaves the manifest; deleting the manifest takes every tag with it.
            #expect(try await registry.call(.DELETE, "/v2/apps/web/manifests/v3").status == 202)
            #expect(try await registry.call(.GET, "/v2/apps/web/manifests/v3").errorCode == "MANIFEST_UNKNOWN")
            #expect(try await registry.call(.DELETE, "/v2/apps/web/manifests/\(digest)").status == 202)
            let gone = try await registry.call(.GET, "/v2/apps/web/manifests/v1")
            #expect(gone.status == 404 && gone.errorCode == "MANIFEST_UNKNOWN")
            #expect(try await registry.call(.GET, "/v2/apps/web/manifests/\(digest)").status == 404)
        }
    }

    /// A blob no manifest names can be deleted; one a manifest names cannot (that would break
    /// the image). Manifests with a `subject` are listed by the referrers API.
    @Test func blobDeletionAndReferrers() async throws {
        try await withRegistry { _, registry in
            let loose = try await registry.pushBlob("tools/y", pseudoRandomBytes(300, seed: 6))
            #expect(try await registry.call(.DELETE, "/v2/tools/y/blobs/\(loose)").status == 202)
            #expect(try await registry.call(.HEAD, "/v2/tools/y/blobs/\(loose)").status == 404)
            #expect(try await registry.call(.DELETE, "/v2/tools/y/blobs/\(loose)").errorCode == "BLOB_UNKNOWN")

            let layer = pseudoRandomBytes(200, seed: 7)
            let (imageBytes, _) = try await registry.pushManifest("tools/y", "v1", config: imageConfig("y"), layers: [layer])
            let referenced = try await registry.call(.DELETE, "/v2/tools/y/blobs/\(Digest.of(layer))")
            #expect(referenced.status == 405 && referenced.errorCode == "UNSUPPORTED")
            #expect(try await registry.call(.HEAD, "/v2/tools/y/blobs/\(Digest.of(layer))").status == 200)

            // An artifact (a signature, say) whose subject is the image.
            let image = Digest.of(imageBytes)
            let empty = Array("{}".utf8)
            let emptyDigest = try await registry.pushBlob("tools/y", empty)
            let artifact = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.signature","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\#(emptyDigest)","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(image)","size":\#(imageBytes.count)},"annotations":{"signed.by":"ops"}}"#
            let pushed = try await registry.call(
                .PUT, "/v2/tools/y/manifests/\(Digest.of(Array(artifact.utf8)))",
                headers: ["Content-Type": "application/vnd.oci.image.manifest.v1+json"], body: Array(artifact.utf8))
            #expect(pushed.status == 201 && pushed.header("OCI-Subject") == image.description)
            struct Index: Decodable { struct Entry: Decodable { var digest: String; var artifactType: String?; var annotations: [String: String]? }; var manifests: [Entry] }
            let listed = try await registry.call(.GET, "/v2/tools/y/referrers/\(image)")
            #expect(listed.status == 200 && listed.header("Content-Type") == "application/vnd.oci.image.index.v1+json")
            let index = try JSONDecoder().decode(Index.self, from: Data(listed.body))
            #expect(index.manifests.map(\.digest) == [Digest.of(Array(artifact.utf8)).description])
            #expect(index.manifests.first?.artifactType == "application/vnd.example.signature")
            #expect(index.manifests.first?.annotations?["signed.by"] == "ops")
            let filtered = try await registry.call(.GET, "/v2/tools/y/referrers/\(image)?artifactType=application/vnd.example.sbom")
            #expect(filtered.header("OCI-Filters-Applied") == "artifactType")
            let filteredIndex = try JSONDecoder().decode(Index.self, from: Data(filtered.body))
            #expect(filteredIndex.manifests.isEmpty)
            let none = try await registry.call(.GET, "/v2/tools/y/referrers/\(Digest.of(layer))")
            let noneIndex = try JSONDecoder().decode(Index.self, from: Data(none.body))
            #expect(none.status == 200 && noneIndex.manifests.isEmpty)
        }
    }

    /// An image pushed by another process (`strata image push` opens the store itself) is
    /// served by the running registry, which then takes its own pushes back.
    @Test func imagesPushedByAnotherProcessAreServedAndPushesGoOn() async throws {
        try await withRegistry { cluster, registry in
            let directory = cluster.directory + "/layout"
            let layout = try TestLayout.write(at: directory, tag: "1", layers: [TestLayout.fileLayer("etc/a", "a\n")])
            try await cluster.pushImage(from: directory, repository: "cli/pushed", tag: "1")
            let got = try await registry.call(.GET, "/v2/cli/pushed/manifests/1")
            #expect(got.status == 200 && got.header("Docker-Content-Digest") == layout.manifest.description)
            #expect(try await registry.call(.GET, "/v2/cli/pushed/tags/list").text == #"{"name":"cli/pushed","tags":["1"]}"#)
            #expect(try await registry.call(.GET, "/v2/_catalog").text == #"{"repositories":["cli/pushed"]}"#)
            let pushed = try await registry.pushManifest("cli/pushed", "2", config: imageConfig("two"), layers: [pseudoRandomBytes(64, seed: 9)])
            #expect(pushed.reply.status == 201)
            #expect(try await registry.call(.GET, "/v2/cli/pushed/tags/list").text == #"{"name":"cli/pushed","tags":["1","2"]}"#)
        }
    }

    /// An image another process pushes or removes while the registry serves (a `strata image`
    /// command takes the index over) is what the registry answers with next: it is listed and
    /// served once pushed, its blobs cannot be deleted through the registry, and it is gone once
    /// removed. The registry used to answer from the index as it had last written it itself.
    @Test func imagesAnotherProcessPushesAndRemovesAreWhatTheRegistryServes() async throws {
        try await withRegistry { cluster, registry in
            // What the registry knows before: one image of its own.
            _ = try await registry.pushManifest("tools/own", "v1", config: imageConfig("own"), layers: [pseudoRandomBytes(100, seed: 9)])
            let layout = cluster.directory + "/other/layout"
            let blobs = try makeBusyboxLayout(at: layout, tag: "v1")
            let layer = try #require(blobs.values.max { $0.count < $1.count })
            var logger = Logger(label: "strata.registry.test")
            logger.logLevel = .warning

            try await using(cluster.client()) { client in
                let other = ImageStore(client: client, logger: logger)
                try await other.open()
                let pushed = try await other.push(try ImageSource.open(layout), repository: "tools/busybox", tag: "v1")
                try await other.close()

                let manifest = try await registry.call(.GET, "/v2/tools/busybox/manifests/v1", headers: ["Accept": "application/vnd.oci.image.manifest.v1+json"])
                #expect(manifest.status == 200 && manifest.header("Docker-Content-Digest") == pushed.digest.description)
                #expect(try await registry.call(.GET, "/v2/_catalog").text.contains("tools/busybox"))
                let deletion = try await registry.call(.DELETE, "/v2/tools/busybox/blobs/\(Digest.of(layer))")
                #expect(deletion.status == 405 && deletion.errorCode == "UNSUPPORTED", "a layer the other process's image names")
                #expect(try await registry.call(.HEAD, "/v2/tools/busybox/blobs/\(Digest.of(layer))").status == 200)

                let remover = ImageStore(client: client, logger: logger)
                try await remover.open()
                _ = try await remover.removeImage(repository: "tools/busybox", tag: "v1")
                try await remover.close()
                #expect(try await registry.call(.GET, "/v2/tools/busybox/manifests/v1").errorCode == "NAME_UNKNOWN")
                #expect(try await registry.call(.GET, "/v2/tools/own/tags/list").status == 200)
            }
        }
    }

    /// Bad requests get the spec's codes and statuses and store nothing; the registry keeps
    /// serving.
    @Test func badInputGetsTheSpecsErrorsAndNothingIsStored() async throws {
        try await withRegistry { cluster, registry in
            let bytes = pseudoRandomBytes(5000, seed: 4)
            let wrongDigest = Digest.of(Array("something else".utf8))
            let mismatch = try await registry.call(.POST, "/v2/tools/x/blobs/uploads/?digest=\(wrongDigest)", body: bytes)
            #expect(mismatch.status == 400 && mismatch.errorCode == "DIGEST_INVALID")
            #expect(try await registry.call(.HEAD, "/v2/tools/x/blobs/\(Digest.of(bytes))").status == 404)
            #expect(try await registry.call(.HEAD, "/v2/tools/x/blobs/\(wrongDigest)").status == 404)

            let malformed = try await registry.call(.GET, "/v2/tools/x/blobs/sha256:nothex")
            #expect(malformed.status == 400 && malformed.errorCode == "DIGEST_INVALID")
            let badName = try await registry.call(.GET, "/v2/Tools/X/tags/list")
            #expect(badName.status == 400 && badName.errorCode == "NAME_INVALID")
            let unknownName = try await registry.call(.GET, "/v2/nobody/here/tags/list")
            #expect(unknownName.status == 404 && unknownName.errorCode == "NAME_UNKNOWN")
            let unknownBlob = try await registry.call(.GET, "/v2/tools/x/blobs/\(wrongDigest)")
            #expect(unknownBlob.status == 404 && unknownBlob.errorCode == "BLOB_UNKNOWN")
            let unknownUpload = try await registry.call(.PATCH, "/v2/tools/x/blobs/uploads/00000000-0000-0000-0000-000000000000", body: [1])
            #expect(unknownUpload.status == 404 && unknownUpload.errorCode == "BLOB_UPLOAD_UNKNOWN")
            let notAnId = try await registry.call(.GET, "/v2/tools/x/blobs/uploads/..%2F..%2Fblobs")
            #expect(notAnId.status == 404 && notAnId.errorCode == "BLOB_UPLOAD_UNKNOWN")

            // A chunked upload closed with the wrong digest: refused, and the upload is gone.
            let started = try await registry.call(.POST, "/v2/tools/x/blobs/uploads/")
            let location = try #require(started.header("Location"))
            _ = try await registry.call(.PATCH, location, body: bytes)
            let wrongClose = try await registry.call(.PUT, location + "?digest=\(wrongDigest)")
            #expect(wrongClose.status == 400 && wrongClose.errorCode == "DIGEST_INVALID")
            #expect(try await registry.call(.GET, location).status == 404)
            let noDigest = try await registry.call(.PUT, "/v2/tools/x/blobs/uploads/00000000-0000-0000-0000-000000000000")
            #expect(noDigest.status == 400 && noDigest.errorCode == "DIGEST_INVALID")

            // A manifest naming a blob the store lacks, and bytes that are no manifest.
            let layer = pseudoRandomBytes(100, seed: 5)
            let config = imageConfig("c")
            let configDigest = try await registry.pushBlob("tools/x", config)
            let orphan = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(Digest.of(layer))","size":100}]}"#
            let missingBlob = try await registry.call(
                .PUT, "/v2/tools/x/manifests/v1", headers: ["Content-Type": "application/vnd.oci.image.manifest.v1+json"], body: Array(orphan.utf8))
            #expect(missingBlob.status == 400 && missingBlob.errorCode == "MANIFEST_BLOB_UNKNOWN")
            let garbage = try await registry.call(
                .PUT, "/v2/tools/x/manifests/v1", headers: ["Content-Type": "application/vnd.oci.image.manifest.v1+json"], body: Array("{not json".utf8))
            #expect(garbage.status == 400 && garbage.errorCode == "MANIFEST_INVALID")
            let badTag = try await registry.call(
                .PUT, "/v2/tools/x/manifests/-bad", headers: ["Content-Type": "application/vnd.oci.image.manifest.v1+json"], body: Array(orphan.utf8))
            #expect(badTag.status == 400 && badTag.errorCode == "TAG_INVALID")
            // Clients that die mid-body: a monolithic upload and a chunk, each cut short.
            let whole = pseudoRandomBytes(200_000, seed: 8)
            try sendTruncated(port: registry.port, method: "POST", path: "/v2/tools/x/blobs/uploads/?digest=\(Digest.of(whole))",
                declared: whole.count, body: Array(whole.prefix(50_000)))
            let chunked = try await registry.call(.POST, "/v2/tools/x/blobs/uploads/")
            let chunkLocation = try #require(chunked.header("Location"))
            try sendTruncated(port: registry.port, method: "PATCH", path: chunkLocation, declared: whole.count, body: Array(whole.prefix(70_000)))
            // As a client does after a broken chunk: ask where the upload is and go on from there
            // (a 416 means the broken chunk was still being wound up and moved the end; ask again).
            var resumed: RegistryClient.Reply?
            for _ in 0..<10 where resumed?.status != 202 {
                let status = try await registry.call(.GET, chunkLocation)
                let end = try #require(status.header("Range").flatMap { $0.split(separator: "-").last.flatMap { Int($0) } })
                let held = end == 0 ? 0 : end + 1
                #expect(held <= 70_000, "an interrupted chunk left \(held) bytes")
                resumed = try await registry.call(
                    .PATCH, chunkLocation, headers: ["Content-Range": "\(held)-\(whole.count - 1)"], body: Array(whole[held...]))
            }
            #expect(resumed?.status == 202, "\(resumed?.text ?? "")")
            #expect(try await registry.call(.HEAD, "/v2/tools/x/blobs/\(Digest.of(whole))").status == 404)
            let finished = try await registry.call(.PUT, chunkLocation + "?digest=\(Digest.of(whole))")
            #expect(finished.status == 201, "\(finished.text)")
            #expect(try await registry.call(.GET, "/v2/tools/x/blobs/\(Digest.of(whole))").body == whole)

            // None of it made a repository.
            #expect(try await registry.call(.GET, "/v2/_catalog").text == #"{"repositories":[]}"#)
            #expect(try await registry.call(.GET, "/v2/tools/x/manifests/v1").status == 404)

            // Still serving: a good push works.
            #expect(try await registry.pushManifest("tools/x", "v1", config: config, layers: [layer]).reply.status == 201)
            _ = cluster
        }
    }
}
