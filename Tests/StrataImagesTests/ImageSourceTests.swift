import Foundation
import StrataClient
import StrataTestKit
import Testing

@testable import StrataImages

/// Reading images from layouts and from the archives skopeo writes, and pushing them.
@Suite(.serialized) struct ImageSourceTests {
    @Test func oneImageOfSeveralIsChosenByItsRefName() async throws {
        try await withTemporaryDirectory { directory in
            let layout = try TestLayout.write(at: directory + "/layout", tag: "1", layers: [TestLayout.fileLayer("etc/a", "a")])
            // A second image in the same layout, as skopeo adds one.
            let other = try TestLayout.write(at: directory + "/other", tag: "2", layers: [TestLayout.fileLayer("etc/b", "b")])
            for blob in other.blobs {
                try FileManager.default.copyItem(
                    atPath: other.directory + "/blobs/sha256/" + blob.hex, toPath: layout.directory + "/blobs/sha256/" + blob.hex)
            }
            var index = try JSONDecoder().decode(OCIImageIndex.self, from: Data(contentsOf: URL(fileURLWithPath: layout.directory + "/index.json")))
            index.manifests += try JSONDecoder().decode(OCIImageIndex.self, from: Data(contentsOf: URL(fileURLWithPath: other.directory + "/index.json"))).manifests
            try JSONEncoder().encode(index).write(to: URL(fileURLWithPath: layout.directory + "/index.json"))

            #expect(try ImageSource.open(layout.directory, reference: "2").top.digest == other.manifest)
            #expect(try ImageSource.open(layout.directory, preferring: "1").top.digest == layout.manifest)
            let ambiguous = #expect(throws: ImageSourceError.self) { try ImageSource.open(layout.directory) }
            #expect(ambiguous?.message.contains("--ref") == true)
            let unknown = #expect(throws: ImageSourceError.self) { try ImageSource.open(layout.directory, reference: "3") }
            #expect(unknown?.message.contains("has no image named 3 (it has: 1, 2)") == true)
            let source = try ImageSource.open(layout.directory, reference: "1")
            #expect(source.format == .ociLayout)
            #expect(Set(source.blobs.keys) == Set([layout.config] + layout.layers))
        }
    }

    @Test func missingAndWrongSourcesSayWhatIsWrong() async throws {
        try await withTemporaryDirectory { directory in
            func message(_ path: String) -> String {
                do {
                    _ = try ImageSource.open(path)
                    return "opened"
                } catch {
                    return "\(error)"
                }
            }
            #expect(message(directory + "/nothing").hasSuffix("no such file or directory"))
            #expect(message(directory).contains("not an OCI image layout"))
            try Data([0x1f, 0x8b, 8, 0, 0, 0]).write(to: URL(fileURLWithPath: directory + "/image.tar.gz"))
            #expect(message(directory + "/image.tar.gz").contains("gzip-compressed"))
            try Data("hello".utf8).write(to: URL(fileURLWithPath: directory + "/notes.txt"))
            #expect(message(directory + "/notes.txt").contains("not a tar archive"))
            var tar = TestTarWriter()
            tar.file("README", Array("x".utf8))
            try Data(tar.finish()).write(to: URL(fileURLWithPath: directory + "/other.tar"))
            #expect(message(directory + "/other.tar").contains("neither an oci-archive"))
            // A layout missing a layer.
            let layout = try TestLayout.write(at: directory + "/layout", tag: "1", layers: [TestLayout.fileLayer("etc/a", "a")])
            try FileManager.default.removeItem(atPath: layout.directory + "/blobs/sha256/" + layout.layers[0].hex)
            #expect(message(layout.directory).contains("blob \(layout.layers[0]) (application/vnd.oci.image.layer.v1.tar) is missing"))
        }
    }

