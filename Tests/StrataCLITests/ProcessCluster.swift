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

/// A name node and data nodes as separate `strata` processes on loopback.
final class ProcessCluster {
    let directory: String
    let nameNodePort: Int
    var nameNode: Process?
    var dataNodes: [Process] = []
    let superuser = "tester"

    init(dataNodes count: Int = 3) throws {
        directory = NSTemporaryDirectory() + "strata-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        nameNodePort = freePort()
        try startNameNode()
        for index in 1...count {
            dataNodes.append(
                try launch([
                    "datanode", "--dir", directory + "/node\(index)", "--port", "0", "--http-port", "0", "--namenode", "127.0.0.1:\(nameNodePort)",
                    "--heartbeat-interval", "0.3",
                ], log: "node\(index).log"))
        }
    }

    deinit {
        for process in dataNodes + [nameNode].compactMap({ $0 }) where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    var environment: [String: String] { ["STRATA_NAMENODE": "127.0.0.1:\(nameNodePort)", "STRATA_USER": superuser] }

    func startNameNode() throws {
        nameNode = try launch(
            ["namenode", "--dir", directory + "/namenode", "--port", "\(nameNodePort)", "--http-port", "0", "--superuser", superuser],
            log: "namenode.log")
    }

    /// SIGKILL: no chance to flush or clean up.
    func killNameNode() {
        guard let nameNode else { return }
        kill(nameNode.processIdentifier, SIGKILL)
        nameNode.waitUntilExit()
        self.nameNode = nil
    }

    func launch(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: strataExecutable)
        process.arguments = arguments
        let logPath = directory + "/" + log
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// Runs a `strata` client command against this cluster as the superuser.
    @discardableResult
    func run(_ arguments: [String], input: Data? = nil, user: String? = nil) throws -> CommandResult {
        var environment = self.environment
        if let user { environment["STRATA_USER"] = user }
        return try strata(arguments, environment: environment, input: input)
    }

    /// Waits until the name node answers, every data node is live and safe mode is off.
    func waitUntilReady(dataNodes count: Int = 3, timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let report = try? run(["dfsadmin", "report", "--json"]), report.status == 0,
                report.output.components(separatedBy: "\"live\"").count - 1 >= count,
                let safe = try? run(["dfsadmin", "safemode", "get"]), safe.output.contains("OFF")
            {
                return
            }
            usleep(100_000)
        }
        let log = (try? String(contentsOfFile: directory + "/namenode.log", encoding: .utf8)) ?? ""
        throw ProcessClusterError(message: "cluster not ready within \(timeout) s; name node log:\n\(log.suffix(2000))")
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
