import Foundation
import StrataBlockFormat
import StrataClient
import StrataDataNode
import StrataTestKit
import StrataWire
import Testing

@testable import StrataNameNode

/// Starts a cluster in a fresh temporary directory, runs `body`, and always shuts the cluster
/// down and removes the directory, so a failing test leaves no threads or files behind.
func withCluster<Result>(
    _ configure: (inout LocalCluster.Options) -> Void = { _ in },
    _ body: (LocalCluster) async throws -> Result
) async throws -> Result {
    try await LocalCluster.withTemporary(prefix: "strata-dfs-", configure, body)
}

func temporaryDirectory() -> String {
    NSTemporaryDirectory() + "strata-dfs-" + UUID().uuidString
}

/// Runs `body` with a client of `cluster` acting as `user`, closing it afterwards.
func withClient<Result>(
    _ cluster: LocalCluster, user: String = "strata", _ body: (DFSClient) async throws -> Result
) async throws -> Result {
    try await using(cluster.client(user: user), body)
}


/// A client whose reads give up on a block with no good replica after `retryWindowSeconds`
/// (the default waits 30 s for data nodes that may still be reporting).
func impatientClient(_ cluster: LocalCluster, retryWindowSeconds: Double = 2) -> DFSClient {
    var configuration = DFSClientConfiguration(user: "strata")
    configuration.nameNodePort = cluster.nameNodePort
    configuration.retryWindowSeconds = retryWindowSeconds
    return DFSClient(configuration: configuration, group: cluster.group)
}

/// Writes `bytes` to a new file in pieces of `chunk` bytes (odd sizes exercise the stream's
/// buffering across frame and block boundaries) and closes it.
func put(
    _ client: DFSClient, _ path: String, _ bytes: [UInt8], overwrite: Bool = false, replication: Int? = nil,
    blockSize: UInt64? = nil, permission: UInt16 = 0o644, chunk: Int = 100_003
) async throws {
    let stream = try await client.create(path, overwrite: overwrite, replication: replication, blockSize: blockSize, permission: permission)
    var start = 0
    while start < bytes.count {
        let end = min(bytes.count, start + chunk)
        try await stream.write(Array(bytes[start..<end]))
        start = end
    }
    try await stream.close()
}

/// Byte equality with a readable failure: the lengths and the first differing offset.
func expectSameBytes(
    _ actual: [UInt8], _ expected: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    if actual == expected { return }
    let firstDifference = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(actual.count, expected.count)
    Issue.record(
        "\(what): got \(actual.count) bytes, expected \(expected.count); first difference at offset \(firstDifference)",
        sourceLocation: sourceLocation)
}

/// Expects `body` to fail with a `RemoteException` of class `exceptionClass`; returns it.
@discardableResult
func expectRemote(
    _ exceptionClass: RemoteExceptionClass, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> RemoteException? {
    do {
        try await body()
        Issue.record("\(what): succeeded, expected \(exceptionClass)", sourceLocation: sourceLocation)
        return nil
    } catch let error as RemoteException {
        #expect(error.exceptionClass == exceptionClass, "\(what): \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("\(what): failed with \(error), expected \(exceptionClass)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Polls `condition` every 100 ms until it holds or `timeoutSeconds` pass; returns whether it held.
func eventually(timeoutSeconds: Double = 20, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while true {
        if try await condition() { return true }
        if Date() > deadline { return false }
        try await Task.sleep(for: .milliseconds(100))
    }
}

// MARK: - The name node's manual clock

/// Moves a cluster's manual name-node clock forward by `milliseconds`, a `step` at a time,
/// waiting after each step until every node in `live` has heartbeated at the new instant, then
/// runs one monitor pass. Live nodes stay live and stopped ones age past the heartbeat timeout
/// exactly as far as the test says, however slow the machine is.
func advance(
    _ cluster: LocalCluster, _ clock: ManualClock, milliseconds: Int64, step: Int64 = 500, live: [DataNode],
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    var remaining = milliseconds
    while remaining > 0 {
        let move = min(step, remaining)
        clock.advance(milliseconds: move)
        remaining -= move
        let now = clock.now
        let ids = live.map(\.nodeId)
        let heard = try await eventually(timeoutSeconds: 30) {
            cluster.nameNode.state.withLock { state in
                ids.allSatisfy { id in
                    state.blockManager.index(ofNode: id).map { state.blockManager.nodes[Int($0)].lastHeartbeat >= now } ?? false
                }
            }
        }
        #expect(heard, "a live data node sent no heartbeat at the new time", sourceLocation: sourceLocation)
    }
    await cluster.nameNode.monitorPass()
}

// MARK: - Data


/// Incompressible bytes from a seed.
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        let word = generator.next()
        for shift in stride(from: 0, to: 64, by: 8) where index < count {
            bytes[index] = UInt8(truncatingIfNeeded: word >> UInt64(shift))
            index += 1
        }
    }
    return bytes
}

/// Text that looks like a service's log: timestamps, levels, a few repeating messages with
/// varying numbers. Compresses the way real logs do (several times).
func logLikeBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    let levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
    let messages = [
        "request completed method=GET path=/api/v1/items status=200",
        "request completed method=POST path=/api/v1/orders status=201",
        "cache miss key=user:%d refreshing from database",
        "slow query took %d ms table=events rows=%d",
        "connection from 10.0.%d.%d accepted",
        "heartbeat from node-%d ok lag=%d ms",
    ]
    var text: [UInt8] = []
    text.reserveCapacity(count + 200)
    var millis: UInt64 = 1_767_225_600_000
    while text.count < count {
        millis += generator.next() % 50
        let level = levels[Int(generator.next() % UInt64(levels.count))]
        var message = messages[Int(generator.next() % UInt64(messages.count))]
        while let range = message.range(of: "%d") {
            message.replaceSubrange(range, with: String(generator.next() % 1000))
        }
        let line = "\(millis / 1000).\(millis % 1000) \(level) [worker-\(generator.next() % 8)] \(message)\n"
        text.append(contentsOf: line.utf8)
    }
    return Array(text.prefix(count))
}

