import Foundation
import StrataTestKit
import Testing

/// `strata image` as a user runs it, against real name node and data node processes: push from
/// a layout, an oci-archive and a docker-archive (made with skopeo), list, inspect, pull, remove.
@Suite(.serialized) struct ImageCLITests {
    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    @Test func pushListInspectPullAndRemoveImagesFromEverySourceFormat() throws {
        let cluster = try ProcessCluster(dataNodes: 1)
        try cluster.waitUntilReady(dataNodes: 1)
        let layoutDirectory = cluster.directory + "/layout"
        let layout = try TestLayout.write(
            at: layoutDirectory, tag: "1", layers: [try TestLayout.busyboxLayer(), TestLayout.fileLayer("etc/motd", "hi\n")], cmd: ["sh"])

        let pushed = try cluster.run(["image", "push", layoutDirectory, "--name", "tools/busybox:1"])
        try #require(pushed.status == 0, "\(pushed.error)")
        #expect(pushed.output.trimmingCharacters(in: .whitespacesAndNewlines) == layout.manifest.description)

        for (format, tag) in [("oci-archive", "archive"), ("docker-archive", "docker")] {
            let archive = cluster.directory + "/\(tag).tar"
            let target = format == "docker-archive" ? "\(format):\(archive):tools/busybox:\(tag)" : "\(format):\(archive)"
            let copied = try TestExecutables.run("/usr/bin/skopeo", ["--insecure-policy", "copy", "oci:\(layoutDirectory):1", target])
            try #require(copied.status == 0, "skopeo: \(copied.error)")
            let result = try cluster.run(["image", "push", archive, "--name", "tools/busybox:\(tag)"])
            #expect(result.status == 0, "\(format): \(result.error)")
        }

        let listed = try cluster.run(["image", "ls", "--json"])
        try #require(listed.status == 0, "\(listed.error)")
        let images = try #require(try Self.json(listed.output) as? [[String: Any]])
        #expect(Set(images.compactMap { $0["tag"] as? String }) == ["1", "archive", "docker"])

        let inspected = try cluster.run(["image", "inspect", "tools/busybox:1", "--json"])
        try #require(inspected.status == 0, "\(inspected.error)")
        #expect(inspected.output.contains(layout.manifest.description))
        for layer in layout.layers { #expect(inspected.output.contains(layer.description)) }

        let pulledDirectory = cluster.directory + "/pulled"
        let pulled = try cluster.run(["image", "pull", "tools/busybox:1", pulledDirectory])
        try #require(pulled.status == 0, "\(pulled.error)")
        for blob in layout.blobs {
            let original = FileManager.default.contents(atPath: "\(layoutDirectory)/blobs/sha256/\(blob.hex)")
            #expect(original != nil && FileManager.default.contents(atPath: "\(pulledDirectory)/blobs/sha256/\(blob.hex)") == original)
        }

        // Removing one tag frees only what no other image uses: the other tags still pull.
        let removed = try cluster.run(["image", "rm", "tools/busybox:1"])
        #expect(removed.status == 0, "\(removed.error)")
        #expect(!removed.output.contains("Deleted blob: \(layout.layers[0])"), "a layer the other images share was freed")
        let stillThere = try cluster.run(["image", "pull", "tools/busybox:archive", cluster.directory + "/pulled-archive"])
        #expect(stillThere.status == 0, "\(stillThere.error)")

        // Clear errors, nothing stored.
        let unknown = try cluster.run(["image", "rm", "tools/nothing:1"])
        #expect(unknown.status == 1 && unknown.error.contains("tools/nothing"), "\(unknown.error)")
        let missing = try cluster.run(["image", "push", cluster.directory + "/no-such-dir", "--name", "tools/x:1"])
        #expect(missing.status == 1 && missing.error.contains("no-such-dir"), "\(missing.error)")
        let badName = try cluster.run(["image", "push", layoutDirectory, "--name", "Tools/X:1"])
        #expect(badName.status != 0 && badName.error.lowercased().contains("name"), "\(badName.error)")
        let after = try cluster.run(["image", "ls", "--json"])
        let remaining = try #require(try Self.json(after.output) as? [[String: Any]])
        #expect(Set(remaining.compactMap { $0["repository"] as? String }) == ["tools/busybox"])
    }
}
