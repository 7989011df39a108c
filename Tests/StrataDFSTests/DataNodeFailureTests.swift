import Foundation
import Logging
import StrataClient
import StrataDataNode
import StrataTestKit
import StrataWire

@testable import StrataNameNode
import Testing

/// Data nodes that stop: writers route around them, and their blocks are copied elsewhere.
@Suite(.serialized) struct DataNodeFailureTests {
    /// A node the name node believes alive (registered, its heartbeat timeout not yet run out)
    /// but that refuses connections: writers whose pipeline includes it give the block back and
    /// get one without it, and every block still gets three replicas, on the real nodes.
    ///
    /// The node is a registration for a port held bound but not listening, rather than a stopped
    /// data node: a stopped node's port could be taken by a data node of another cluster started
    /// by a test running in parallel, which would then accept the write.
    @Test func writesRouteAroundAnUnreachableNode() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let refusing = try RefusingPort()
                let rpc = ServiceClient(host: "127.0.0.1", port: cluster.nameNodePort, group: cluster.group)
                var request = Strata_Wire_RegisterRequest()
                request.node.nodeID = "unreachable-node"
                request.node.hostname = "127.0.0.1"
                request.node.ipAddress = "127.0.0.1"
                request.node.transferPort = UInt32(refusing.port)
                let _: Strata_Wire_RegisterResponse = try await rpc.call(.registerDatanode, request, user: "datanode")
                await rpc.close()
                #expect(try await client.datanodeReport().filter { $0.state == "live" }.count == 4)
                for index in 0..<6 {
                    let data = randomBytes(100_000, seed: UInt64(90 + index))
                    try await put(client, "/around/\(index)", data, blockSize: 32 * 1024)
                    expectSameBytes(try await client.readAll("/around/\(index)"), data, "/around/\(index)")
                    for block in try await client.blockLocations("/around/\(index)").blocks {
                        #expect(cluster.holders(of: block.block.blockID).count == 3)
                        #expect(block.locations.count == 3)
                        #expect(!block.locations.contains { $0.nodeID == "unreachable-node" })
                    }
                }
                withExtendedLifetime(refusing) {}
            }
        }
    }

    /// When a node is declared dead, every block it held is copied from the surviving replicas
    /// until each has three live ones again.
    @Test func blocksOfADeadNodeAreReplicatedAgain() async throws {
        let clock = ManualClock()
        try await withCluster({ options in
            options.dataNodes = 4
            options.heartbeatIntervalMs = 100
            options.heartbeatTimeoutMs = 2_000
            options.nameNodeClock = clock
        }) { cluster in
            try await withClient(cluster) { client in
                var files: [(String, [UInt8])] = []
                for index in 0..<4 {
                    let data = randomBytes(90_000, seed: UInt64(95 + index))
                    try await put(client, "/survive/\(index)", data, blockSize: 32 * 1024)
                    files.append(("/survive/\(index)", data))
                }
                // Stop the node holding the most replicas.
                let victim = try #require(cluster.dataNodes.max { $0.store.count < $1.store.count })
                let lost = victim.store.count
                #expect(lost > 0)
                await victim.shutdown()
                let others = cluster.dataNodes.filter { $0 !== victim }
                var ids: [UInt64] = []
                for (path, _) in files { ids += try await blockIds(client, path) }
                // The victim is silent past the timeout on the name node's clock while the others
                // heartbeat: it alone is dead, however busy the machine.
                try await advance(cluster, clock, milliseconds: 2_001, live: others)
                // The copies are on disk, and the name node has heard of them. (Its monitor runs
                // when its clock moves; the test runs a pass each time it looks.)
                let healed = try await eventually(timeoutSeconds: 60) {
                    await cluster.nameNode.monitorPass()
                    guard ids.allSatisfy({ id in others.filter { $0.store.replica(id) != nil }.count == 3 }) else { return false }
                    let report = try await client.fsck("/")
                    return report.underReplicatedBlocks == 0 && report.deadDatanodes == 1
                }
                #expect(healed, "replicas on live nodes: \(ids.map { id in others.filter { $0.store.replica(id) != nil }.count })")
                let report = try await client.fsck("/")
                #expect(report.deadDatanodes == 1)
                #expect(report.healthy && report.underReplicatedBlocks == 0, "\(report)")
                for (path, data) in files {
                    expectSameBytes(try await client.readAll(path), data, "\(path) after its node died")
                    for block in try await client.blockLocations(path).blocks {
                        #expect(block.locations.count == 3)
                        #expect(!block.locations.contains { $0.nodeID == victim.nodeId })
                        let holders = others.filter { $0.store.replica(block.block.blockID) != nil }
                        try expectReplicas(of: block.block.blockID, in: holders, equal: data, from: block.offset, length: block.block.numBytes)
                    }
                }
            }
        }
    }
}

/// A loopback TCP port bound but not listening: connections to it are refused, and no other
/// socket can take it while it is held.
final class RefusingPort {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard descriptor >= 0, bound else {
            let error = errno
            close(descriptor)
            throw RemoteException.io("cannot bind a loopback port: errno \(error)")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}

/// A data node keeps the namespace of its first name node: pointed at a name node of another
/// namespace (another cluster), it is refused and never mixes its replicas into it.
@Suite struct NamespaceIdentityTests {
    @Test func aDataNodeOfAnotherNamespaceIsRefused() async throws {
        try await withCluster({ $0.dataNodes = 1 }) { first in
            let node = try #require(first.dataNodes.first)
            #expect(node.namespaceId != nil, "the node keeps its namespace once registered")
            try await withCluster({ $0.dataNodes = 1 }) { second in
                var configuration = node.configuration
                configuration.transferPort = 0
                configuration.nameNodePort = second.nameNodePort
                configuration.heartbeatIntervalMs = 100
                await node.shutdown()
                let stray = try DataNode(configuration: configuration, group: second.group, logger: Logger(label: "stray"))
                try await stray.start()
                try await Task.sleep(for: .milliseconds(800))
                try await withClient(second) { client in
                    let nodes = try await client.datanodeReport()
                    #expect(nodes.count == 1, "the stray node registered: \(nodes.map(\.nodeID))")
                    #expect(!nodes.contains { $0.nodeID == stray.nodeId })
                }
                await stray.shutdown()
            }
        }
    }
}
