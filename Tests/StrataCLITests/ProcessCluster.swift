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

    /// The compute side, once `startCompute` ran: the master's process (nil while it is down)
    /// on a port that stays the same across its restarts, since agents know it by address.
    var master: Process?
    var masterPort = 0
    var masterArguments: [String] = []
    /// An agent beside each data node; each keeps its work directory (and so its id) across
    /// restarts. Nil while stopped.
    var agentSlots: [AgentSlot] = []
    var agents: [Process?] = []
    /// The service launcher, once `startLauncher` ran (nil while it is down), and its port.
    var launcher: Process?
    var launcherPort = 0
    /// The cron service, once `startCron` ran (nil while it is down), and its port, which stays
    /// the same across its restarts unless another process took it meanwhile.
    var cron: Process?
    var cronPort = 0

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
        // Agents first and gracefully (they kill their tasks), while the master and the file
        // system they talk to still run; then whatever tasks a killed agent left running.
        stopCompute()
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

    func launch(_ arguments: [String], log: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: strataExecutable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
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
            + (agentSlots.isEmpty ? [] : ["master.log"] + agentSlots.map(\.log)) + (launcherPort == 0 ? [] : ["launcher.log"])
            + (cronPort == 0 ? [] : ["cron.log"])
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

// MARK: - The compute side: a master and agents as processes

extension ProcessCluster {
    /// Where one agent lives: its work directory (which keeps its id) and hostname stay across
    /// restarts; so does its port, unless another process took it while the agent was down.
    struct AgentSlot {
        let workDirectory: String
        var port: Int
        let log: String
        let hostname: String
        /// The data node beside it, by index.
        let dataNode: Int
        let resources: String
    }

    /// Starts `strata master` (its state in this cluster's DFS under /system/master, agents lost
    /// after `agentTimeoutSeconds`) and an agent beside each data node offering
    /// `agentResources`, and waits until every agent has registered.
    func startCompute(agentTimeoutSeconds: Double = 3, agentResources: String = "cpus:2;mem:2048;disk:0") throws {
        precondition(agentSlots.isEmpty, "the compute side is already started")
        masterPort = freePort()
        masterArguments = ["--agent-timeout", "\(agentTimeoutSeconds)"]
        try startMaster()
        for index in dataNodeSlots.indices {
            agentSlots.append(AgentSlot(
                workDirectory: directory + "/agent\(index + 1)", port: freePort(), log: "agent\(index + 1).log",
                hostname: "node\(index + 1)", dataNode: index, resources: agentResources))
            agents.append(nil)
        }
        try startAgents(Array(agentSlots.indices))
    }

    /// Starts the master on its port and waits until it answers: it serves once it has replayed
    /// its state from the DFS. The port must stay the master's (the agents know it by it), so a
    /// port taken meanwhile is waited for rather than changed.
    func startMaster() throws {
        precondition(master == nil, "the master is running")
        for attempt in 1...Self.startAttempts {
            let logStart = logSize("master.log")
            let process = try launch(
                ["master", "--port", "\(masterPort)", "--namenode", "127.0.0.1:\(nameNodePort)", "--superuser", superuser] + masterArguments,
                log: "master.log")
            master = process
            let deadline = Date().addingTimeInterval(Self.startTimeoutSeconds)
            while process.isRunning, Date() < deadline {
                if (try? httpCall("GET", port: masterPort, "/health", timeoutSeconds: 2))?.status == 200 { return }
                usleep(100_000)
            }
            killMaster()
            let output = logText("master.log", from: logStart)
            guard output.contains("Address already in use"), attempt < Self.startAttempts else {
                throw ProcessClusterError(message: "the master did not start serving:\n\(output.suffix(2000))")
            }
            sleep(1)
        }
        throw ProcessClusterError(message: "the master's port \(masterPort) stayed taken")
    }

    /// SIGKILL: the master gets no chance to write anything more.
    func killMaster() {
        guard let master else { return }
        if master.isRunning { kill(master.processIdentifier, SIGKILL) }
        master.waitUntilExit()
        self.master = nil
    }

    func startAgent(_ index: Int) throws { try startAgents([index]) }

    /// Starts agents and waits until each one has registered with the master (the agent logs it
    /// once the master accepted it; a restarted agent has already killed what its earlier run
    /// left running by then). An agent whose port was taken while it was down gets a new one.
    /// `onOwnAddresses`: each listens on its hostname (an address of its own) rather than
    /// 127.0.0.1.
    func startAgents(_ indices: [Int], onOwnAddresses: Bool = false, environment: [String: String] = [:]) throws {
        var pending = indices
        for _ in 1...Self.startAttempts where !pending.isEmpty {
            var starting: [(index: Int, logStart: Int)] = []
            for index in pending {
                precondition(agents[index] == nil, "agent \(index + 1) is running")
                let slot = agentSlots[index]
                starting.append((index, logSize(slot.log)))
                agents[index] = try launch(
                    [
                        "agent", "--work-dir", slot.workDirectory, "--master", "127.0.0.1:\(masterPort)",
                        "--namenode", "127.0.0.1:\(nameNodePort)", "--host", onOwnAddresses ? slot.hostname : "127.0.0.1",
                        "--port", "\(slot.port)", "--hostname", slot.hostname, "--datanode-id", try nodeId(ofDataNode: slot.dataNode),
                        "--resources", slot.resources,
                    ], log: slot.log, environment: environment)
            }
            pending = []
            let deadline = Date().addingTimeInterval(Self.startTimeoutSeconds)
            for (index, logStart) in starting {
                while true {
                    let output = logText(agentSlots[index].log, from: logStart)
                    if output.contains("agent registered with the master") { break }
                    if let process = agents[index], !process.isRunning {
                        process.waitUntilExit()
                        agents[index] = nil
                        guard output.contains("Address already in use") else {
                            throw ProcessClusterError(message: "agent \(index + 1) did not start:\n\(output.suffix(2000))")
                        }
                        agentSlots[index].port = freePort()
                        pending.append(index)
                        break
                    }
                    if Date() >= deadline {
                        killAgent(index)
                        throw ProcessClusterError(message: "agent \(index + 1) did not register within \(Self.startTimeoutSeconds) s:\n\(output.suffix(2000))")
                    }
                    usleep(100_000)
                }
            }
        }
        guard pending.isEmpty else { throw ProcessClusterError(message: "agents \(pending.map { $0 + 1 }) found no free port") }
    }

    /// Kills agent `index` with SIGKILL and waits until it is gone. Its tasks' processes go on
    /// running, as they would after an agent crash.
    func killAgent(_ index: Int) {
        guard let process = agents[index] else { return }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        agents[index] = nil
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) agent `index`: a paused agent neither heartbeats nor
    /// answers, while its tasks' processes run on.
    func pauseAgent(_ index: Int) {
        if let process = agents[index], process.isRunning { kill(process.processIdentifier, SIGSTOP) }
    }

    func resumeAgent(_ index: Int) {
        if let process = agents[index], process.isRunning { kill(process.processIdentifier, SIGCONT) }
    }

    /// The id agent `index` registers with (kept in its work directory).
    func agentId(_ index: Int) throws -> String {
        try String(contentsOfFile: agentSlots[index].workDirectory + "/agent-id", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the agents gracefully (each kills its tasks; SIGKILL for one that takes longer than
    /// `gracefulSeconds`), then the master, then kills whatever tasks an agent killed earlier
    /// left behind in its cgroups.
    func stopCompute(gracefulSeconds: Double = 20) {
        // The launcher first, so that it does not replace the instances the agents kill; the
        // cron service with it, so that it starts no runs meanwhile.
        killLauncher()
        killCron()
        let running = agents.indices.filter { agents[$0] != nil }
        for index in running where agents[index]!.isRunning {
            resumeAgent(index)
            kill(agents[index]!.processIdentifier, SIGTERM)
        }
        let deadline = Date().addingTimeInterval(gracefulSeconds)
        for index in running {
            while agents[index]!.isRunning, Date() < deadline { usleep(50_000) }
            killAgent(index)
        }
        killMaster()
        for index in agentSlots.indices {
            if let id = try? agentId(index) { killTaskProcesses(ofAgent: id) }
        }
    }

    // MARK: The service launcher

    /// Starts `strata launcher` against this cluster's master and name node (its state in the
    /// DFS under /system/launcher, instances run as `taskUser`, `environment` added to its own)
    /// and waits until it answers: it serves once it has replayed its state. A port taken before
    /// it could bind is traded for another.
    func startLauncher(taskUser: String, environment: [String: String] = [:]) throws {
        precondition(launcher == nil, "the launcher is running")
        precondition(masterPort != 0, "the launcher needs the compute side (startCompute)")
        for _ in 1...Self.startAttempts {
            launcherPort = freePort()
            let logStart = logSize("launcher.log")
            let process = try launch(
                [
                    "launcher", "--port", "\(launcherPort)", "--master", "127.0.0.1:\(masterPort)", "--namenode", "127.0.0.1:\(nameNodePort)",
                    "--superuser", superuser, "--task-user", taskUser,
                ], log: "launcher.log", environment: environment)
            launcher = process
            let deadline = Date().addingTimeInterval(Self.startTimeoutSeconds)
            while process.isRunning, Date() < deadline {
                if (try? httpCall("GET", port: launcherPort, "/ping", timeoutSeconds: 2))?.status == 200 { return }
                usleep(100_000)
            }
            killLauncher()
            let output = logText("launcher.log", from: logStart)
            guard output.contains("Address already in use") else {
                throw ProcessClusterError(message: "the launcher did not start serving:\n\(output.suffix(2000))")
            }
        }
        throw ProcessClusterError(message: "the launcher found no free port in \(Self.startAttempts) tries")
    }

    /// SIGKILL: the launcher's state is what it made durable in the DFS.
    func killLauncher() {
        guard let launcher else { return }
        if launcher.isRunning { kill(launcher.processIdentifier, SIGKILL) }
        launcher.waitUntilExit()
        self.launcher = nil
    }

    // MARK: The cron service

    /// Starts `strata cron serve` against this cluster's master and name node (its state in the
    /// DFS under /system/cron, runs as `taskUser`, a failed attempt retried after
    /// `failureRetrySeconds`, `environment` added to its own) and waits until it answers: it
    /// serves once it has replayed its state. A restart keeps the port it had, unless another
    /// process took it meanwhile; then, as for a port taken before it could bind, it takes another.
    func startCron(taskUser: String, failureRetrySeconds: Double = 1, environment: [String: String] = [:]) throws {
        precondition(cron == nil, "the cron service is running")
        precondition(masterPort != 0, "the cron service needs the compute side (startCompute)")
        if cronPort == 0 { cronPort = freePort() }
        for _ in 1...Self.startAttempts {
            let logStart = logSize("cron.log")
            let process = try launch(
                [
                    "cron", "serve", "--port", "\(cronPort)", "--master", "127.0.0.1:\(masterPort)", "--namenode", "127.0.0.1:\(nameNodePort)",
                    "--superuser", superuser, "--task-user", taskUser, "--failure-retry", "\(failureRetrySeconds)",
                ], log: "cron.log", environment: environment)
            cron = process
            let deadline = Date().addingTimeInterval(Self.startTimeoutSeconds)
            while process.isRunning, Date() < deadline {
                if (try? httpCall("GET", port: cronPort, "/ping", timeoutSeconds: 2))?.status == 200 { return }
                usleep(100_000)
            }
            killCron()
            let output = logText("cron.log", from: logStart)
            guard output.contains("Address already in use") else {
                throw ProcessClusterError(message: "the cron service did not start serving:\n\(output.suffix(2000))")
            }
            cronPort = freePort()
        }
        throw ProcessClusterError(message: "the cron service found no free port in \(Self.startAttempts) tries")
    }

    /// SIGKILL: the cron service's state is what it made durable in the DFS; the runs it
    /// submitted go on as the master's jobs.
    func killCron() {
        guard let cron else { return }
        if cron.isRunning { kill(cron.processIdentifier, SIGKILL) }
        cron.waitUntilExit()
        self.cron = nil
    }

    // MARK: Tasks' cgroups

    /// Where task cgroups can be: the unified hierarchy on cgroup v2, each mounted hierarchy on v1.
    static func cgroupRoots() -> [String] {
        let root = "/sys/fs/cgroup"
        if FileManager.default.fileExists(atPath: root + "/cgroup.controllers") { return [root] }
        var seen = Set<String>()
        return ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted().compactMap { name in
            let path = root + "/" + name
            let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard FileManager.default.fileExists(atPath: real + "/cgroup.procs"), seen.insert(real).inserted else { return nil }
            return real
        }
    }

    /// The task ids with a cgroup under agent `agentId`'s parent (`strata/<agentId>/<taskId>`) in
    /// any hierarchy.
    func taskCgroups(ofAgent agentId: String) -> Set<String> {
        var tasks = Set<String>()
        for root in Self.cgroupRoots() {
            let parent = "\(root)/strata/\(agentId)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: parent + "/" + name, isDirectory: &isDirectory), isDirectory.boolValue {
                    tasks.insert(name)
                }
            }
        }
        return tasks
    }

    /// The processes in a task's cgroups (what `ps` would show of the task).
    func taskProcessIds(ofAgent agentId: String, task taskId: String) -> Set<pid_t> {
        var pids = Set<pid_t>()
        for root in Self.cgroupRoots() {
            let procs = (try? String(contentsOfFile: "\(root)/strata/\(agentId)/\(taskId)/cgroup.procs", encoding: .utf8)) ?? ""
            pids.formUnion(procs.split(separator: "\n").compactMap { pid_t($0) })
        }
        return pids
    }

    /// Kills every process in the cgroups of an agent's tasks and removes those cgroups and the
    /// agent's parent: what a killed agent that never started again leaves behind.
    func killTaskProcesses(ofAgent agentId: String) {
        let roots = Self.cgroupRoots()
        let tasks = taskCgroups(ofAgent: agentId)
        for root in roots {
            for task in tasks {
                let cgroup = "\(root)/strata/\(agentId)/\(task)"
                // A frozen task would not die until thawed.
                if FileManager.default.fileExists(atPath: cgroup + "/freezer.state") {
                    try? "THAWED".write(toFile: cgroup + "/freezer.state", atomically: false, encoding: .utf8)
                }
            }
        }
        let deadline = Date().addingTimeInterval(10)
        for task in tasks {
            while true {
                let pids = taskProcessIds(ofAgent: agentId, task: task)
                if pids.isEmpty || Date() >= deadline { break }
                for pid in pids { kill(pid, SIGKILL) }
                usleep(50_000)
            }
            for root in roots { rmdir("\(root)/strata/\(agentId)/\(task)") }
        }
        for root in roots { rmdir("\(root)/strata/\(agentId)") }
    }

    // MARK: The master's HTTP API

    /// Calls the master's HTTP API (as `user`, when given) and returns the status and the body
    /// decoded as JSON (nil when it is not JSON).
    func callMaster(_ method: String, _ path: String, user: String? = nil, body: Any? = nil) throws -> (status: Int, json: Any?, text: String) {
        let separator = path.contains("?") ? "&" : "?"
        let target = path + (user.map { "\(separator)user.name=\($0)" } ?? "")
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let (status, reply) = try httpCall(method, port: masterPort, target, body: data)
        return (status, try? JSONSerialization.jsonObject(with: reply), String(decoding: reply, as: UTF8.self))
    }
}

/// Whether a process exists and has not exited (a zombie waiting for its parent has).
func isAlive(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let afterName = stat.range(of: ") ", options: .backwards)
    else { return false }
    return !stat[afterName.upperBound...].hasPrefix("Z")
}

/// One HTTP/1.1 request to 127.0.0.1:`port` on a connection of its own (closed after the
/// answer), each send and receive bounded by `timeoutSeconds`. Returns the status and the body.
func httpCall(
    _ method: String, port: Int, _ path: String, body: Data? = nil, headers: [String: String] = [:], timeoutSeconds: Int = 10
) throws -> (status: Int, body: Data) {
    func failure(_ what: String) -> ProcessClusterError {
        ProcessClusterError(message: "\(method) 127.0.0.1:\(port)\(path): \(what): \(String(cString: strerror(errno)))")
    }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw failure("socket") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw failure("cannot connect") }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body?.count ?? 0)\r\n"
    if body != nil { head += "Content-Type: application/json\r\n" }
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    let request = [UInt8]((head + "\r\n").utf8) + [UInt8](body ?? Data())
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard count > 0 else { throw failure("send") }
        sent += count
    }
    var response = Data()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count == 0 { break }
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { throw failure("no complete answer") }
        response.append(contentsOf: buffer[0..<count])
    }
    guard let end = response.range(of: Data("\r\n\r\n".utf8)) else {
        throw ProcessClusterError(message: "\(method) \(path): not an HTTP answer: \(String(decoding: response, as: UTF8.self))")
    }
    let lines = String(decoding: response[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let statusLine = lines[0].split(separator: " ")
    guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
        throw ProcessClusterError(message: "\(method) \(path): bad status line '\(lines[0])'")
    }
    var payload = Data(response[end.upperBound...])
    if lines.dropFirst().contains(where: { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }) {
        payload = dechunked(payload)
    }
    return (status, payload)
}

/// The body of a chunked HTTP/1.1 answer.
func dechunked(_ data: Data) -> Data {
    let bytes = [UInt8](data)
    var body = Data()
    var position = 0
    while position < bytes.count {
        guard let lineEnd = (position..<(bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else { break }
        let sizeText = String(decoding: bytes[position..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
        guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
        let start = lineEnd + 2
        guard start + size <= bytes.count else { break }
        body.append(contentsOf: bytes[start..<(start + size)])
        position = start + size + 2
    }
    return body
}
