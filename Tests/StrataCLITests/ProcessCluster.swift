import Foundation
import Glibc
import StrataTestKit
import Testing

let strataExecutable = TestExecutables.strata

/// A port nobody listens on right now (the system picks it).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(fd, $0, length) } }
    withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

struct CommandResult {
    var status: Int32
    var output: String
    var error: String
}

/// Runs `strata ARGUMENTS` to completion (bounded by `timeout` seconds), feeding `input` on stdin.
@discardableResult
func strata(_ arguments: [String], environment: [String: String] = [:], input: Data? = nil, timeout: Double = 120) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: strataExecutable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let output = Pipe()
    let error = Pipe()
    let stdin = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(input) }
    try stdin.fileHandleForWriting.close()
    // Read both pipes while the process runs so neither fills up.
    final class Box: @unchecked Sendable { var data = Data() }
    let outBox = Box()
    let errBox = Box()
    let readers = DispatchGroup()
    for (pipe, box) in [(output, outBox), (error, errBox)] {
        readers.enter()
        DispatchQueue.global().async {
            box.data = pipe.fileHandleForReading.readDataToEndOfFile()
            readers.leave()
        }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        readers.wait()
        throw ProcessClusterError(message: "strata \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
    }
    process.waitUntilExit()
    readers.wait()
    return CommandResult(
        status: process.terminationStatus, output: String(decoding: outBox.data, as: UTF8.self), error: String(decoding: errBox.data, as: UTF8.self))
}

struct ProcessClusterError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A name node and data nodes as separate `strata` processes on loopback. Each data node keeps
/// its directory and ports for the cluster's lifetime, so it can be killed and started again as
/// the same node. Every process is killed and the directory removed when the cluster goes away,
/// also when a test fails half-way.
final class ProcessCluster {
    /// Where one data node lives: the same directory and ports across restarts.
    struct DataNodeSlot {
        let directory: String
        let transferPort: Int
        let httpPort: Int
        let log: String
    }

    /// A replica's file on a data node's disk (`current/finalized/subdir*/blk_<id>_<stamp>` or
    /// `current/rbw/blk_<id>_<stamp>`).
    struct ReplicaFile: Hashable {
        var blockId: UInt64
        var generationStamp: UInt64
        var path: String
        var isFinalized: Bool
    }

    let directory: String
    let nameNodePort: Int
    /// The name node's `--heartbeat-timeout`; nil for its default.
    let heartbeatTimeoutSeconds: Double?
    /// The data nodes' `--heartbeat-interval`.
    let heartbeatIntervalSeconds = 0.3
    var nameNode: Process?
    private(set) var dataNodeSlots: [DataNodeSlot] = []
    /// Each data node's running process; nil while it is stopped.
    private(set) var dataNodes: [Process?] = []
    let superuser = "tester"

    /// More `strata namenode` options (lease limits, safe mode threshold).
    let nameNodeArguments: [String]

