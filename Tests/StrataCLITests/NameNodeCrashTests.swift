import Foundation
import Testing

/// The name node is killed with SIGKILL after puts were acknowledged; after a restart every
/// file reads back with the same SHA-256 and the namespace lists the same.
@Suite(.serialized) struct NameNodeCrashTests {
    @Test func acknowledgedPutsSurviveKill9OfTheNameNode() throws {
        let cluster = try ProcessCluster()
        try cluster.waitUntilReady()
        let local = cluster.directory + "/local"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        var expected: [String: String] = [:]
        let files: [(name: String, size: Int, text: Bool)] = [
            ("empty", 0, true), ("one-byte", 1, true), ("logs.txt", 300_000, true), ("random.bin", 2_500_000, false),
        ]
        #expect(try cluster.run(["dfs", "mkdir", "-p", "/data/nested"]).status == 0)
        for (index, file) in files.enumerated() {
            let path = local + "/" + file.name
            try makeData(file.size, seed: UInt64(index), text: file.text).write(to: URL(fileURLWithPath: path))
            // A small block size so the larger files span several blocks.
            let put = try cluster.run(["dfs", "put", "-D", "dfs.blocksize=1m", path, "/data/nested/" + file.name])
            #expect(put.status == 0, "put \(file.name): \(put.error)")
            expected["/data/nested/" + file.name] = try sha256(path)
        }
        #expect(try cluster.run(["dfs", "touchz", "/data/marker"]).status == 0)
        #expect(try cluster.run(["dfs", "mv", "/data/nested/one-byte", "/data/one-byte-moved"]).status == 0)
        expected["/data/one-byte-moved"] = expected.removeValue(forKey: "/data/nested/one-byte")
        #expect(try cluster.run(["dfs", "chmod", "700", "/data/nested"]).status == 0)
        let before = try cluster.run(["dfs", "ls", "-R", "/"])
        #expect(before.status == 0)

        cluster.killNameNode()
        try cluster.startNameNode()
        try cluster.waitUntilReady()

        let after = try cluster.run(["dfs", "ls", "-R", "/"])
        #expect(after.output == before.output, "namespace differs after restart")
        for (path, digest) in expected {
            let copy = local + "/copy-" + (path as NSString).lastPathComponent
            let get = try cluster.run(["dfs", "get", path, copy])
            #expect(get.status == 0, "get \(path): \(get.error)")
            #expect(try sha256(copy) == digest, "\(path) changed")
        }
        let fsck = try cluster.run(["fsck", "/"])
        #expect(fsck.status == 0)
        #expect(fsck.output.contains("is HEALTHY"))
    }
}
