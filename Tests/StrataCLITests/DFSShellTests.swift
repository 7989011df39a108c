import Foundation
import Testing

/// `strata dfs` as users run it: real processes, output shapes and exit statuses of `hdfs dfs`.
@Suite(.serialized) struct DFSShellTests {
    @Test func commandsBehaveLikeHdfsDfs() throws {
        let cluster = try ProcessCluster()
        try cluster.waitUntilReady()
        let local = cluster.directory + "/local"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        let logs = local + "/access.log"
        try makeData(600_000, seed: 7, text: true).write(to: URL(fileURLWithPath: logs))

        // put, then ls with the hdfs column layout.
        #expect(try cluster.run(["dfs", "mkdir", "/logs"]).status == 0)
        let put = try cluster.run(["dfs", "put", "--replication", "2", logs, "/logs/"])
        #expect(put.status == 0, "\(put.error)")
        let ls = try cluster.run(["dfs", "ls", "/logs"])
        #expect(ls.status == 0)
        let lines = ls.output.split(separator: "\n")
        #expect(lines.first == "Found 1 items")
        let columns = lines.last!.split(separator: " ", omittingEmptySubsequences: true)
        #expect(columns.count == 8, "\(lines.last!)")
        #expect(columns[0] == "-rw-r--r--")
        #expect(columns[1] == "2")
        #expect(columns[2] == "tester")
        #expect(columns[3] == "supergroup")
        #expect(columns[4] == "600000")
        #expect(columns[7] == "/logs/access.log")
        let human = try cluster.run(["dfs", "ls", "-h", "/logs/access.log"])
        #expect(human.output.contains("585.9 K"))

        // Existing destination without -f: an error, and no temporary file left behind.
        let again = try cluster.run(["dfs", "put", logs, "/logs/access.log"])
        #expect(again.status == 1)
        #expect(again.error.contains("put: `/logs/access.log': File exists"))
        #expect(try cluster.run(["dfs", "test", "-e", "/logs/access.log._COPYING_"]).status == 1)
        #expect(try cluster.run(["dfs", "put", "-f", logs, "/logs/access.log"]).status == 0)

        // Standard input, cat and ranges, get.
        let piped = try cluster.run(["dfs", "put", "-", "/logs/stdin.txt"], input: Data("from stdin\n".utf8))
        #expect(piped.status == 0, "\(piped.error)")
        #expect(try cluster.run(["dfs", "cat", "/logs/stdin.txt"]).output == "from stdin\n")
        #expect(try cluster.run(["dfs", "cat", "--offset", "5", "--length", "5", "/logs/stdin.txt"]).output == "stdin")
        let copy = local + "/copy.log"
        #expect(try cluster.run(["dfs", "get", "/logs/access.log", copy]).status == 0)
        #expect(try sha256(copy) == sha256(logs))
        let getAgain = try cluster.run(["dfs", "get", "/logs/access.log", copy])
        #expect(getAgain.status == 1)
        #expect(getAgain.error.contains("File exists"))

        // Errors as hdfs prints them.
        let mkdir = try cluster.run(["dfs", "mkdir", "/a/b"])
        #expect(mkdir.status == 1)
        #expect(mkdir.error.contains("mkdir: `/a/b': No such file or directory"))
        #expect(try cluster.run(["dfs", "mkdir", "-p", "/a/b"]).status == 0)
        let rmDirectory = try cluster.run(["dfs", "rm", "/a"])
        #expect(rmDirectory.status == 1)
        #expect(rmDirectory.error.contains("rm: `/a': Is a directory"))
        let rmMissing = try cluster.run(["dfs", "rm", "/missing"])
        #expect(rmMissing.error.contains("rm: `/missing': No such file or directory"))
        #expect(try cluster.run(["dfs", "rm", "-f", "/missing"]).status == 0)
        let invalid = try cluster.run(["dfs", "mkdir", "/x/../y"])
        #expect(invalid.status == 1)
        #expect(invalid.error.contains("Invalid path name"))
        let empty = try cluster.run(["dfs", "ls", "/a//b"])
        #expect(empty.error.contains("empty path component"))
        let long = try cluster.run(["dfs", "mkdir", "/" + String(repeating: "n", count: 300)])
        #expect(long.status == 1)
        #expect(long.error.contains("component"))
        let rmRecursive = try cluster.run(["dfs", "rm", "-r", "/a"])
        #expect(rmRecursive.output.contains("Deleted /a"))

        // Permissions: alice may not write into the superuser's directory, or chmod it.
        let denied = try cluster.run(["dfs", "put", logs, "/logs/alice.log"], user: "alice")
        #expect(denied.status == 1)
        #expect(denied.error.contains("Permission denied: user=alice, access=WRITE"))
        #expect(try cluster.run(["dfs", "test", "-e", "/logs/alice.log._COPYING_"]).status == 1)
        #expect(try cluster.run(["dfs", "chmod", "777", "/logs"], user: "alice").status == 1)
        #expect(try cluster.run(["dfs", "mkdir", "-p", "/user/alice"]).status == 0)
        #expect(try cluster.run(["dfs", "chown", "alice", "/user/alice"]).status == 0)
        #expect(try cluster.run(["dfs", "put", "-", "notes.txt"], input: Data("alice's\n".utf8), user: "alice").status == 0)
        #expect(try cluster.run(["dfs", "chmod", "go-r", "notes.txt"], user: "alice").status == 0)
        let stat = try cluster.run(["dfs", "stat", "%u %a %b %r %n %F", "/user/alice/notes.txt"])
        #expect(stat.output == "alice 600 8 3 notes.txt regular file\n")
        let bob = try cluster.run(["dfs", "cat", "/user/alice/notes.txt"], user: "bob")
        #expect(bob.status == 1)
        #expect(bob.error.contains("access=READ"))
        #expect(try cluster.run(["dfs", "chown", "bob", "/user/alice/notes.txt"], user: "alice").status == 1)

        // test, touchz, appendToFile, mv, cp, count, du.
        #expect(try cluster.run(["dfs", "test", "-d", "/logs"]).status == 0)
        #expect(try cluster.run(["dfs", "test", "-f", "/logs"]).status == 1)
        #expect(try cluster.run(["dfs", "touchz", "/logs/empty"]).status == 0)
        #expect(try cluster.run(["dfs", "test", "-z", "/logs/empty"]).status == 0)
        #expect(try cluster.run(["dfs", "touchz", "/logs/stdin.txt"]).error.contains("Not a zero-length file"))
        #expect(try cluster.run(["dfs", "appendToFile", "-", "/logs/stdin.txt"], input: Data("more\n".utf8)).status == 0)
        #expect(try cluster.run(["dfs", "cat", "/logs/stdin.txt"]).output == "from stdin\nmore\n")
        #expect(try cluster.run(["dfs", "mv", "/logs/stdin.txt", "/logs/moved.txt"]).status == 0)
        #expect(try cluster.run(["dfs", "cp", "/logs/moved.txt", "/logs/copied.txt"]).status == 0)
        #expect(try cluster.run(["dfs", "cat", "/logs/copied.txt"]).output == "from stdin\nmore\n")
        let count = try cluster.run(["dfs", "count", "/logs"])
        #expect(count.output.split(separator: " ", omittingEmptySubsequences: true).map(String.init) == ["1", "4", "\(600_000 + 16 + 16)", "/logs\n"])
        let du = try cluster.run(["dfs", "du", "-s", "--json", "/logs/access.log"])
        let entries = try JSONSerialization.jsonObject(with: Data(du.output.utf8)) as? [[String: Any]]
        let stored = entries?.first?["storedBytes"] as? Int ?? 0
        // Two replicas of log text: far less on disk than twice the raw size.
        #expect(stored > 0 && stored < 600_000, "stored \(stored)")

        // setrep waits until the name node has added a replica.
        let setrep = try cluster.run(["dfs", "setrep", "-w", "3", "/logs/access.log"])
        #expect(setrep.status == 0)
        #expect(setrep.output.contains("Replication 3 set: /logs/access.log"))
        let fsck = try cluster.run(["fsck", "/"])
        #expect(fsck.status == 0)
        #expect(fsck.output.contains("Status: HEALTHY"))
    }