    init(dataNodes count: Int = 3, heartbeatTimeoutSeconds: Double? = nil, nameNodeArguments: [String] = []) throws {
        directory = NSTemporaryDirectory() + "strata-cli-" + UUID().uuidString
        nameNodePort = freePort()
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
        self.nameNodeArguments = nameNodeArguments
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try startNameNode()
            for index in 0..<count {
                dataNodeSlots.append(
                    DataNodeSlot(directory: directory + "/node\(index + 1)", transferPort: freePort(), httpPort: freePort(), log: "node\(index + 1).log"))
                dataNodes.append(nil)
            }
            try startDataNodes(0..<count)
        } catch {
            stopEverything()
            throw error
        }
    }

    deinit { stopEverything() }

    private func stopEverything() {
        for process in dataNodes.compactMap({ $0 }) + [nameNode].compactMap({ $0 }) where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        // STRATA_KEEP_CLUSTERS=1 keeps the directory (data and logs) for a look after a failure.
        if ProcessInfo.processInfo.environment["STRATA_KEEP_CLUSTERS"] == "1" {
            print("process cluster kept at \(directory)")
        } else {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    var environment: [String: String] { ["STRATA_NAMENODE": "127.0.0.1:\(nameNodePort)", "STRATA_USER": superuser] }

    func startNameNode() throws {
        var arguments = ["namenode", "--dir", directory + "/namenode", "--port", "\(nameNodePort)", "--http-port", "0", "--superuser", superuser]
        if let heartbeatTimeoutSeconds { arguments += ["--heartbeat-timeout", "\(heartbeatTimeoutSeconds)"] }
        nameNode = try launch(arguments + nameNodeArguments, log: "namenode.log")
    }

    /// SIGKILL: no chance to flush or clean up.
    func killNameNode() {
        guard let nameNode else { return }
        kill(nameNode.processIdentifier, SIGKILL)
        nameNode.waitUntilExit()
        self.nameNode = nil
    }

    /// Starts data node `index` (from 0) on its directory and ports and waits until it serves; it
    /// registers, sends a full block report and heartbeats every `heartbeatIntervalSeconds`.
    func startDataNode(_ index: Int) throws { try startDataNodes([index]) }

    /// The same from an async test: it waits without holding one of the few threads that every
    /// async test in this process shares (the seeded fault run's writers run on them).
    func startDataNode(_ index: Int) async throws {
        var start = DataNodeStart(pending: [index])
        while try !start.poll(self) { try await Task.sleep(for: .milliseconds(100)) }
    }

    /// Starts data nodes and waits until each one serves. The name node still counts a node
    /// killed a moment ago as live, so its report cannot tell that a restart failed: the node's
    /// own log does. A slot's port can be taken while its node is down (it is one the system
    /// hands out, and another process's connection may get it): such a node starts again on
    /// new ports, under the same node id, as a data node moved to another port would.
    func startDataNodes(_ indices: some Collection<Int>) throws {
        var start = DataNodeStart(pending: Array(indices))
        while try !start.poll(self) { usleep(100_000) }
    }

    /// Data nodes being started, one poll at a time, so that sync and async tests each wait in
    /// their own way between polls.
    private struct DataNodeStart {
        var pending: [Int]
        var starting: [(index: Int, logStart: Int)] = []
        var deadline = Date()
        var attempts = 0

        /// Launches the nodes to start, or looks at those starting; true once every one serves.
        mutating func poll(_ cluster: ProcessCluster) throws -> Bool {
            if starting.isEmpty {
                guard let first = pending.first else { return true }
                guard attempts < ProcessCluster.startAttempts else {
                    throw ProcessClusterError(message: "data node \(first + 1) found no free port in \(attempts) tries")
                }
                attempts += 1
                starting = try cluster.launchDataNodes(pending)
                pending = []
                deadline = Date().addingTimeInterval(ProcessCluster.startTimeoutSeconds)
                return false
            }
            guard let retry = try cluster.settleDataNodes(starting, timedOut: Date() >= deadline) else { return false }
            starting = []
            pending = retry
            return retry.isEmpty
        }
    }

    static let startAttempts = 5
    static let startTimeoutSeconds = 60.0

    /// Launches data nodes; returns each one's index and where its log stood before.
    fileprivate func launchDataNodes(_ indices: [Int]) throws -> [(index: Int, logStart: Int)] {
        try indices.map { index in
            precondition(dataNodes[index] == nil, "data node \(index) is running")
            let slot = dataNodeSlots[index]
            let logStart = logSize(slot.log)
            dataNodes[index] = try launch(
                [
                    "datanode", "--dir", slot.directory, "--port", "\(slot.transferPort)", "--http-port", "\(slot.httpPort)",
                    "--namenode", "127.0.0.1:\(nameNodePort)", "--heartbeat-interval", "\(heartbeatIntervalSeconds)",
                ], log: slot.log)
            return (index, logStart)
        }
    }

    /// Nil while a launched node is still starting; once each serves or has exited, the nodes to
    /// launch again (their ports were taken; they get new ones). Throws for a node that exited
    /// for another reason, or that is still starting at `timedOut`.
    fileprivate func settleDataNodes(_ starting: [(index: Int, logStart: Int)], timedOut: Bool) throws -> [Int]? {
        var retry: [Int] = []
        for (index, logStart) in starting {
            let output = logText(dataNodeSlots[index].log, from: logStart)
            if output.contains("data node serving") { continue }
            if dataNodes[index]?.isRunning ?? false {
                if !timedOut { return nil }
                killDataNode(index)
                throw ProcessClusterError(message: "data node \(index + 1) not serving after \(Self.startTimeoutSeconds) s:\n\(output.suffix(2000))")
            }
            dataNodes[index] = nil
            guard output.contains("Address already in use") else {
                throw ProcessClusterError(message: "data node \(index + 1) did not start:\n\(output.suffix(2000))")
            }
            let slot = dataNodeSlots[index]
            dataNodeSlots[index] = DataNodeSlot(directory: slot.directory, transferPort: freePort(), httpPort: freePort(), log: slot.log)
            retry.append(index)
        }
        return retry
    }

    /// Kills data node `index` with SIGKILL (no clean shutdown) and waits until it is gone. Its
    /// directory stays as the kill left it.
    func killDataNode(_ index: Int) {
        guard let process = dataNodes[index] else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        dataNodes[index] = nil
    }

    /// The node id data node `index` registers with (kept in its directory).
    func nodeId(ofDataNode index: Int) throws -> String {
        try String(contentsOfFile: dataNodeSlots[index].directory + "/node-id", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The replica files on data node `index`'s disk, read from the directory (not asked of the node).
    func replicaFiles(onDataNode index: Int) -> [ReplicaFile] {
        let manager = FileManager.default
        let current = dataNodeSlots[index].directory + "/current"
        var files: [ReplicaFile] = []
        func scan(_ folder: String, finalized: Bool) {
            for name in (try? manager.contentsOfDirectory(atPath: folder)) ?? [] {
                let parts = name.split(separator: "_")
                guard parts.count == 3, parts[0] == "blk", let id = UInt64(parts[1]), let stamp = UInt64(parts[2]) else { continue }
                files.append(ReplicaFile(blockId: id, generationStamp: stamp, path: folder + "/" + name, isFinalized: finalized))
            }
        }
        for subdirectory in (try? manager.contentsOfDirectory(atPath: current + "/finalized")) ?? [] where subdirectory.hasPrefix("subdir") {
            scan(current + "/finalized/" + subdirectory, finalized: true)
        }
        scan(current + "/rbw", finalized: false)
        return files
    }

    func launch(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: strataExecutable)
        process.arguments = arguments
        let logPath = directory + "/" + log
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// The size in bytes of one of the cluster's logs (0 before it exists).
    func logSize(_ log: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + log))?[.size] as? Int) ?? 0
    }

    /// One of the cluster's logs from byte `offset` on.
    func logText(_ log: String, from offset: Int) -> String {
        guard let handle = FileHandle(forReadingAtPath: directory + "/" + log) else { return "" }
        defer { try? handle.close() }
        try? handle.seek(toOffset: UInt64(offset))
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    /// The end of one of the cluster's logs (`namenode.log`, `node1.log` ...), for failure messages.
    func logTail(_ log: String, characters: Int = 3000) -> String {
        String(((try? String(contentsOfFile: directory + "/" + log, encoding: .utf8)) ?? "").suffix(characters))
    }

    /// Every line of the cluster's logs that mentions `text`, each prefixed with its log's name,
    /// for failure messages (the logs go with the cluster's directory).
    func logLines(containing text: String) -> [String] {
        let logs = ["namenode.log"] + (1...dataNodes.count).map { "node\($0).log" }
        return logs.flatMap { log in
            ((try? String(contentsOfFile: directory + "/" + log, encoding: .utf8)) ?? "")
                .split(separator: "\n").filter { $0.contains(text) }.map { "\(log): \($0)" }
        }
    }

    /// Runs a `strata` client command against this cluster as the superuser.
    @discardableResult
    func run(_ arguments: [String], input: Data? = nil, user: String? = nil) throws -> CommandResult {
        var environment = self.environment
        if let user { environment["STRATA_USER"] = user }
        return try strata(arguments, environment: environment, input: input)
    }

    /// Each registered data node's state ("live" or "dead") by node id, from `dfsadmin report --json`.
    func dataNodeStates() throws -> [String: String] {
        let report = try run(["dfsadmin", "report", "--json"])
        guard report.status == 0 else { throw ProcessClusterError(message: "dfsadmin report failed: \(report.error)") }
        guard let nodes = try JSONSerialization.jsonObject(with: Data(report.output.utf8)) as? [[String: Any]] else {
            throw ProcessClusterError(message: "dfsadmin report --json is not a list of nodes: \(report.output)")
        }
        var states: [String: String] = [:]
        for node in nodes {
            if let id = node["nodeId"] as? String { states[id] = node["state"] as? String ?? "" }
        }
        return states
    }

    /// `fsck PATH --json` as a dictionary (exit status 1 only means CORRUPT, so it is not an error).
    func fsck(_ path: String = "/") throws -> [String: Any] {
        let result = try run(["fsck", path, "--json"])
        guard let report = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] else {
            throw ProcessClusterError(message: "fsck \(path) --json gave no JSON (status \(result.status)): \(result.output) \(result.error)")
        }
        return report
    }

    /// Waits until the name node answers, every data node is live and safe mode is off.
    func waitUntilReady(dataNodes count: Int = 3, timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let states = try? dataNodeStates(), states.values.filter({ $0 == "live" }).count >= count,
                let safe = try? run(["dfsadmin", "safemode", "get"]), safe.output.contains("OFF")
            {
                return
            }
            usleep(100_000)
        }
        // Data nodes that exited (a port taken meanwhile, say) tell why in their logs.
        let exited = dataNodeSlots.indices.filter { dataNodes[$0].map { !$0.isRunning } ?? false }
        let exitedLogs = exited.map { "\n\(dataNodeSlots[$0].log) (exited):\n\(logTail(dataNodeSlots[$0].log, characters: 1000))" }.joined()
        throw ProcessClusterError(
            message: "cluster not ready within \(timeout) s; name node log:\n\(logTail("namenode.log", characters: 2000))\(exitedLogs)")
    }
}

