import Foundation
import Glibc
import Testing

/// `strata dfsadmin` against real processes: decommission and recommission, `report` as text and
/// JSON, and data nodes whose disk is read-only or full (small tmpfs volumes, mounted as root).
@Suite(.serialized) struct AdminProcessTests {
    @Test func decommissionReportAndRecommission() throws {
        let cluster = try ProcessCluster(dataNodes: 4, heartbeatTimeoutSeconds: 3)
        try cluster.waitUntilReady(dataNodes: 4)
        let local = cluster.directory + "/access.log"
        try makeData(3_000_000, seed: 21, text: true).write(to: URL(fileURLWithPath: local))
        #expect(try cluster.run(["dfs", "mkdir", "/logs"]).status == 0)
        let blocks = try cluster.putReturningBlocks(local, "/logs/access.log")
        #expect(blocks.count == 3)

        // The report, as hdfs dfsadmin -report prints it.
        try expectEventually("every node has reported its used space") {
            try cluster.reportEntries().allSatisfy { ($0["dfsUsed"] as? Int ?? 0) > 0 || ($0["blockCount"] as? Int ?? 0) == 0 }
        }
        let report = try cluster.run(["dfsadmin", "report"])
        #expect(report.status == 0, "\(report.error)")
        let text = report.output
        #expect(text.hasPrefix("Configured Capacity: "), "\(text.prefix(300))")
        for line in ["Present Capacity: ", "DFS Remaining: ", "DFS Used: ", "DFS Used%: ", "Live datanodes (4):", "Dead datanodes (0):"] {
            #expect(text.contains(line), "report has '\(line)'")
        }
        #expect(!text.contains("Decommissioning datanodes"))
        #expect(text.components(separatedBy: "Decommission Status : Normal").count - 1 == 4)
        for index in 0..<4 {
            let id = try cluster.nodeId(ofDataNode: index)
            #expect(text.contains("Name: 127.0.0.1:\(cluster.dataNodeSlots[index].transferPort) (\(id))"))
        }
        for field in ["Hostname: 127.0.0.1", "Configured Capacity: ", "DFS Used: ", "Non DFS Used: ", "DFS Remaining: ", "Last contact: ", "Num of Blocks: "] {
            #expect(text.components(separatedBy: field).count - 1 >= 4, "each node has '\(field)'")
        }
        let entries = try cluster.reportEntries()
        #expect(entries.count == 4)
        let replicas = entries.reduce(0) { $0 + ($1["blockCount"] as? Int ?? 0) }
        #expect(replicas == 9, "three blocks, three replicas each: \(replicas)")
        for entry in entries {
            #expect(entry["state"] as? String == "live")
            #expect(entry["adminState"] as? String == "normal")
            #expect((entry["capacity"] as? Int ?? 0) > 0)
            #expect((entry["remaining"] as? Int ?? 0) > 0)
            #expect(entry["volumeFailed"] as? Bool == false)
        }

        // Refusals: not a superuser, a node nobody knows.
        let victim = try #require((0..<4).max { cluster.replicaFiles(onDataNode: $0).count < cluster.replicaFiles(onDataNode: $1).count })
        let victimId = try cluster.nodeId(ofDataNode: victim)
        let victimName = "127.0.0.1:\(cluster.dataNodeSlots[victim].transferPort)"
        let alice = try cluster.run(["dfsadmin", "decommission", victimName], user: "alice")
        #expect(alice.status == 1)
        #expect(alice.error.contains("Superuser privilege is required"), "\(alice.error)")
        let unknown = try cluster.run(["dfsadmin", "decommission", "no-such-node"])
        #expect(unknown.status == 1)
        #expect(unknown.error.contains("No data node 'no-such-node' is known"), "\(unknown.error)")

        // Decommission: its replicas are copied to the three other nodes, then it is decommissioned.
        let started = try cluster.run(["dfsadmin", "decommission", victimName])
        #expect(started.status == 0, "\(started.error)")
        #expect(started.output.contains("Decommission of \(victimName) (\(victimId)): Decommission in progress"), "\(started.output)")
        try expectEventually("the node is decommissioned", timeoutSeconds: 40) {
            try cluster.reportEntries().first { $0["nodeId"] as? String == victimId }?["adminState"] as? String == "decommissioned"
        }
        let others = (0..<4).filter { $0 != victim }
        for block in blocks {
            #expect(cluster.replicaFiles(ofBlock: block, onDataNodes: others).filter(\.file.isFinalized).count == 3, "block \(block)")
        }
        let decommissioned = try cluster.run(["dfsadmin", "report"]).output
        #expect(decommissioned.contains("Decommission Status : Decommissioned"))
        #expect(decommissioned.components(separatedBy: "Decommission Status : Normal").count - 1 == 3)
        let fsck = try cluster.fsck()
        #expect(fsck["healthy"] as? Bool == true && jsonCount(fsck, "underReplicatedBlocks") == 0, "\(fsck)")

        // It can now go: killed, the data is whole without it.
        cluster.killDataNode(victim)
        try expectEventually("the node is dead", timeoutSeconds: 20) {
            try cluster.dataNodeStates()[victimId] == "dead"
        }
        let dead = try cluster.run(["dfsadmin", "report"]).output
        #expect(dead.contains("Live datanodes (3):") && dead.contains("Dead datanodes (1):"), "\(dead)")
        let copy = cluster.directory + "/copy.log"
        #expect(try cluster.run(["dfs", "get", "/logs/access.log", copy]).status == 0)
        #expect(try sha256(copy) == sha256(local))
        let afterKill = try cluster.fsck()
        #expect(afterKill["healthy"] as? Bool == true && jsonCount(afterKill, "underReplicatedBlocks") == 0, "\(afterKill)")

        // Back and recommissioned: in service again, and each block loses its fourth replica.
        try cluster.startDataNode(victim)
        try expectEventually("the node is live again") { try cluster.dataNodeStates()[victimId] == "live" }
        let back = try cluster.run(["dfsadmin", "recommission", victimId, "--json"])
        #expect(back.status == 0, "\(back.error)")
        let backEntry = try JSONSerialization.jsonObject(with: Data(back.output.utf8)) as? [String: Any]
        #expect(backEntry?["adminState"] as? String == "normal", "\(back.output)")
        try expectEventually("every block has three replicas again", timeoutSeconds: 30) {
            let report = try cluster.fsck()
            return jsonCount(report, "overReplicatedBlocks") == 0 && jsonCount(report, "underReplicatedBlocks") == 0
                && blocks.allSatisfy { cluster.replicaFiles(ofBlock: $0, onDataNodes: 0..<4).count == 3 }
        }
    }

