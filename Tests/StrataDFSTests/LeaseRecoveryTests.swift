import Foundation
import StrataClient
import StrataCore
import StrataTestKit
import StrataWire
import Testing

@testable import StrataDataNode
@testable import StrataNameNode

/// A writer that goes away without closing its file: its lease expires and the file is
/// recovered and closed at the length all replicas hold, keeping every acknowledged byte.
@Suite(.serialized) struct LeaseRecoveryTests {
    static let frameSize = 4096

    /// A client that renews its leases every 200 ms while it lives.
    static func writer(_ cluster: LocalCluster) -> DFSClient {
        var configuration = DFSClientConfiguration(user: "strata")
        configuration.nameNodePort = cluster.nameNodePort
        configuration.leaseRenewalSeconds = 0.2
        return DFSClient(configuration: configuration, group: cluster.group)
    }

    /// Writes `flushed` bytes (acknowledged by hflush) then `unflushed` more that never leave
    /// the writer, and lets the writer die without closing: its client stops and its stream is
    /// dropped, as when the process is killed.
    static func abandon(_ cluster: LocalCluster, _ path: String, flushed: [UInt8], unflushed: [UInt8]) async throws {
        let client = writer(cluster)
        do {
            let stream = try await client.create(path, blockSize: 64 * 1024)
            try await stream.write(flushed)
            try await stream.hflush()
            try await stream.write(unflushed)
        }
        await client.close()
    }

    @Test func hardLimitRecoversTheFileAtTheFlushedLength() async throws {
        // The name node's time moves only when the test moves it: the limits are checked at
        // their exact edges, however busy the machine is.
        let clock = ManualClock()
        try await withCluster({
            $0.rawFrameSizeBytes = Self.frameSize
            $0.leaseSoftLimitMs = 500
            $0.leaseHardLimitMs = 5_000
            $0.nameNodeClock = clock
        }) { cluster in
            try await withClient(cluster) { client in
                // Mid-frame and past a block boundary: the last block is partly written.
                let flushed = logLikeBytes(150_001, seed: 5)
                try await Self.abandon(cluster, "/abandoned", flushed: flushed, unflushed: Array(repeating: 7, count: 1000))
                #expect(try await client.status("/abandoned")?.underConstruction == true)
                clock.advance(milliseconds: 5_000)
                await cluster.nameNode.leaseMonitorPass()
                #expect(try await client.status("/abandoned")?.underConstruction == true, "recovered before the hard limit")
                clock.advance(milliseconds: 1)
                await cluster.nameNode.leaseMonitorPass()
                #expect(try await eventually(timeoutSeconds: 90) { try await client.status("/abandoned")?.underConstruction == false })
                #expect(try await client.status("/abandoned")?.length == UInt64(flushed.count))
                expectSameBytes(try await client.readAll("/abandoned"), flushed, "/abandoned after recovery")
                try await expectConsistentReplicas(cluster, client, "/abandoned", flushed)
                // The file is an ordinary closed file again: another writer can append. (One
                // that renews its lease well within the hard limit, as a live writer does.)
                try await using(Self.writer(cluster)) { appender in
                    let stream = try await appender.append("/abandoned")
                    try await stream.write(Array("more\n".utf8))
                    try await stream.close()
                }
                expectSameBytes(try await client.readAll("/abandoned"), flushed + Array("more\n".utf8), "/abandoned after append")
            }
        }
    }

