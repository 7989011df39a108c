import Foundation
import Testing

@testable import StrataImages

/// Digests, manifests, indexes and configs, without a cluster.
struct OCITypesTests {
    static let emptyDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    @Test func digestsParseOnlySha256WithSixtyFourLowercaseHexDigits() throws {
        #expect(try Digest(parsing: Self.emptyDigest).description == Self.emptyDigest)
        #expect(Digest.of([]) == Digest(Self.emptyDigest))
        for bad in [
            "", "sha256", "sha256:", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            Self.emptyDigest.uppercased(), "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            String(Self.emptyDigest.dropLast()), Self.emptyDigest + "0", "sha256:../../../../etc/passwd",
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        ] {
            #expect(throws: ImageStoreError.self, "\(bad)") { try Digest(parsing: bad) }
        }
        do {
            _ = try Digest(parsing: "sha512:abc")
        } catch {
            #expect(error.code == "DIGEST_INVALID")
            #expect(error.message.contains("only sha256"))
        }
    }

    @Test func theHasherFedInPiecesGivesTheDigestOfTheWhole() {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var hasher = SHA256Hasher()
        var position = 0
        for size in [1, 63, 64, 65, 4096, 10_000] where position < bytes.count {
            hasher.update(Array(bytes[position..<min(bytes.count, position + size)]))
            position += size
        }
        hasher.update(Array(bytes[position...]))
        #expect(hasher.count == UInt64(bytes.count))
        #expect(hasher.finalize() == Digest.of(bytes))
        // A copy carries the state on independently (how an upload keeps its hash).
        var copy = hasher
        copy.update([1])
        #expect(hasher.finalize() == Digest.of(bytes))
        #expect(copy.finalize() == Digest.of(bytes + [1]))
        #expect(Digest.of(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    static let configDigest = "sha256:" + String(repeating: "a", count: 64)
    static let layerDigest = "sha256:" + String(repeating: "b", count: 64)

    /// An OCI manifest with fields the store does not know and unusual spacing.
    static let ociManifestText = """
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "\(configDigest)", "size": 7, "futureField": [1, 2]},
          "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "\(layerDigest)", "size": 32654,
             "annotations": {"x": "y"}},
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": "sha256:\(String(repeating: "c", count: 64))",
             "size": 1, "urls": ["https://example.invalid/layer"]}
          ],
          "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
          "somethingNew": {"nested": true}
        }
        """

    @Test func aManifestKeepsItsExactBytesAndTheirDigestAndAcceptsUnknownFields() throws {
        let bytes = Array(Self.ociManifestText.utf8)
        let manifest = try Manifest(bytes: bytes, declaredMediaType: "application/vnd.oci.image.manifest.v1+json; charset=utf-8")
        #expect(manifest.bytes == bytes)
        #expect(manifest.digest == Digest.of(bytes))
        #expect(manifest.mediaType == OCIMediaType.imageManifest)
        let image = try #require(manifest.image)
        #expect(image.config.size == 7)
        #expect(image.layers[0].annotations == ["x": "y"])
        // The nondistributable layer is not a blob the store must hold.
        #expect(manifest.blobs.map(\.digest.description) == [Self.configDigest, Self.layerDigest])
        #expect(manifest.children.isEmpty)
        #expect(OCIMediaType.layerCompression(image.layers[0].mediaType) == .gzip)
    }

    @Test func theMediaTypeComesFromTheManifestTheRequestOrTheFields() throws {
        let docker = """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
             "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"\(Self.configDigest)","size":7},
             "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"\(Self.layerDigest)","size":9}]}
            """
        #expect(try Manifest(bytes: Array(docker.utf8)).mediaType == OCIMediaType.dockerManifest)
        // An OCI manifest may leave its media type out: the request's, else the fields', decide.
        let bare = #"{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"\#(Self.configDigest)","size":1},"layers":[]}"#
        #expect(try Manifest(bytes: Array(bare.utf8)).mediaType == OCIMediaType.imageManifest)
        #expect(try Manifest(bytes: Array(bare.utf8), declaredMediaType: OCIMediaType.dockerManifest).mediaType == OCIMediaType.dockerManifest)
        let list = """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
              {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"\(Self.layerDigest)","size":5,
               "platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
              {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"\(Self.configDigest)","size":5,
               "platform":{"architecture":"amd64","os":"linux","os.features":["x"]}}]}
            """
        let index = try Manifest(bytes: Array(list.utf8))
        #expect(index.mediaType == OCIMediaType.dockerManifestList)
        #expect(index.blobs.isEmpty)
        #expect(index.children.map(\.digest.description) == [Self.layerDigest, Self.configDigest])
        #expect(index.children[1].platform?.osFeatures == ["x"])
        #expect(try ImageStore.choose(.linuxAMD64, from: index.children, in: "x").digest.description == Self.configDigest)
        #expect(throws: ImageStoreError.self) {
            try ImageStore.choose(Platform(architecture: "s390x", os: "linux"), from: index.children, in: "x")
        }
        let ociIndex = #"{"schemaVersion":2,"manifests":[]}"#
        #expect(try Manifest(bytes: Array(ociIndex.utf8)).mediaType == OCIMediaType.imageIndex)
    }