/// Polls `condition` every `intervalSeconds` until it holds or `timeoutSeconds` pass. Returns the
/// seconds it took from `since`, or nil if it never held.
func secondsUntil(
    since start: Date = Date(), timeoutSeconds: Double, intervalSeconds: Double = 0.1, _ condition: () throws -> Bool
) rethrows -> Double? {
    let deadline = start.addingTimeInterval(timeoutSeconds)
    while true {
        if try condition() { return Date().timeIntervalSince(start) }
        if Date() >= deadline { return nil }
        usleep(UInt32(intervalSeconds * 1_000_000))
    }
}

/// SHA-256 of a file, via the system's sha256sum.
func sha256(_ path: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    process.arguments = [path]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
}

/// Deterministic bytes: web-log-like text or noise.
func makeData(_ count: Int, seed: UInt64, text: Bool) -> Data {
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    var bytes = [UInt8]()
    bytes.reserveCapacity(count)
    while bytes.count < count {
        if text {
            bytes += Array("2026-11-25T10:\(next() % 60):\(next() % 60)Z INFO host-\(next() % 50) GET /api/\(next() % 1000) status=200\n".utf8)
        } else {
            var word = next()
            for _ in 0..<8 {
                bytes.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
    }
    return Data(bytes.prefix(count))
}

extension ProcessCluster {
    /// The ids of every block with a replica file on any data node's disk.
    func blockIdsOnDisk() -> Set<UInt64> {
        Set(dataNodeSlots.indices.flatMap { replicaFiles(onDataNode: $0).map(\.blockId) })
    }

    /// Replica files of one block on every data node's disk, whatever their generation stamp.
    func replicaFiles(ofBlock id: UInt64, onDataNodes indices: some Sequence<Int>) -> [(node: Int, file: ReplicaFile)] {
        indices.flatMap { node in replicaFiles(onDataNode: node).filter { $0.blockId == id }.map { (node, $0) } }
    }

    /// Puts a local file with the given block size and returns the ids of the blocks it got, in
    /// no particular order: the blocks whose replica files appeared on the data nodes' disks
    /// during the put (a put returns once its replicas are finished, so they are all there).
    func putReturningBlocks(_ local: String, _ remote: String, blockSize: String = "1m") throws -> Set<UInt64> {
        let before = blockIdsOnDisk()
        let put = try run(["dfs", "put", "-D", "dfs.blocksize=\(blockSize)", local, remote])
        guard put.status == 0 else { throw ProcessClusterError(message: "put \(remote) failed: \(put.error)") }
        return blockIdsOnDisk().subtracting(before)
    }
}

/// A count field of `fsck --json` output. Protobuf JSON leaves out fields that are zero.
func jsonCount(_ object: [String: Any], _ key: String) -> Int {
    if let number = object[key] as? NSNumber { return number.intValue }
    if let text = object[key] as? String, let value = Int(text) { return value }
    return 0
}
