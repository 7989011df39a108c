import Foundation
import Glibc
import Testing

/// Writes that lose a process on the way, with real processes and `kill -9`: a data node of
/// the pipeline dies while `strata dfs put` streams (the put finishes with every byte), and the
/// writer itself dies (its lease expires and the name node closes the file at the length its
/// replicas agree on).
@Suite(.serialized) struct WriterFailureProcessTests {
    /// `strata dfs put - PATH` reading from a pipe the test writes into, so the test decides
    /// when the data arrives and can kill processes in between.
    final class StreamingPut {
        let process = Process()
        let input = Pipe()
        let output = Pipe()

        init(_ cluster: ProcessCluster, _ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: strataExecutable)
            process.arguments = ["dfs", "put"] + arguments
            process.environment = ProcessInfo.processInfo.environment.merging(cluster.environment) { $1 }
            process.standardInput = input
            process.standardOutput = output
            process.standardError = output
            try process.run()
        }

        func send(_ data: Data) {
            input.fileHandleForWriting.write(data)
        }

        /// Closes stdin and waits (bounded) for the put to exit; returns its status and output.
        func finish(timeout: Double = 60) -> (Int32, String) {
            try? input.fileHandleForWriting.close()
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            return (process.terminationStatus, text)
        }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The data node holding the replica being written (an unfinished replica file on its disk).
    static func nodeWriting(_ cluster: ProcessCluster, count: Int) -> Int? {
        (0..<count).first { index in cluster.replicaFiles(onDataNode: index).contains { !$0.isFinalized } }
    }

    @Test func dataNodeKilledDuringAPutLosesNothing() throws {
        let cluster = try ProcessCluster(dataNodes: 4, heartbeatTimeoutSeconds: 3)
        try cluster.waitUntilReady(dataNodes: 4)
        let data = makeData(24 << 20, seed: 31, text: true)
        let put = try StreamingPut(cluster, ["--block-size", "3m", "-", "/streamed.log"])
        put.send(data.prefix(10 << 20))
        // 4 MiB reads from stdin into 3 MiB blocks: after two reads the third block is open.
        // Wait until it is, then kill a node that is writing it.
        var victim: Int?
        _ = secondsUntil(timeoutSeconds: 20) {
            victim = Self.nodeWriting(cluster, count: 4)
            return victim != nil
        }
        let killed = try #require(victim, "no data node was writing a block")
        let killedId = try cluster.nodeId(ofDataNode: killed)
        cluster.killDataNode(killed)
        put.send(data.dropFirst(10 << 20))
        let (status, output) = put.finish()
        #expect(status == 0, "put after a data node died: \(output)")

        let copy = cluster.directory + "/streamed.copy"
        let get = try cluster.run(["dfs", "get", "/streamed.log", copy])
        #expect(get.status == 0, "\(get.error)")
        let original = cluster.directory + "/streamed.original"
        try data.write(to: URL(fileURLWithPath: original))
        #expect(try sha256(copy) == sha256(original))
        // Once the dead node is noticed, its blocks are copied again: fully healthy.
        let noticed = try secondsUntil(timeoutSeconds: 30) { try cluster.dataNodeStates()[killedId] == "dead" }
        #expect(noticed != nil, "the killed node was never reported dead")
        let healed = try secondsUntil(timeoutSeconds: 60, intervalSeconds: 0.5) {
            let report = try cluster.fsck("/")
            return report["healthy"] as? Bool == true && jsonCount(report, "underReplicatedBlocks") == 0
                && jsonCount(report, "openFiles") == 0
        }
        let finalReport = try cluster.fsck("/")
        #expect(healed != nil, "fsck: \(finalReport)")
    }