    /// skopeo (Debian's) writes an oci-archive and a docker-archive of a busybox layout; both push,
    /// the docker one as a Docker schema 2 image whose uncompressed layer is the same blob.
    @Test func archivesSkopeoWritesArePushedAndShareTheirLayer() async throws {
        try await withTemporaryDirectory { directory in
            let layout = try TestLayout.write(at: directory + "/layout", tag: "1", layers: [try TestLayout.busyboxLayer()])
            let ociArchive = directory + "/busybox-oci.tar"
            let dockerArchive = directory + "/busybox-docker.tar"
            // Made before the cluster starts: waiting for a process blocks a thread.
            try run("/usr/bin/skopeo", ["--insecure-policy", "copy", "oci:\(layout.directory):1", "oci-archive:\(ociArchive):1"])
            try run("/usr/bin/skopeo", ["--insecure-policy", "copy", "oci:\(layout.directory):1", "docker-archive:\(dockerArchive):tools/busybox:1"])

            let fromOCI = try ImageSource.open(ociArchive)
            #expect(fromOCI.format == .ociArchive)
            // skopeo compresses the layer on its way to an OCI destination.
            #expect(fromOCI.top.image?.layers.map(\.mediaType) == [OCIMediaType.layerTarGzip])
            let fromDocker = try ImageSource.open(dockerArchive, reference: "tools/busybox:1")
            #expect(fromDocker.format == .dockerArchive)
            #expect(fromDocker.top.mediaType == OCIMediaType.dockerManifest)
            let dockerImage = try #require(fromDocker.top.image)
            #expect(dockerImage.config.mediaType == OCIMediaType.dockerConfig)
            #expect(dockerImage.layers.map(\.mediaType) == [OCIMediaType.dockerLayerTar])
            #expect(dockerImage.layers.map(\.digest) == layout.layers)
            #expect(try ImageSource.open(dockerArchive).top.digest == fromDocker.top.digest)

            try await withImageStore { cluster, store in
                try await store.push(try ImageSource.open(layout.directory), repository: "tools/busybox", tag: "layout")
                let oci = try await store.push(fromOCI, repository: "tools/busybox", tag: "oci")
                #expect(oci.digest == fromOCI.top.digest)
                let docker = try await store.push(fromDocker, repository: "tools/busybox", tag: "docker")
                #expect(docker.existingBlobs.contains(layout.layers[0]))
                #expect(try store.listTags(repository: "tools/busybox").names == ["docker", "layout", "oci"])
                let stored = try await store.getManifest(repository: "tools/busybox", reference: .tag("docker"))
                #expect(stored.bytes == fromDocker.top.bytes)
                #expect(stored.mediaType == OCIMediaType.dockerManifest)
                let resolved = try await store.resolve(repository: "tools/busybox", reference: .tag("docker"))
                #expect(resolved.configuration.config?.cmd == ["sh"])
                try await using(cluster.client()) { (client: DFSClient) async throws in
                    // The layout's and the docker-archive's layer is one blob.
                    let blobs = try await storedBlobs(client)
                    #expect(blobs.isSuperset(of: layout.blobs.union(fromOCI.blobs.keys).union(fromDocker.blobs.keys)))
                    #expect(blobs.count == Set(layout.blobs.union(fromOCI.blobs.keys).union(fromDocker.blobs.keys)).count + 2)
                }
                // The pulled docker image is an OCI layout skopeo reads: its manifest converted, its blobs as they were.
                let pulled = directory + "/pulled"
                let pull = try await store.pull(repository: "tools/busybox", reference: .tag("docker"), to: pulled)
                #expect(pull.storedDigest == fromDocker.top.digest)
                #expect(pull.mediaType == OCIMediaType.imageManifest)
                let converted = try ImageSource.open(pulled, reference: "docker")
                #expect(converted.top.digest == pull.digest)
                #expect(converted.top.image?.layers.map(\.digest) == layout.layers)
                #expect(converted.top.image?.layers.map(\.mediaType) == [OCIMediaType.layerTar])
                #expect(converted.top.image?.config.digest == dockerImage.config.digest)
            }
            let inspected = try run("/usr/bin/skopeo", ["--insecure-policy", "inspect", "--raw", "oci:\(directory)/pulled:docker"])
            #expect(Digest.of(Array(inspected.utf8)) == (try ImageSource.open(directory + "/pulled", reference: "docker").top.digest))
            // And copies it back to a docker-archive.
            try run("/usr/bin/skopeo", ["--insecure-policy", "copy", "oci:\(directory)/pulled:docker", "docker-archive:\(directory)/again.tar:tools/busybox:1"])
            #expect(try ImageSource.open(directory + "/again.tar").top.image?.layers.map(\.digest) == layout.layers)
        }
    }
}
