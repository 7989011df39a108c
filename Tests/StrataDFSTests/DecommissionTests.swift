import Foundation
import StrataClient
import StrataTestKit
import StrataWire
import Testing

/// Decommissioning a data node in a cluster on loopback: its replicas are copied to the other
/// nodes before it is marked decommissioned, it takes no new replicas, and recommissioning
/// brings it back (the excess replicas are then removed).
@Suite(.serialized) struct DecommissionTests {
    /// Files of several blocks each, replication 3, over four nodes.
    func writeFiles(_ client: DFSClient, count: Int, seed: UInt64) async throws -> [(String, [UInt8])] {
        var files: [(String, [UInt8])] = []
        for index in 0..<count {
            let data = index % 2 == 0 ? logLikeBytes(150_000, seed: seed + UInt64(index)) : randomBytes(120_000, seed: seed + UInt64(index))
            let path = "/decommission/\(seed)-\(index)"
            try await put(client, path, data, blockSize: 32 * 1024)
            files.append((path, data))
        }
        return files
    }

    func reportEntry(_ client: DFSClient, _ nodeId: String) async throws -> Strata_Wire_DatanodeInfo? {
        try await client.datanodeReport().first { $0.nodeID == nodeId }
    }

    @Test func decommissionCopiesEveryReplicaElsewhereThenRecommissionRemovesTheExcess() async throws {
        try await withCluster({ $0.dataNodes = 4 }) { cluster in
            try await withClient(cluster) { client in
                let files = try await writeFiles(client, count: 4, seed: 500)
                var ids: [UInt64] = []
                for (path, _) in files { ids += try await blockIds(client, path) }
                let victim = try #require(cluster.dataNodes.max { $0.store.count < $1.store.count })
                let held = ids.filter { victim.store.replica($0) != nil }
                #expect(!held.isEmpty)
                let others = cluster.dataNodes.filter { $0 !== victim }

                let started = try await client.decommission(victim.nodeId)
                #expect(started.nodeID == victim.nodeId)
                #expect(started.adminState == "decommissioning")
                #expect(started.blocksToDecommission == UInt64(held.count))

                // Writes from now on avoid the node, while its copies are being made.
                let fresh = randomBytes(100_000, seed: 599)
                try await put(client, "/decommission/fresh", fresh, blockSize: 32 * 1024)
                for block in try await client.blockLocations("/decommission/fresh").blocks {
                    #expect(!block.locations.contains { $0.nodeID == victim.nodeId })
                    #expect(block.locations.count == 3)
                }

                let finished = try await eventually(timeoutSeconds: 40) {
                    try await reportEntry(client, victim.nodeId)?.adminState == "decommissioned"
                }
                let entry = try #require(try await reportEntry(client, victim.nodeId))
                #expect(finished, "still \(entry.adminState) with \(entry.blocksToDecommission) blocks to copy")
                #expect(entry.state == "live")
                #expect(entry.blocksToDecommission == 0)

                // Every block has three replicas on the other nodes, on disk and with the right bytes;
                // the decommissioned node still holds (and serves, last) its own.
                for (path, data) in files {
                    expectSameBytes(try await client.readAll(path), data, "\(path) after decommission")
                    for block in try await client.blockLocations(path).blocks {
                        let id = block.block.blockID
                        let holders = others.filter { $0.store.replica(id) != nil }
                        #expect(holders.count == 3, "block \(id) is on \(holders.count) other nodes")
                        try expectReplicas(of: id, in: holders, equal: data, from: block.offset, length: block.block.numBytes)
                        if victim.store.replica(id) != nil {
                            #expect(block.locations.last?.nodeID == victim.nodeId, "the decommissioned node is read last")
                        }
                    }
                }
                let fsck = try await client.fsck("/")
                #expect(fsck.healthy && fsck.underReplicatedBlocks == 0 && fsck.overReplicatedBlocks == 0, "\(fsck)")
                #expect(held.allSatisfy { victim.store.replica($0) != nil }, "decommissioning deletes nothing from the node")

                // Recommissioned: the node is in service again and the fourth replicas go.
                let back = try await client.recommission(victim.nodeId)
                #expect(back.adminState == "normal")
                let trimmed = try await eventually(timeoutSeconds: 30) {
                    for (path, _) in files {
                        for block in try await client.blockLocations(path).blocks where block.locations.count != 3 { return false }
                    }
                    return ids.allSatisfy { id in cluster.holders(of: id).count == 3 }
                }
                #expect(trimmed, "replicas per block: \(ids.map { cluster.holders(of: $0).count })")
                let after = try await client.fsck("/")
                #expect(after.healthy && after.overReplicatedBlocks == 0 && after.underReplicatedBlocks == 0, "\(after)")
                for (path, data) in files { expectSameBytes(try await client.readAll(path), data, "\(path) after recommission") }
            }
        }
    }