    /// One node's disk made read-only, then one filled: each is left out of placement while
    /// puts go on to the others; with every disk full a put fails cleanly.
    @Test func readOnlyAndFullDisksAreLeftOutOfPlacement() throws {
        let cluster = try ProcessCluster(dataNodes: 3)
        let volumes = TmpfsVolumes()
        defer {
            // Processes first (their files live on the volumes), then the volumes, then the
            // cluster removes its directory.
            for index in cluster.dataNodeSlots.indices { cluster.killDataNode(index) }
            volumes.unmountAll()
        }
        for index in 0..<3 { try cluster.moveDataNodeOntoTmpfs(index, size: "8m", volumes: volumes) }
        try cluster.waitUntilReady(dataNodes: 3)
        let ids = try (0..<3).map { try cluster.nodeId(ofDataNode: $0) }
        let local = cluster.directory + "/input.log"
        try makeData(2_500_000, seed: 33, text: false).write(to: URL(fileURLWithPath: local))

        // Node 2's disk turns read-only: the node says so, and new blocks go to nodes 1 and 3.
        try volumes.remount(cluster.dataNodeSlots[1].directory, readOnly: true)
        try expectEventually("node 2 reports its failed volume") {
            try cluster.reportEntries().first { $0["nodeId"] as? String == ids[1] }?["volumeFailed"] as? Bool == true
        }
        let failed = try #require(try cluster.reportEntries().first { $0["nodeId"] as? String == ids[1] })
        #expect((failed["volumeFailure"] as? String ?? "").contains("EROFS"), "\(failed)")
        #expect(try cluster.run(["dfsadmin", "report"]).output.contains("Volume Failures: 1 ("))
        let readOnlyBlocks = try cluster.putReturningBlocks(local, "/readonly.bin", blockSize: "1m", replication: 2)
        #expect(readOnlyBlocks.count == 3)
        for block in readOnlyBlocks {
            let holders = Set(cluster.replicaFiles(ofBlock: block, onDataNodes: 0..<3).map(\.node))
            #expect(holders == [0, 2], "block \(block) is on nodes \(holders)")
        }
        try volumes.remount(cluster.dataNodeSlots[1].directory, readOnly: false)
        try expectEventually("node 2's volume works again") {
            try cluster.reportEntries().first { $0["nodeId"] as? String == ids[1] }?["volumeFailed"] as? Bool == false
        }

        // Node 1's disk fills up: it is full, not failed, and new blocks go to nodes 2 and 3.
        try fillVolume(cluster.dataNodeSlots[0].directory)
        try expectEventually("node 1 reports less room than a block") {
            let entry = try cluster.reportEntries().first { $0["nodeId"] as? String == ids[0] }
            return (entry?["remaining"] as? Int ?? Int.max) < 1 << 20
        }
        let full = try #require(try cluster.reportEntries().first { $0["nodeId"] as? String == ids[0] })
        #expect(full["volumeFailed"] as? Bool == false)
        let fullBlocks = try cluster.putReturningBlocks(local, "/one-full.bin", blockSize: "1m", replication: 2)
        #expect(fullBlocks.count == 3)
        for block in fullBlocks {
            let holders = Set(cluster.replicaFiles(ofBlock: block, onDataNodes: 0..<3).map(\.node))
            #expect(holders == [1, 2], "block \(block) is on nodes \(holders)")
        }
        let readOnlyCopy = cluster.directory + "/readonly.copy"
        #expect(try cluster.run(["dfs", "get", "/readonly.bin", readOnlyCopy]).status == 0)
        #expect(try sha256(readOnlyCopy) == sha256(local))

        // Every disk full: the put fails with HDFS's message and leaves nothing behind.
        try fillVolume(cluster.dataNodeSlots[1].directory)
        try fillVolume(cluster.dataNodeSlots[2].directory)
        try expectEventually("every node reports less room than a block") {
            try cluster.reportEntries().allSatisfy { ($0["remaining"] as? Int ?? Int.max) < 1 << 20 }
        }
        let refused = try cluster.run(["dfs", "put", "-D", "dfs.blocksize=1m", local, "/all-full.bin"])
        #expect(refused.status == 1)
        #expect(refused.error.contains("could only be written to 0 of the 1 minReplication nodes"), "\(refused.error)")
        #expect(try cluster.run(["dfs", "test", "-e", "/all-full.bin"]).status == 1)
        #expect(try cluster.run(["dfs", "test", "-e", "/all-full.bin._COPYING_"]).status == 1)
        let listing = try cluster.run(["dfs", "ls", "/"]).output
        #expect(!listing.contains("all-full"), "\(listing)")
        // What was written before is still there and whole.
        let copy = cluster.directory + "/one-full.copy"
        #expect(try cluster.run(["dfs", "get", "/one-full.bin", copy]).status == 0)
        #expect(try sha256(copy) == sha256(local))
    }
}