    /// Large gets write page-aligned frames with direct I/O and everything else (a short tail,
    /// blocks that end off a page boundary, file systems without direct I/O) through the page
    /// cache: every mix gives back the same bytes.
    @Test func largeGetsWriteEveryByteInPlace() throws {
        let cluster = try ProcessCluster()
        try cluster.waitUntilReady()
        let local = cluster.directory + "/local"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        // 20 MiB and an odd tail; text compresses, random bytes are stored raw.
        let size = 20 * 1024 * 1024 + 12_345
        let cases: [(name: String, text: Bool, blockSize: Int)] = [
            ("aligned-text", true, 4 * 1024 * 1024),
            ("aligned-random", false, 4 * 1024 * 1024),
            // Blocks of 3,000,320 bytes (a multiple of 512, as HDFS requires) end inside a page:
            // the frames after them are not page-aligned.
            ("unaligned-blocks", true, 3_000_320),
        ]
        // /dev/shm is tmpfs: direct I/O there may be refused, and the get must still work.
        let shm = "/dev/shm/strata-get-\(getpid())"
        try FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: shm) }
        for (index, entry) in cases.enumerated() {
            let source = local + "/\(entry.name).bin"
            try makeData(size, seed: UInt64(100 + index), text: entry.text).write(to: URL(fileURLWithPath: source))
            let put = try cluster.run(["dfs", "put", "--block-size", "\(entry.blockSize)", source, "/\(entry.name)"])
            #expect(put.status == 0, "\(put.error)")
            for directory in [local, shm] {
                let copy = directory + "/\(entry.name).copy"
                let get = try cluster.run(["dfs", "get", "/\(entry.name)", copy])
                #expect(get.status == 0, "\(entry.name) into \(directory): \(get.error)")
                #expect(try sha256(copy) == sha256(source), "\(entry.name) into \(directory)")
                #expect(!FileManager.default.fileExists(atPath: copy + "._COPYING_"))
                try FileManager.default.removeItem(atPath: copy)
            }
            // Through the data nodes only, as with short-circuit reads turned off in hdfs-site.xml.
            let copy = local + "/\(entry.name).remote"
            let remote = try cluster.run(["dfs", "get", "-D", "dfs.client.read.shortcircuit=false", "/\(entry.name)", copy])
            #expect(remote.status == 0, "\(remote.error)")
            #expect(try sha256(copy) == sha256(source), "\(entry.name) through the data nodes")
        }
        let unknown = try cluster.run(["dfs", "get", "-D", "dfs.client.read.shortcircuit=maybe", "/aligned-text", local + "/x"])
        #expect(unknown.status != 0 && unknown.error.contains("dfs.client.read.shortcircuit"), "\(unknown.error)")
    }

    @Test func unreachableNameNodeIsAClearError() throws {
        let result = try strata(["dfs", "ls", "/"], environment: ["STRATA_NAMENODE": "127.0.0.1:\(freePort())"], timeout: 60)
        #expect(result.status == 1)
        #expect(result.error.contains("Is the name node running?"))
    }
}