    /// The report lists every node with its state, admin state, capacity and blocks, and a
    /// decommission request survives a name node restart.
    @Test func reportShowsNodesAndDecommissionSurvivesRestart() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = LocalCluster.Options()
        options.dataNodes = 4
        var cluster = try await LocalCluster.start(directory: directory, options: options)
        let victimId = try await withClient(cluster) { client in
            let files = try await writeFiles(client, count: 2, seed: 700)
            var ids: [UInt64] = []
            for (path, _) in files { ids += try await blockIds(client, path) }
            // Used space comes with heartbeats (every second here).
            let reported = try await eventually(timeoutSeconds: 10) {
                try await client.datanodeReport().allSatisfy { $0.dfsUsed > 0 || $0.blockCount == 0 }
            }
            #expect(reported)
            let report = try await client.datanodeReport()
            #expect(report.count == 4)
            for node in report {
                let dataNode = try #require(cluster.dataNode(node.nodeID))
                #expect(node.state == "live")
                #expect(node.adminState == "normal")
                #expect(node.capacity > 0 && node.remaining > 0 && node.remaining <= node.capacity)
                #expect(node.blockCount == UInt64(ids.filter { dataNode.store.replica($0) != nil }.count))
                #expect(node.dfsUsed > 0 || node.blockCount == 0)
                #expect(node.transferPort == UInt32(dataNode.transferPort))
                #expect(!node.volumeFailed)
            }
            let victim = cluster.dataNodes[1]
            // By host:transfer-port, as `dfsadmin report` names nodes.
            let started = try await client.decommission("127.0.0.1:\(victim.transferPort)")
            #expect(started.nodeID == victim.nodeId)
            let done = try await eventually(timeoutSeconds: 40) {
                try await reportEntry(client, victim.nodeId)?.adminState == "decommissioned"
            }
            #expect(done)
            return victim.nodeId
        }
        await cluster.shutdown()
        cluster = try await LocalCluster.start(directory: directory, options: options)
        try await withClient(cluster) { client in
            // Back from the name node's list: decommissioned again once its block report shows
            // nothing needs it.
            let again = try await eventually(timeoutSeconds: 30) {
                try await reportEntry(client, victimId)?.adminState == "decommissioned"
            }
            let state = try await reportEntry(client, victimId)?.adminState ?? "missing"
            #expect(again, "after restart: \(state)")
            let data = randomBytes(70_000, seed: 777)
            try await put(client, "/after-restart", data, blockSize: 32 * 1024)
            for block in try await client.blockLocations("/after-restart").blocks {
                #expect(!block.locations.contains { $0.nodeID == victimId })
            }
            #expect(try await client.recommission(victimId).adminState == "normal")
        }
        await cluster.shutdown()
        let list = try String(contentsOfFile: directory + "/namenode/decommissioned-nodes", encoding: .utf8)
        #expect(list.isEmpty, "recommissioning removes the node from the list: \(list)")
    }

    @Test func onlySuperusersChangeAdminStates() async throws {
        try await withCluster { cluster in
            let node = cluster.dataNodes[0].nodeId
            try await withClient(cluster, user: "alice") { alice in
                let denied = await expectRemote(.accessControl, "alice decommissions") {
                    _ = try await alice.decommission(node)
                }
                #expect(denied?.message.contains("Superuser privilege is required") == true)
                await expectRemote(.accessControl, "alice recommissions") { _ = try await alice.recommission(node) }
            }
            try await withClient(cluster) { client in
                let state = try await reportEntry(client, node)?.adminState
                #expect(state == "normal")
            }
        }
    }

    @Test func unknownOrAmbiguousNodesAreClearErrors() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let unknown = await expectRemote(.illegalArgument, "unknown node") { _ = try await client.decommission("no-such-node") }
                #expect(unknown?.message.contains("No data node 'no-such-node' is known") == true, "\(String(describing: unknown))")
                await expectRemote(.illegalArgument, "unknown port") { _ = try await client.decommission("127.0.0.1:1") }
                // Every node of a local cluster runs on 127.0.0.1: the host alone does not say which.
                let ambiguous = await expectRemote(.illegalArgument, "several nodes on the host") {
                    _ = try await client.decommission("127.0.0.1")
                }
                #expect(ambiguous?.message.contains("names 3 data nodes") == true, "\(String(describing: ambiguous))")
                let states = try await client.datanodeReport().map(\.adminState)
                #expect(states == ["normal", "normal", "normal"])
            }
        }
    }
}