// MARK: - Replicas on disk

extension LocalCluster {
    /// The data nodes whose block store holds a replica of `blockId`.
    func holders(of blockId: UInt64) -> [DataNode] {
        dataNodes.filter { $0.store.replica(blockId) != nil }
    }

    /// The data node with this node id.
    func dataNode(_ nodeId: String) -> DataNode? {
        dataNodes.first { $0.nodeId == nodeId }
    }
}

/// Block ids of a closed file, in order.
func blockIds(_ client: DFSClient, _ path: String) async throws -> [UInt64] {
    try await client.blockLocations(path).blocks.map(\.block.blockID)
}

/// Checks that each holder's replica of a block is finished, has the block's raw length, and
/// decodes (read straight from the block file) to `data[from..<from+length]`.
func expectReplicas(
    of blockId: UInt64, in holders: [DataNode], equal data: [UInt8], from: UInt64, length: UInt64,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    for node in holders {
        let replica = try #require(node.store.replica(blockId), sourceLocation: sourceLocation)
        #expect(replica.isFinalized, "replica of \(blockId) on \(node.nodeId) is finalized", sourceLocation: sourceLocation)
        #expect(replica.rawLength == length, "replica of \(blockId) on \(node.nodeId) has \(replica.rawLength) bytes", sourceLocation: sourceLocation)
        let path = try #require(node.store.path(of: blockId), sourceLocation: sourceLocation)
        let reader = try BlockReader(path: path, expectedBlockId: blockId)
        let bytes = try reader.read(offset: 0, length: Int(reader.rawLength))
        expectSameBytes(
            bytes, Array(data[Int(from)..<Int(from + length)]), "replica of \(blockId) on \(node.nodeId)", sourceLocation: sourceLocation)
    }
}

/// Every block of a closed file has `replication` finished replicas with the same generation
/// stamp and length, holding the file's bytes.
func expectConsistentReplicas(
    _ cluster: LocalCluster, _ client: DFSClient, _ path: String, _ expected: [UInt8],
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let located = try await client.blockLocations(path)
    let replication = Int(try #require(try await client.status(path), sourceLocation: sourceLocation).replication)
    #expect(located.fileLength == UInt64(expected.count), sourceLocation: sourceLocation)
    for block in located.blocks {
        let id = block.block.blockID
        let holders = cluster.holders(of: id)
        #expect(holders.count == replication, "block \(id) of \(path) is in \(holders.count) stores", sourceLocation: sourceLocation)
        for node in holders {
            #expect(
                node.store.replica(id)?.generationStamp == block.block.generationStamp,
                "replica of \(id) on \(node.nodeId) has stamp \(node.store.replica(id)?.generationStamp ?? 0), the name node \(block.block.generationStamp)",
                sourceLocation: sourceLocation)
        }
        try expectReplicas(of: id, in: holders, equal: expected, from: block.offset, length: block.block.numBytes, sourceLocation: sourceLocation)
    }
}
