import Foundation
import Glibc
import Testing

/// A data node process killed with SIGKILL and started again on the same directory after the
/// namespace changed under it: its block report reconciles with the name node, which has it
/// delete the replicas of deleted files and replicas with an old generation stamp, and removes
/// the replica that a lowered replication made extra.
@Suite(.serialized) struct DataNodeRestartProcessTests {
    @Test func restartedDataNodeDropsStaleDeletedAndExtraReplicas() throws {
        let timeout = 3.0
        // Three nodes at replication 3: every node holds every block, and while one is down no
        // other node can take its replicas, so what happens to them is decided by the block report.
        let cluster = try ProcessCluster(dataNodes: 3, heartbeatTimeoutSeconds: timeout)
        try cluster.waitUntilReady(dataNodes: 3)
        let local = cluster.directory + "/local"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        #expect(try cluster.run(["dfs", "mkdir", "-p", "/restart"]).status == 0)
        var blocksOf: [String: Set<UInt64>] = [:]
        for (index, name) in ["deleted.txt", "lowered.bin", "appended.txt", "kept.txt"].enumerated() {
            let path = local + "/" + name
            try makeData(1_500_000 - index * 100_000, seed: UInt64(70 + index), text: !name.hasSuffix(".bin")).write(to: URL(fileURLWithPath: path))
            blocksOf[name] = try cluster.putReturningBlocks(path, "/restart/" + name)
            #expect(blocksOf[name]?.count == 2, "\(name): \(blocksOf[name]?.sorted() ?? [])")
        }
        let nodes = Array(cluster.dataNodeSlots.indices)
        let restarted = 1
        let others = nodes.filter { $0 != restarted }
        let before = Dictionary(uniqueKeysWithValues: cluster.replicaFiles(onDataNode: restarted).map { ($0.blockId, $0) })
        for (name, ids) in blocksOf { for id in ids { #expect(before[id] != nil, "node 2 holds no replica of \(name) block \(id)") } }
        // The appended file's last block is the partial one, which an append reopens under a new
        // generation stamp; it is the one with the fewest raw bytes.
        let appendedLast = try #require(blocksOf["appended.txt"]?.max())

        cluster.killDataNode(restarted)
        let restartedId = try cluster.nodeId(ofDataNode: restarted)
        let dead = try secondsUntil(timeoutSeconds: timeout + 15) { try cluster.dataNodeStates()[restartedId] == "dead" }
        try #require(dead != nil, "node 2 never reported dead")

        // While it is down: a file it holds is deleted, another's replication is lowered, and a
        // third is appended to (its last block gets a new generation stamp on the live nodes).
        let deleted = try cluster.run(["dfs", "rm", "/restart/deleted.txt"])
        #expect(deleted.status == 0, "rm: \(deleted.error)")
        let setrep = try cluster.run(["dfs", "setrep", "2", "/restart/lowered.bin"])
        #expect(setrep.status == 0, "setrep: \(setrep.error)")
        let extra = local + "/extra.txt"
        try makeData(300_000, seed: 79, text: true).write(to: URL(fileURLWithPath: extra))
        let append = try cluster.run(["dfs", "appendToFile", extra, "/restart/appended.txt"])
        #expect(append.status == 0, "appendToFile: \(append.error)")
        let appendedLocal = local + "/appended-expected.txt"
        try (try Data(contentsOf: URL(fileURLWithPath: local + "/appended.txt")) + Data(contentsOf: URL(fileURLWithPath: extra)))
            .write(to: URL(fileURLWithPath: appendedLocal))
        let newStamps = Set(cluster.replicaFiles(ofBlock: appendedLast, onDataNodes: others).map(\.file.generationStamp))
        let newStamp = try #require(newStamps.max())
        #expect(newStamps.count == 1 && newStamp > before[appendedLast]!.generationStamp, "stamps after the append: \(newStamps)")

        try cluster.startDataNode(restarted)

        // Exactly what the namespace says, on every disk: no replica of the deleted file, the
        // lowered file at two replicas, every other block at three with its current stamp.
        func problems() -> [String] {
            var found: [String] = []
            for id in blocksOf["deleted.txt"]! {
                let left = cluster.replicaFiles(ofBlock: id, onDataNodes: nodes)
                if !left.isEmpty { found.append("deleted block \(id) still on nodes \(left.map { $0.node + 1 })") }
            }
            for id in blocksOf["lowered.bin"]! {
                let count = cluster.replicaFiles(ofBlock: id, onDataNodes: nodes).count
                if count != 2 { found.append("lowered block \(id) has \(count) replicas, not 2") }
            }
            for id in blocksOf["appended.txt"]!.union(blocksOf["kept.txt"]!) {
                let replicas = cluster.replicaFiles(ofBlock: id, onDataNodes: nodes)
                if replicas.count != 3 { found.append("block \(id) has \(replicas.count) replicas, not 3: \(replicas.map(\.file.path))") }
                if !replicas.allSatisfy(\.file.isFinalized) { found.append("block \(id) has an unfinished replica") }
            }
            let stamps = cluster.replicaFiles(ofBlock: appendedLast, onDataNodes: nodes).map(\.file.generationStamp)
            if stamps.contains(where: { $0 != newStamp }) { found.append("appended block \(appendedLast) has stamps \(stamps), not all \(newStamp)") }
            return found
        }
        let reconciled = try secondsUntil(timeoutSeconds: 30, intervalSeconds: 0.2) {
            guard problems().isEmpty, try cluster.dataNodeStates()[restartedId] == "live" else { return false }
            let report = try cluster.fsck("/")
            return report["healthy"] as? Bool == true && jsonCount(report, "underReplicatedBlocks") == 0
                && jsonCount(report, "overReplicatedBlocks") == 0
        }
        #expect(reconciled != nil, "not reconciled within 30 s of the restart:\n\(cluster.logTail("namenode.log"))\n\(cluster.logTail("node2.log"))")
        #expect(problems() == [])

        // On the restarted node's own disk: the deleted file's replicas and the stale replica are
        // gone, the replicas that are still right are the very same files, and the appended block
        // came back under its new stamp (copied from a live node).
        let after = cluster.replicaFiles(onDataNode: restarted)
        #expect(!after.contains { blocksOf["deleted.txt"]!.contains($0.blockId) }, "\(after.map(\.path))")
        #expect(!after.contains { $0.blockId == appendedLast && $0.generationStamp != newStamp }, "\(after.map(\.path))")
        #expect(after.contains { $0.blockId == appendedLast && $0.generationStamp == newStamp })
        let unchanged = blocksOf["kept.txt"]!.union(blocksOf["appended.txt"]!.subtracting([appendedLast]))
        for id in unchanged { #expect(after.contains(before[id]!), "node 2 lost its good replica \(before[id]!.path)") }

        let report = try cluster.fsck("/")
        #expect(report["healthy"] as? Bool == true, "\(report)")
        #expect(jsonCount(report, "totalFiles") == 3 && jsonCount(report, "totalBlocks") == 6, "\(report)")
        #expect(jsonCount(report, "underReplicatedBlocks") == 0 && jsonCount(report, "overReplicatedBlocks") == 0, "\(report)")
        #expect(jsonCount(report, "liveDatanodes") == 3 && jsonCount(report, "deadDatanodes") == 0, "\(report)")

        #expect(try cluster.run(["dfs", "test", "-e", "/restart/deleted.txt"]).status != 0)
        for (remote, original) in [("lowered.bin", "lowered.bin"), ("appended.txt", "appended-expected.txt"), ("kept.txt", "kept.txt")] {
            let copy = local + "/copy-" + remote
            let get = try cluster.run(["dfs", "get", "/restart/" + remote, copy])
            #expect(get.status == 0, "get \(remote): \(get.error)")
            #expect(try sha256(copy) == sha256(local + "/" + original), "\(remote) reads back different bytes")
        }
    }

    /// A data node restarted while another process holds its old transfer port comes back on a
    /// new port under the same node id; the name node sends writers to the new address.
    @Test func dataNodeRestartedOnATakenPortMovesToANewOne() throws {
        let cluster = try ProcessCluster(dataNodes: 1)
        try cluster.waitUntilReady(dataNodes: 1)
        let id = try cluster.nodeId(ofDataNode: 0)
        let oldPort = cluster.dataNodeSlots[0].transferPort
        cluster.killDataNode(0)
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(oldPort).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(holder, 1) == 0, "could not hold port \(oldPort): errno \(errno)")

        try cluster.startDataNode(0)
        let newPort = cluster.dataNodeSlots[0].transferPort
        #expect(newPort != oldPort)
        #expect(try cluster.nodeId(ofDataNode: 0) == id)
        #expect(cluster.logText(cluster.dataNodeSlots[0].log, from: 0).contains("Address already in use"))
        let entry = try cluster.reportEntries().first { $0["nodeId"] as? String == id }
        #expect(entry?["transferPort"] as? Int == newPort, "\(entry ?? [:])")
        let local = cluster.directory + "/moved.bin"
        try makeData(300_000, seed: 91, text: false).write(to: URL(fileURLWithPath: local))
        let put = try cluster.run(["dfs", "put", "-D", "dfs.replication=1", local, "/moved.bin"])
        #expect(put.status == 0, "put: \(put.error)")
        let copy = cluster.directory + "/moved.copy"
        #expect(try cluster.run(["dfs", "get", "/moved.bin", copy]).status == 0)
        #expect(try sha256(copy) == sha256(local))
    }
}
