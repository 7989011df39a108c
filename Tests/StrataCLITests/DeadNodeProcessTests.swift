import Foundation
import Glibc
import Testing

/// A data node process killed with SIGKILL in a four-node cluster: the name node declares it dead
/// once its heartbeat timeout runs out, and copies every block it held from the surviving
/// replicas until each block has three live replicas again.
@Suite(.serialized) struct DeadNodeProcessTests {
    @Test func killedDataNodeIsDeclaredDeadAndItsBlocksAreReplicatedAgain() throws {
        let timeout = 3.0
        let cluster = try ProcessCluster(dataNodes: 4, heartbeatTimeoutSeconds: timeout)
        try cluster.waitUntilReady(dataNodes: 4)
        let local = cluster.directory + "/local"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        #expect(try cluster.run(["dfs", "mkdir", "-p", "/dead"]).status == 0)
        let files: [(name: String, size: Int, text: Bool)] = [
            ("logs-a.txt", 3_000_000, true), ("random.bin", 2_200_000, false), ("logs-b.txt", 1_200_000, true), ("small.txt", 50_000, true),
        ]
        var expected: [String: String] = [:]
        var blocks = Set<UInt64>()
        for (index, file) in files.enumerated() {
            let path = local + "/" + file.name
            try makeData(file.size, seed: UInt64(40 + index), text: file.text).write(to: URL(fileURLWithPath: path))
            let written = try cluster.putReturningBlocks(path, "/dead/" + file.name)
            #expect(written.count == (file.size + (1 << 20) - 1) >> 20, "\(file.name) got blocks \(written.sorted())")
            blocks.formUnion(written)
            expected["/dead/" + file.name] = try sha256(path)
        }
        let nodes = Array(cluster.dataNodeSlots.indices)
        for id in blocks { #expect(cluster.replicaFiles(ofBlock: id, onDataNodes: nodes).count == 3, "block \(id) before the kill") }

        // The victim is the node holding the most replicas; the survivors must copy all of them.
        let victim = try #require(nodes.max { cluster.replicaFiles(onDataNode: $0).count < cluster.replicaFiles(onDataNode: $1).count })
        let victimId = try cluster.nodeId(ofDataNode: victim)
        let lost = Dictionary(uniqueKeysWithValues: cluster.replicaFiles(onDataNode: victim).map { ($0.blockId, $0) })
        #expect(!lost.isEmpty)
        let survivors = nodes.filter { $0 != victim }
        let killed = Date()
        cluster.killDataNode(victim)

        // Dead once the timeout has run out since its last heartbeat: not before, and not much later.
        let detected = try secondsUntil(since: killed, timeoutSeconds: timeout + 15) { try cluster.dataNodeStates()[victimId] == "dead" }
        let detectSeconds = try #require(detected, "data node never reported dead; name node log:\n\(cluster.logTail("namenode.log"))")
        #expect(detectSeconds >= timeout - 1.5, "declared dead \(detectSeconds) s after the kill, before its \(timeout) s timeout")
        #expect(detectSeconds <= timeout + 5, "declared dead only \(detectSeconds) s after the kill (timeout \(timeout) s)")
        let states = try cluster.dataNodeStates()
        for node in survivors { #expect(states[try cluster.nodeId(ofDataNode: node)] == "live") }

        // Healthy again: no missing, corrupt or under-replicated block, every block at three
        // replicas on the surviving nodes' disks and none over.
        let healed = try secondsUntil(since: killed, timeoutSeconds: 45, intervalSeconds: 0.2) {
            let report = try cluster.fsck("/")
            guard report["healthy"] as? Bool == true, jsonCount(report, "underReplicatedBlocks") == 0 else { return false }
            return blocks.allSatisfy { cluster.replicaFiles(ofBlock: $0, onDataNodes: survivors).count == 3 }
        }
        let report = try cluster.fsck("/")
        #expect(healed != nil, "not healthy again within 45 s of the kill: \(report)\n\(cluster.logTail("namenode.log"))")
        #expect(report["healthy"] as? Bool == true)
        #expect(jsonCount(report, "totalBlocks") == blocks.count)
        #expect(jsonCount(report, "underReplicatedBlocks") == 0)
        #expect(jsonCount(report, "overReplicatedBlocks") == 0)
        #expect(jsonCount(report, "missingBlocks") == 0 && jsonCount(report, "corruptBlocks") == 0)
        #expect(jsonCount(report, "liveDatanodes") == 3 && jsonCount(report, "deadDatanodes") == 1)
        #expect((report["averageReplication"] as? NSNumber)?.doubleValue == 3.0, "\(report)")
        for id in blocks {
            let holders = cluster.replicaFiles(ofBlock: id, onDataNodes: survivors)
            #expect(holders.count == 3, "block \(id) has \(holders.count) replicas on live nodes")
            #expect(holders.allSatisfy { $0.file.isFinalized }, "block \(id): \(holders.map(\.file.path))")
        }
        // The copies carry the frames as they were stored (compressed, not re-encoded): each new
        // replica file has the same bytes as the replica the dead node still has on its disk.
        for (id, original) in lost {
            for (node, copy) in cluster.replicaFiles(ofBlock: id, onDataNodes: survivors) {
                let same = FileManager.default.contentsEqual(atPath: copy.path, andPath: original.path)
                #expect(same, "block \(id) on node \(node + 1) differs from the dead node's replica")
            }
        }

        for (path, digest) in expected {
            let copy = local + "/copy-" + (path as NSString).lastPathComponent
            let get = try cluster.run(["dfs", "get", path, copy])
            #expect(get.status == 0, "get \(path): \(get.error)")
            #expect(try sha256(copy) == digest, "\(path) reads back different bytes after its data node died")
        }
    }
}
