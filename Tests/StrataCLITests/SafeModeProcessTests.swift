import Foundation
import Testing

/// Safe mode with real processes: a restarted name node stays read-only until enough blocks
/// are reported (`--safemode-threshold`), and an administrator can hold it there.
@Suite(.serialized) struct SafeModeProcessTests {
    @Test func restartedNameNodeWaitsForBlockReports() throws {
        let cluster = try ProcessCluster(dataNodes: 3, nameNodeArguments: ["--safemode-threshold", "0.9"])
        try cluster.waitUntilReady(dataNodes: 3)
        let local = cluster.directory + "/input.log"
        let data = makeData(3 << 20, seed: 51, text: true)
        try data.write(to: URL(fileURLWithPath: local))
        for index in 0..<4 {
            #expect(try cluster.run(["dfs", "put", "-D", "dfs.blocksize=1048576", local, "/safe\(index).log"]).status == 0)
        }

        // The whole cluster goes down; the name node comes back alone.
        for index in 0..<3 { cluster.killDataNode(index) }
        cluster.killNameNode()
        try cluster.startNameNode()
        let on = secondsUntil(timeoutSeconds: 30) { (try? cluster.run(["dfsadmin", "safemode", "get"]))?.output.contains("ON") == true }
        #expect(on != nil, "the restarted name node is not in safe mode")
        // Reads of the namespace work; changes are refused with the reason.
        let listing = try cluster.run(["dfs", "ls", "/"])
        #expect(listing.status == 0 && listing.output.contains("/safe0.log"), "\(listing.error)")
        let report = try cluster.run(["dfsadmin", "safemode", "get"])
        #expect(report.output.contains("ON"), "\(report.output)")

        // One data node holds a replica of every block (replication 3 on 3 nodes): enough.
        try cluster.startDataNode(0)
        let off = secondsUntil(timeoutSeconds: 30) { (try? cluster.run(["dfsadmin", "safemode", "get"]))?.output.contains("OFF") == true }
        #expect(off != nil, "safe mode did not end once the blocks were reported:\n\(cluster.logTail("namenode.log"))")
        #expect(try cluster.run(["dfs", "mkdir", "/after"]).status == 0)
        let copy = cluster.directory + "/copy.log"
        #expect(try cluster.run(["dfs", "get", "/safe3.log", copy]).status == 0)
        #expect(try sha256(copy) == sha256(local))
    }

    @Test func administratorHoldsSafeMode() throws {
        let cluster = try ProcessCluster(dataNodes: 1)
        try cluster.waitUntilReady(dataNodes: 1)
        let refused = try cluster.run(["dfsadmin", "safemode", "enter"], user: "mallory")
        #expect(refused.status != 0 && refused.error.contains("Superuser privilege"), "\(refused.error)")

        let enter = try cluster.run(["dfsadmin", "safemode", "enter"])
        #expect(enter.status == 0 && enter.output.contains("Safe mode is ON"), "\(enter.output) \(enter.error)")
        let started = Date()
        let mkdir = try cluster.run(["dfs", "mkdir", "/held"])
        #expect(mkdir.status != 0)
        #expect(mkdir.error.contains("safe mode"), "\(mkdir.error)")
        #expect(Date().timeIntervalSince(started) < 10, "a write in manual safe mode must fail at once, not wait")
        let put = try cluster.run(["dfs", "put", "-", "/held.txt"], input: Data("x".utf8))
        #expect(put.status != 0 && put.error.contains("safe mode"), "\(put.error)")
        #expect(try cluster.run(["dfs", "test", "-e", "/held.txt"]).status != 0, "a refused put leaves nothing")

        let leave = try cluster.run(["dfsadmin", "safemode", "leave"])
        #expect(leave.status == 0 && leave.output.contains("Safe mode is OFF"), "\(leave.output) \(leave.error)")
        #expect(try cluster.run(["dfs", "mkdir", "/held"]).status == 0)
    }

    /// With a threshold of 0 the name node needs no report at all to accept writes.
    @Test func thresholdZeroLeavesAtOnce() throws {
        let cluster = try ProcessCluster(dataNodes: 1, nameNodeArguments: ["--safemode-threshold", "0"])
        try cluster.waitUntilReady(dataNodes: 1)
        #expect(try cluster.run(["dfs", "put", "-", "/one.txt"], input: Data("one\n".utf8)).status == 0)
        cluster.killDataNode(0)
        cluster.killNameNode()
        try cluster.startNameNode()
        let off = secondsUntil(timeoutSeconds: 30) { (try? cluster.run(["dfsadmin", "safemode", "get"]))?.output.contains("OFF") == true }
        #expect(off != nil)
    }
}