    @Test func badManifestsAreRefusedWithTheSpecsCodes() {
        func code(_ text: String, _ mediaType: String? = nil) -> String? {
            do {
                _ = try Manifest(bytes: Array(text.utf8), declaredMediaType: mediaType)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code("not json") == "MANIFEST_INVALID")
        #expect(code("[1,2]") == "MANIFEST_INVALID")
        #expect(code(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#) == "MANIFEST_INVALID")
        #expect(code(#"{"schemaVersion":3,"manifests":[]}"#) == "MANIFEST_INVALID")
        #expect(code(#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#) == "UNSUPPORTED")
        #expect(code(Self.ociManifestText, OCIMediaType.dockerManifest) == "MANIFEST_INVALID")
        #expect(code(#"{"schemaVersion":2,"mediaType":"text/plain","manifests":[]}"#) == "MANIFEST_INVALID")
        let badDigest = #"{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"md5:abc","size":1},"layers":[]}"#
        #expect(code(badDigest) == "MANIFEST_INVALID")
        #expect(code(String(repeating: " ", count: Manifest.maximumBytes + 1)) == "SIZE_INVALID")
    }

    @Test func anImageConfigGivesWhatAContainerRuns() throws {
        let text = """
            {"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z",
             "config":{"User":"1000:1000","ExposedPorts":{"80/tcp":{}},"Env":["PATH=/bin","A=b"],"Entrypoint":["/bin/sh","-c"],
                       "Cmd":["echo hi"],"WorkingDir":"/srv","Labels":{"a":"b"},"Healthcheck":{"Test":["NONE"]}},
             "rootfs":{"type":"layers","diff_ids":["\(Self.layerDigest)"]},
             "history":[{"created_by":"x"}]}
            """
        let configuration = try OCIImageConfiguration.decode(Array(text.utf8))
        #expect(configuration.platform == .linuxAMD64)
        #expect(configuration.config?.env == ["PATH=/bin", "A=b"])
        #expect(configuration.config?.entrypoint == ["/bin/sh", "-c"])
        #expect(configuration.config?.cmd == ["echo hi"])
        #expect(configuration.config?.workingDir == "/srv")
        #expect(configuration.config?.user == "1000:1000")
        #expect(configuration.config?.exposedPorts?.keys.sorted() == ["80/tcp"])
        #expect(configuration.rootfs.diffIDs.map(\.description) == [Self.layerDigest])
        #expect(throws: ImageStoreError.self) { try OCIImageConfiguration.decode(Array(#"{"os":"linux"}"#.utf8)) }
    }
}

/// Repository names, tags and references.
struct ImageNamesTests {
    @Test func repositoryNamesFollowTheDistributionGrammar() {
        for good in ["a", "busybox", "tools/busybox", "a.b_c__d---e/f0", "library/ubuntu", "x/y/z", "0"] {
            #expect(ImageNames.isValidRepository(good), "\(good)")
        }
        for bad in ["", "A", "Tools/busybox", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a_", ".a", "a b", "a:b", "a@b", "a/../b",
                    String(repeating: "a", count: 256)] {
            #expect(!ImageNames.isValidRepository(bad), "\(bad)")
        }
        #expect(ImageNames.isValidRepository(String(repeating: "a", count: 255)))
    }

    @Test func tagsFollowTheDistributionGrammar() {
        for good in ["latest", "1", "v1.2.3", "_x", "A-b_c.d", String(repeating: "t", count: 128)] {
            #expect(ImageNames.isValidTag(good), "\(good)")
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", String(repeating: "t", count: 129), "é"] {
            #expect(!ImageNames.isValidTag(bad), "\(bad)")
        }
    }

    @Test func referencesAsPeopleWriteThem() throws {
        #expect(try ImageReference(parsing: "tools/busybox:1") == ImageReference(repository: "tools/busybox", reference: .tag("1")))
        #expect(try ImageReference(parsing: "busybox") == ImageReference(repository: "busybox", reference: .tag("latest")))
        let digest = try Digest(parsing: OCITypesTests.emptyDigest)
        #expect(try ImageReference(parsing: "a/b@" + OCITypesTests.emptyDigest) == ImageReference(repository: "a/b", reference: .digest(digest)))
        #expect(try ManifestReference(parsing: OCITypesTests.emptyDigest) == .digest(digest))
        #expect(try ManifestReference(parsing: "v1") == .tag("v1"))
        for (bad, code) in [("Busybox:1", "NAME_INVALID"), ("busybox:-1", "TAG_INVALID"), ("busybox@sha256:12", "DIGEST_INVALID"), (":1", "NAME_INVALID")] {
            do {
                _ = try ImageReference(parsing: bad)
                Issue.record("\(bad) parsed")
            } catch {
                #expect(error.code == code, "\(bad): \(error)")
            }
        }
    }
}