/// Polls `condition` every 100 ms for up to `timeoutSeconds`; records a failure naming `what`
/// if it never held.
func expectEventually(
    _ what: String, timeoutSeconds: Double = 15, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () throws -> Bool
) throws {
    let took = try secondsUntil(timeoutSeconds: timeoutSeconds) { (try? condition()) ?? false }
    #expect(took != nil, "\(what): not within \(timeoutSeconds) s", sourceLocation: sourceLocation)
    if took == nil { throw ProcessClusterError(message: "gave up waiting: \(what)") }
}

/// Runs a system command (mount, umount) and throws with its output if it fails.
func runSystemCommand(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw ProcessClusterError(message: "\(arguments.joined(separator: " ")) failed (status \(process.terminationStatus)): \(text)")
    }
}

/// Small tmpfs volumes mounted for a test (root only), each unmounted by `unmountAll`.
final class TmpfsVolumes {
    private(set) var mountPoints: [String] = []
    private var sizes: [String: String] = [:]

    func mount(_ path: String, size: String) throws {
        try runSystemCommand(["mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
        mountPoints.append(path)
        sizes[path] = size
    }

    /// Remounts read-only or writable. Going read-only fails while a file there is open for
    /// writing (the data node's volume probe holds one for a moment each second): retried.
    func remount(_ path: String, readOnly: Bool) throws {
        var attempt = 0
        while true {
            do {
                try runSystemCommand(["mount", "-o", "remount,\(readOnly ? "ro" : "rw")", path])
                return
            } catch {
                attempt += 1
                if attempt >= 40 { throw error }
                usleep(50_000)
            }
        }
    }

    /// Lazily, so a volume some process still holds open is detached all the same.
    func unmountAll() {
        for path in mountPoints.reversed() { umount2(path, Int32(MNT_DETACH)) }
        mountPoints = []
    }
}

/// Fills the volume holding `directory` with a file until no space is left.
func fillVolume(_ directory: String) throws {
    let path = directory + "/filler"
    let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw ProcessClusterError(message: "cannot create \(path): errno \(errno)") }
    defer { close(descriptor) }
    let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
    while true {
        let written = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written < chunk.count {
            if written < 0 && errno != ENOSPC { throw ProcessClusterError(message: "filling \(path): errno \(errno)") }
            return
        }
    }
}

extension ProcessCluster {
    /// `dfsadmin report --json`: one dictionary per data node.
    func reportEntries() throws -> [[String: Any]] {
        let report = try run(["dfsadmin", "report", "--json"])
        guard report.status == 0, let entries = try JSONSerialization.jsonObject(with: Data(report.output.utf8)) as? [[String: Any]] else {
            throw ProcessClusterError(message: "dfsadmin report --json failed: \(report.output) \(report.error)")
        }
        return entries
    }

