import Foundation
import StrataImages
import StrataTestKit
import Testing

/// The registry with an unmodified OCI client: Debian's `skopeo` pushes an image layout to it,
/// in the OCI format and converted to Docker schema 2, and copies it back out.
@Suite(.serialized) struct SkopeoTests {
    static let skopeo = "/usr/bin/skopeo"

    @Test func skopeoPushesAndPullsOCIAndDockerSchema2Images() async throws {
        try await withRegistry { cluster, registry in
            let work = cluster.directory + "/skopeo"
            let layout = work + "/layout"
            let blobs = try makeBusyboxLayout(at: layout, tag: "v1")
            let address = "127.0.0.1:\(registry.port)"
            func skopeo(_ arguments: [String]) throws -> String {
                let result = try TestExecutables.run(Self.skopeo, ["--insecure-policy"] + arguments)
                try #require(result.status == 0, "skopeo \(arguments.joined(separator: " ")): \(result.error)")
                return result.output
            }

            // OCI as it is: every blob arrives byte for byte.
            _ = try skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):v1", "docker://\(address)/tools/busybox:v1"])
            for (digest, bytes) in blobs {
                let stored = try await registry.call(.GET, "/v2/tools/busybox/blobs/\(digest)")
                #expect(stored.status == 200 && stored.body == bytes, "blob \(digest)")
            }
            let manifestDigest = try #require(blobs.first { String(decoding: $0.value, as: UTF8.self).contains("\"schemaVersion\"") }?.key)
            let byTag = try await registry.call(.GET, "/v2/tools/busybox/manifests/v1", headers: ["Accept": "application/vnd.oci.image.manifest.v1+json"])
            #expect(byTag.header("Docker-Content-Digest") == manifestDigest)

            // Converted to Docker schema 2 on the way in.
            _ = try skopeo(["copy", "--dest-tls-verify=false", "--format", "v2s2", "oci:\(layout):v1", "docker://\(address)/tools/busybox:docker"])
            let docker = try await registry.call(.GET, "/v2/tools/busybox/manifests/docker")
            #expect(docker.header("Content-Type") == "application/vnd.docker.distribution.manifest.v2+json")
            let inspected = try skopeo(["inspect", "--raw", "--tls-verify=false", "docker://\(address)/tools/busybox:docker"])
            #expect(Array(inspected.utf8) == docker.body)

            let tags = try skopeo(["list-tags", "--tls-verify=false", "docker://\(address)/tools/busybox"])
            #expect(tags.contains("\"docker\"") && tags.contains("\"v1\""))

            // And back out: the OCI image's blobs come back identical.
            let pulled = work + "/pulled"
            _ = try skopeo(["copy", "--src-tls-verify=false", "docker://\(address)/tools/busybox:v1", "oci:\(pulled):v1"])
            for (digest, bytes) in blobs {
                let hex = String(digest.dropFirst("sha256:".count))
                let copy = try Data(contentsOf: URL(fileURLWithPath: pulled + "/blobs/sha256/" + hex))
                #expect(Array(copy) == bytes, "blob \(digest) pulled back")
            }
            let dockerPulled = work + "/docker-pulled"
            _ = try skopeo(["copy", "--src-tls-verify=false", "docker://\(address)/tools/busybox:docker", "dir:\(dockerPulled)"])
            let layer = try #require(blobs.values.max { $0.count < $1.count })
            let layerHex = Digest.of(layer).hex
            #expect(FileManager.default.contents(atPath: dockerPulled + "/" + layerHex).map(Array.init) == layer)

            // Deleting by digest through skopeo.
            _ = try skopeo(["delete", "--tls-verify=false", "docker://\(address)/tools/busybox:docker"])
            #expect(try await registry.call(.GET, "/v2/tools/busybox/manifests/docker").status == 404)
        }
    }
}