    @Test func writerKilledMidFileIsRecoveredAfterTheHardLimit() throws {
        let cluster = try ProcessCluster(
            dataNodes: 3, heartbeatTimeoutSeconds: 5, nameNodeArguments: ["--lease-soft-limit", "1", "--lease-hard-limit", "3"])
        try cluster.waitUntilReady(dataNodes: 3)
        let data = makeData(9 << 20, seed: 32, text: true)
        let put = try StreamingPut(cluster, ["--block-size", "2m", "-", "/killed.log"])
        put.send(data)
        // Let whole blocks reach the data nodes, then kill the writer without warning.
        let finished = secondsUntil(timeoutSeconds: 20) {
            (0..<3).contains { index in cluster.replicaFiles(onDataNode: index).filter(\.isFinalized).count >= 2 }
        }
        #expect(finished != nil, "no block was finished")
        put.kill9()

        // The put wrote under a temporary name; the name node closes that file by itself.
        let temporary = "/killed.log._COPYING_"
        let closed = try secondsUntil(timeoutSeconds: 90, intervalSeconds: 0.3) {
            let report = try cluster.fsck("/")
            return jsonCount(report, "openFiles") == 0 && report["healthy"] as? Bool == true
        }
        let report = try cluster.fsck("/")
        #expect(closed != nil, "the abandoned file was not recovered: \(report)\n\(cluster.logTail("namenode.log"))")
        let stat = try cluster.run(["dfs", "stat", "%b", temporary])
        #expect(stat.status == 0, "\(stat.error)")
        let length = Int(stat.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(length >= 4 << 20 && length <= data.count, "recovered length \(length)")
        // What the file holds is exactly the start of what was written.
        let copy = cluster.directory + "/killed.copy"
        #expect(try cluster.run(["dfs", "get", temporary, copy]).status == 0)
        let recovered = try Data(contentsOf: URL(fileURLWithPath: copy))
        #expect(recovered.count == length)
        #expect(recovered == data.prefix(length), "the recovered file is not a prefix of the written bytes")
        // No final name appeared: a failed put leaves nothing under it.
        #expect(try cluster.run(["dfs", "test", "-e", "/killed.log"]).status != 0)
    }

    /// `strata debug recover-lease` (HDFS `hdfs debug recoverLease`) closes a killed writer's
    /// file at once, without waiting for the lease limits.
    @Test func recoverLeaseCommandClosesAKilledWritersFile() throws {
        let cluster = try ProcessCluster(dataNodes: 3)
        try cluster.waitUntilReady(dataNodes: 3)
        // Input is read 4 MiB at a time: two reads reach the data nodes while the third waits.
        let data = makeData(9 << 20, seed: 33, text: true)
        let put = try StreamingPut(cluster, ["--block-size", "1m", "-", "/leased.log"])
        put.send(data)
        let written = secondsUntil(timeoutSeconds: 20) {
            (0..<3).contains { index in cluster.replicaFiles(onDataNode: index).filter(\.isFinalized).count >= 1 }
        }
        #expect(written != nil, "no block was finished")
        put.kill9()
        let temporary = "/leased.log._COPYING_"
        let recover = try cluster.run(["debug", "recover-lease", "-path", temporary, "-retries", "120", "--retry-interval", "0.5"])
        #expect(recover.status == 0, "\(recover.output) \(recover.error)")
        #expect(recover.output.contains("recoverLease SUCCEEDED on \(temporary)"), "\(recover.output)")
        let report = try cluster.fsck("/")
        #expect(jsonCount(report, "openFiles") == 0, "\(report)")
        let copy = cluster.directory + "/leased.copy"
        #expect(try cluster.run(["dfs", "get", temporary, copy]).status == 0)
        let recovered = try Data(contentsOf: URL(fileURLWithPath: copy))
        #expect(recovered.count >= 1 << 20 && recovered == data.prefix(recovered.count), "recovered \(recovered.count) bytes")
        // A missing file is a clear error.
        let missing = try cluster.run(["debug", "recover-lease", "--path", "/nothing-here"])
        #expect(missing.status != 0 && missing.error.contains("No such file"), "\(missing.error)")
    }
}