    /// Stops data node `index`, mounts a tmpfs of `size` on its directory (keeping its node id)
    /// and starts it again on the new volume.
    func moveDataNodeOntoTmpfs(_ index: Int, size: String, volumes: TmpfsVolumes) throws {
        let directory = dataNodeSlots[index].directory
        // The node writes its id as it starts: wait for it, so the node keeps its identity.
        _ = secondsUntil(timeoutSeconds: 10) { FileManager.default.fileExists(atPath: directory + "/node-id") }
        killDataNode(index)
        let id = try nodeId(ofDataNode: index)
        try volumes.mount(directory, size: size)
        try id.write(toFile: directory + "/node-id", atomically: false, encoding: .utf8)
        try startDataNode(index)
    }

    /// Puts a local file with a block size and replication; returns the ids of its blocks.
    func putReturningBlocks(_ local: String, _ remote: String, blockSize: String, replication: Int) throws -> Set<UInt64> {
        let before = blockIdsOnDisk()
        let put = try run(["dfs", "put", "-D", "dfs.blocksize=\(blockSize)", "-D", "dfs.replication=\(replication)", local, remote])
        guard put.status == 0 else { throw ProcessClusterError(message: "put \(remote) failed: \(put.error)") }
        return blockIdsOnDisk().subtracting(before)
    }
}
