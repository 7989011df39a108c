import Foundation
import Glibc
import Testing

/// The block scanner in real processes: `strata datanode --scan-bytes-per-second` finds bytes
/// flipped in a replica file on disk without any client reading it, and the name node replaces
/// the replica from the good ones.
@Suite(.serialized) struct ScannerProcessTests {
    /// Four data nodes, a file at replication 3. One node is stopped, a byte inside a frame of its
    /// replica file is inverted, and the node is started again (its scanner verifies every replica
    /// after a start). Its scanner reports the replica; the name node copies the block to the
    /// fourth node and deletes the damaged file. fsck --json is healthy with three good replica
    /// files on disk, and `dfs get` returns the original bytes.
    @Test func scannerReportsFlippedBytesAndTheBlockHeals() throws {
        let cluster = try ProcessCluster(dataNodes: 0)
        let nodes = ScanningDataNodes(cluster: cluster, count: 4, scanBytesPerSecond: 64 << 20)
        defer { nodes.stopAll() }
        try nodes.startAll()
        try cluster.waitUntilReady(dataNodes: 4)

        let local = cluster.directory + "/local"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        let original = local + "/events.log"
        try makeData(1_500_000, seed: 91, text: true).write(to: URL(fileURLWithPath: original))
        let put = try cluster.run(["dfs", "put", original, "/events.log"])
        #expect(put.status == 0, "put: \(put.error)")

        let holders = (0..<4).filter { !nodes.replicaFiles(onNode: $0).isEmpty }
        try #require(holders.count == 3, "replicas on nodes \(holders)")
        let spare = try #require((0..<4).first { !holders.contains($0) })
        let victim = holders[1]
        let damaged = try #require(nodes.replicaFiles(onNode: victim).first)

        nodes.stop(victim)
        let frame = try flipByteInMiddleFrame(of: damaged.path)
        let inspect = try strata(["debug", "block", damaged.path])
        #expect(inspect.status == 1 && inspect.output.contains("CORRUPT"), "debug block after the flip: \(inspect.output)")
        try nodes.start(victim)

        var lastReport: [String: Any] = [:]
        // Scanning, reporting, copying to the spare and deleting the bad replica take a few
        // seconds alone; the bound leaves room for a machine busy with other tests.
        let healed = try secondsUntil(timeoutSeconds: 90, intervalSeconds: 0.2) {
            lastReport = try cluster.fsck("/")
            let replicas = (0..<4).flatMap { nodes.replicaFiles(onNode: $0) }.filter { $0.blockId == damaged.blockId }
            return lastReport["healthy"] as? Bool == true && jsonCount(lastReport, "underReplicatedBlocks") == 0
                && jsonCount(lastReport, "corruptBlocks") == 0 && !FileManager.default.fileExists(atPath: damaged.path)
                && replicas.count == 3 && replicas.allSatisfy(\.isFinalized)
                && nodes.replicaFiles(onNode: spare).contains { $0.blockId == damaged.blockId }
        }
        #expect(
            healed != nil,
            "not healed: fsck \(lastReport); name node log:\n\(cluster.logTail("namenode.log"))\nnode log:\n\(cluster.logTail(nodes.log(victim)))")
        // The scanner found it (no client read the file before this point).
        let nameNodeLog = cluster.logTail("namenode.log", characters: 1_000_000)
        #expect(nameNodeLog.contains("replica reported corrupt") && nameNodeLog.contains("block scanner: block \(damaged.blockId) frame \(frame)"))
        for replica in (0..<4).flatMap({ nodes.replicaFiles(onNode: $0) }) where replica.blockId == damaged.blockId {
            let check = try strata(["debug", "block", replica.path])
            #expect(check.status == 0, "\(replica.path): \(check.output)")
        }

        let copy = local + "/events-copy.log"
        let get = try cluster.run(["dfs", "get", "/events.log", copy])
        #expect(get.status == 0, "get: \(get.error)")
        #expect(try sha256(copy) == sha256(original))
        let fsck = try cluster.run(["fsck", "/"])
        #expect(fsck.status == 0 && fsck.output.contains("Status: HEALTHY"), "\(fsck.output)")
    }
}