    /// Past the soft limit another writer may take the file: its append is refused while the
    /// recovery runs (RecoveryInProgressException), then succeeds.
    @Test func softLimitLetsAnotherWriterTakeOver() async throws {
        let clock = ManualClock()
        try await withCluster({
            $0.rawFrameSizeBytes = Self.frameSize
            $0.leaseSoftLimitMs = 1_000
            $0.leaseHardLimitMs = 600_000
            $0.nameNodeClock = clock
        }) { cluster in
            try await withClient(cluster) { client in
                let flushed = randomBytes(20_000, seed: 9)
                try await Self.abandon(cluster, "/taken", flushed: flushed, unflushed: [1, 2, 3])
                // Within the soft limit the file is still the first writer's.
                clock.advance(milliseconds: 1_000)
                _ = await expectRemote(.alreadyBeingCreated, "append within the soft limit") { _ = try await client.append("/taken") }
                clock.advance(milliseconds: 1)
                _ = await expectRemote(.recoveryInProgress, "append past the soft limit") { _ = try await client.append("/taken") }
                var stream: DFSOutputStream?
                let deadline = Date().addingTimeInterval(90)
                while stream == nil && Date() < deadline {
                    do {
                        stream = try await client.append("/taken")
                    } catch let error as RemoteException where error.exceptionClass == .recoveryInProgress {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                let appending = try #require(stream)
                try await appending.write(Array("taken over\n".utf8))
                try await appending.close()
                expectSameBytes(try await client.readAll("/taken"), flushed + Array("taken over\n".utf8), "/taken")
            }
        }
    }

    /// `recoverLease` answers false while the recovery runs and true once the file is closed;
    /// a file with no block at all closes at once.
    @Test func recoverLeaseOnDemand() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = Self.frameSize }) { cluster in
            try await withClient(cluster) { client in
                let flushed = randomBytes(10_000, seed: 11)
                try await Self.abandon(cluster, "/on-demand", flushed: flushed, unflushed: [])
                #expect(try await client.recoverLease("/on-demand") == false)
                #expect(try await eventually(timeoutSeconds: 90) { try await client.recoverLease("/on-demand") })
                expectSameBytes(try await client.readAll("/on-demand"), flushed, "/on-demand")

                let empty = Self.writer(cluster)
                do { _ = try await empty.create("/never-written") }
                await empty.close()
                #expect(try await client.recoverLease("/never-written"))
                #expect(try await client.status("/never-written")?.length == 0)
                #expect(try await client.status("/never-written")?.underConstruction == false)

                #expect(try await client.recoverLease("/on-demand"), "a closed file needs no recovery")
                _ = await expectRemote(.fileNotFound, "recoverLease of a missing file") { _ = try await client.recoverLease("/missing") }
            }
        }
    }

    /// A writer whose lease was recovered can no longer add to the file.
    @Test func theOldWriterLosesTheFile() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = Self.frameSize }) { cluster in
            try await withClient(cluster) { client in
                let slow = Self.writer(cluster)
                let stream = try await slow.create("/lost", blockSize: 64 * 1024)
                let flushed = randomBytes(30_000, seed: 12)
                try await stream.write(flushed)
                try await stream.hflush()
                #expect(try await eventually(timeoutSeconds: 90) { try await client.recoverLease("/lost") })
                await #expect(throws: (any Error).self) {
                    try await stream.write(randomBytes(100_000, seed: 13))
                    try await stream.close()
                }
                await slow.close()
                expectSameBytes(try await client.readAll("/lost"), flushed, "/lost keeps what was flushed")
            }
        }
    }

    /// Every node of the last block's pipeline is dead when the recovery is asked for (stopped
    /// here; on a loaded machine, late with its heartbeats): the block and its flushed bytes are
    /// kept and the file stays open until a node holding them is back, and then closes with them.
    @Test func recoveryWaitsWhileEveryNodeOfTheBlockIsDead() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clock = ManualClock()
        var options = LocalCluster.Options()
        options.rawFrameSizeBytes = Self.frameSize
        options.heartbeatTimeoutMs = 2_000
        options.leaseRecoveryTimeoutMs = 1_500
        options.nameNodeClock = clock
        var cluster = try await LocalCluster.start(directory: directory, options: options)
        let flushed = randomBytes(40_000, seed: 15)
        try await Self.abandon(cluster, "/stranded", flushed: flushed, unflushed: [])
        for node in cluster.dataNodes { await node.shutdown() }
        try await advance(cluster, clock, milliseconds: 2_001, live: [])
        try await withClient(cluster) { client in
            let states = try await client.datanodeReport().map(\.state)
            #expect(states.allSatisfy { $0 == "dead" }, "\(states)")
            #expect(try await client.recoverLease("/stranded") == false, "closed with no node to recover the block from")
            #expect(try await client.status("/stranded")?.underConstruction == true)
            #expect(try await client.blockLocations("/stranded").hasLastBlock, "the last block was dropped")
        }
        await cluster.shutdown()
        options.nameNodeClock = SystemClock()
        cluster = try await LocalCluster.start(directory: directory, options: options)
        try await withClient(cluster) { client in
            let closed = try await eventually(timeoutSeconds: 60) { try await client.recoverLease("/stranded") }
            #expect(closed)
            expectSameBytes(try await client.readAll("/stranded"), flushed, "/stranded once its nodes are back")
        }
        await cluster.shutdown()
    }

    /// The node chosen to run a recovery dies before it does: after the recovery timeout the
    /// name node starts over with a node that is alive, and the file is closed all the same.
    @Test func recoveryStartsOverWhenItsNodeDies() async throws {
        let clock = ManualClock()
        try await withCluster({
            $0.dataNodes = 4
            $0.rawFrameSizeBytes = Self.frameSize
            $0.heartbeatIntervalMs = 100
            $0.heartbeatTimeoutMs = 2_000
            $0.leaseRecoveryTimeoutMs = 1_500
            $0.nameNodeClock = clock
        }) { cluster in
            try await withClient(cluster) { client in
                let flushed = randomBytes(40_000, seed: 14)
                try await Self.abandon(cluster, "/orphan", flushed: flushed, unflushed: [])
                let pipeline = try await client.blockLocations("/orphan").lastBlock.locations.map(\.nodeID)
                #expect(pipeline.count == 3)
                // The first node of the pipeline is the recovery's primary: stop it before its
                // next heartbeat can hand it the command.
                await cluster.dataNode(pipeline[0])?.shutdown()
                #expect(try await client.recoverLease("/orphan") == false)
                // The stopped primary goes dead and its recovery times out; the next starts on a
                // node that is alive.
                let alive = cluster.dataNodes.filter { $0.nodeId != pipeline[0] }
                try await advance(cluster, clock, milliseconds: 2_001, live: alive)
                let dead = try await client.datanodeReport().filter { $0.state == "dead" }.map(\.nodeID)
                #expect(dead == [pipeline[0]])
                await cluster.nameNode.leaseMonitorPass()
                #expect(try await eventually(timeoutSeconds: 60) { try await client.recoverLease("/orphan") })
                expectSameBytes(try await client.readAll("/orphan"), flushed, "/orphan after the second recovery")
                let located = try #require(try await client.blockLocations("/orphan").blocks.first)
                #expect(!located.locations.contains { $0.nodeID == pipeline[0] })
            }
        }
    }

    /// An appender that goes away before writing a byte: the replicas still carry the stamp
    /// from before the append, and they are the file's data. Full block reports in that window
    /// keep them, and the recovery closes the file with every byte it had.
    @Test func anAppendAbandonedBeforeItsFirstByteKeepsTheFile() async throws {
        try await withCluster({ $0.rawFrameSizeBytes = Self.frameSize }) { cluster in
            try await withClient(cluster) { client in
                let original = logLikeBytes(30_001, seed: 21)
                let stream = try await client.create("/appended", blockSize: 64 * 1024)
                try await stream.write(original)
                try await stream.close()
                let appender = Self.writer(cluster)
                _ = try await appender.append("/appended")
                await appender.close()
                #expect(try await client.status("/appended")?.underConstruction == true)
                // Readers of the open file still see its bytes.
                expectSameBytes(try await client.readAll("/appended"), original, "/appended while open for append")
                for node in cluster.dataNodes { try await node.sendBlockReport() }
                #expect(try await client.blockLocations("/appended").lastBlock.locations.count == 3, "replicas dropped as stale")
                #expect(try await eventually(timeoutSeconds: 90) { try await client.recoverLease("/appended") })
                #expect(try await client.status("/appended")?.length == UInt64(original.count))
                expectSameBytes(try await client.readAll("/appended"), original, "/appended after recovery")
                try await expectConsistentReplicas(cluster, client, "/appended", original)
            }
        }
    }

    /// The same window across a name node restart from a checkpoint: the image keeps the stamp
    /// the replicas had before the append, so the restarted name node's block reports keep them.
    @Test func anAbandonedAppendSurvivesANameNodeRestart() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = LocalCluster.Options()
        options.rawFrameSizeBytes = Self.frameSize
        var cluster = try await LocalCluster.start(directory: directory, options: options)
        let original = logLikeBytes(20_000, seed: 22)
        try await withClient(cluster) { client in
            let stream = try await client.create("/restarted", blockSize: 64 * 1024)
            try await stream.write(original)
            try await stream.close()
        }
        let appender = Self.writer(cluster)
        _ = try await appender.append("/restarted")
        await appender.close()
        try cluster.nameNode.checkpointNow()
        await cluster.shutdown()
        cluster = try await LocalCluster.start(directory: directory, options: options)
        try await withClient(cluster) { client in
            #expect(try await client.status("/restarted")?.underConstruction == true)
            #expect(try await eventually(timeoutSeconds: 90) { try await client.recoverLease("/restarted") })
            expectSameBytes(try await client.readAll("/restarted"), original, "/restarted after recovery")
        }
        await cluster.shutdown()
    }
}