/// Data node processes of a `ProcessCluster` started with a scanner rate, each in its own
/// directory under the cluster's; stopped (SIGKILL) by `stopAll` or when the test ends.
final class ScanningDataNodes {
    let cluster: ProcessCluster
    let count: Int
    let scanBytesPerSecond: Int
    private var processes: [Process?]

    init(cluster: ProcessCluster, count: Int, scanBytesPerSecond: Int) {
        self.cluster = cluster
        self.count = count
        self.scanBytesPerSecond = scanBytesPerSecond
        processes = Array(repeating: nil, count: count)
    }

    deinit { stopAll() }

    func directory(_ index: Int) -> String { cluster.directory + "/scanning-node\(index + 1)" }
    func log(_ index: Int) -> String { "scanning-node\(index + 1).log" }

    func startAll() throws {
        for index in 0..<count { try start(index) }
    }

    /// Starts node `index` on its directory (free ports each time; its node id stays).
    func start(_ index: Int) throws {
        precondition(processes[index] == nil, "scanning data node \(index) is running")
        processes[index] = try cluster.launch(
            [
                "datanode", "--dir", directory(index), "--port", "0", "--http-port", "0", "--namenode", "127.0.0.1:\(cluster.nameNodePort)",
                "--heartbeat-interval", "\(cluster.heartbeatIntervalSeconds)", "--scan-bytes-per-second", "\(scanBytesPerSecond)",
            ], log: log(index))
    }

    func stop(_ index: Int) {
        guard let process = processes[index] else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        processes[index] = nil
    }

    func stopAll() {
        for index in 0..<count { stop(index) }
    }

    /// Replica files on node `index`'s disk (`current/finalized/subdir*/blk_<id>_<stamp>` and `current/rbw/...`).
    func replicaFiles(onNode index: Int) -> [ProcessCluster.ReplicaFile] {
        let manager = FileManager.default
        let current = directory(index) + "/current"
        var files: [ProcessCluster.ReplicaFile] = []
        func list(_ folder: String, finalized: Bool) {
            for name in (try? manager.contentsOfDirectory(atPath: folder)) ?? [] {
                let parts = name.split(separator: "_")
                guard parts.count == 3, parts[0] == "blk", let id = UInt64(parts[1]), let stamp = UInt64(parts[2]) else { continue }
                files.append(ProcessCluster.ReplicaFile(blockId: id, generationStamp: stamp, path: folder + "/" + name, isFinalized: finalized))
            }
        }
        for subdirectory in (try? manager.contentsOfDirectory(atPath: current + "/finalized")) ?? [] where subdirectory.hasPrefix("subdir") {
            list(current + "/finalized/" + subdirectory, finalized: true)
        }
        list(current + "/rbw", finalized: false)
        return files
    }
}

/// Inverts one byte in the middle of the payload of a block file's middle frame, found with
/// `strata debug block --json`; returns the frame's index.
func flipByteInMiddleFrame(of path: String) throws -> Int {
    let inspect = try strata(["debug", "block", path, "--json"])
    guard inspect.status == 0, let report = try JSONSerialization.jsonObject(with: Data(inspect.output.utf8)) as? [String: Any],
        let frames = report["frames"] as? [[String: Any]], !frames.isEmpty
    else { throw ProcessClusterError(message: "debug block \(path): \(inspect.output) \(inspect.error)") }
    let index = frames.count / 2
    let frame = frames[index]
    guard let fileOffset = (frame["fileOffset"] as? NSNumber)?.uint64Value, let stored = (frame["storedBytes"] as? NSNumber)?.uint64Value else {
        throw ProcessClusterError(message: "debug block \(path): frame \(index) without offsets: \(frame)")
    }
    // A frame header is 24 bytes; the payload follows it.
    let offset = fileOffset + 24 + stored / 2
    let handle = try #require(FileHandle(forUpdatingAtPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    let byte = try #require(try handle.read(upToCount: 1)?.first)
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data([~byte]))
    try handle.synchronize()
    return index
}
