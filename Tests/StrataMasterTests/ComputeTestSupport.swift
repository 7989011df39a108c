import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StrataClient
import StrataCompute
import StrataTestKit
import Testing

/// A local cluster with a master and an agent beside each of its data nodes, on loopback.
func withComputeCluster<Result>(
    _ configure: (inout LocalCluster.Options) -> Void = { _ in },
    _ body: (LocalCluster) async throws -> Result
) async throws -> Result {
    try await LocalCluster.withTemporary(prefix: "strata-compute-", { options in
        options.compute = true
        options.agentResources = Resources(cpus: 4, memMB: 4096)
        options.agentHeartbeatIntervalMs = 200
        configure(&options)
    }, body)
}

/// The user tasks run as in tests: the agent (root) refuses root tasks, and `nobody` exists on
/// every Debian host.
let taskUser = "nobody"

/// Calls the master's HTTP API as `user`; returns the status and the body.
func callMaster(
    _ cluster: LocalCluster, _ method: HTTPMethod, _ path: String, user: String? = taskUser, body: String? = nil,
    token: String? = nil
) async throws -> (status: Int, body: String) {
    let separator = path.contains("?") ? "&" : "?"
    let url = "http://127.0.0.1:\(cluster.masterPort!)\(path)" + (user.map { "\(separator)user.name=\($0)" } ?? "")
    var request = HTTPClientRequest(url: url)
    request.method = method
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let bytes = try await response.body.collect(upTo: 16 << 20)
    return (Int(response.status.code), String(buffer: bytes))
}

func submit(_ cluster: LocalCluster, _ submission: ComputeAPI.JobSubmission, user: String = taskUser) async throws -> ComputeAPI.JobView {
    let body = String(decoding: try JSONEncoder().encode(submission), as: UTF8.self)
    let (status, text) = try await callMaster(cluster, .POST, "/api/v1/jobs", user: user, body: body)
    guard status == 201 else { throw CLIFailure(message: "submit answered \(status): \(text)") }
    return try JSONDecoder().decode(ComputeAPI.JobView.self, from: Data(text.utf8))
}

struct CLIFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Synthetic web-server logs from make-logs.py (the same generator the benchmarks use).
func makeLogs(mebibytes: Int, seed: Int) throws -> [UInt8] {
    let path = NSTemporaryDirectory() + "strata-logs-\(UUID().uuidString).log"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", root.path + "/tools/make-logs.py", path, String(mebibytes), String(seed)]
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw CLIFailure(message: "make-logs.py failed") }
    return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Writes `bytes` to a new DFS file with the given block size.
func put(_ client: DFSClient, _ path: String, _ bytes: [UInt8], blockSize: UInt64) async throws {
    let stream = try await client.create(path, blockSize: blockSize)
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + (1 << 20))
        try await stream.write(Array(bytes[offset..<end]))
        offset = end
    }
    try await stream.close()
}

/// Lines of `bytes` containing `word`, as `grep -c` counts them.
func countLines(_ bytes: [UInt8], containing word: String) -> Int {
    let needle = Array(word.utf8)
    var count = 0
    var lineStart = 0
    for index in bytes.indices where bytes[index] == UInt8(ascii: "\n") || index == bytes.count - 1 {
        let line = bytes[lineStart...index]
        if line.count >= needle.count, line.indices.dropLast(needle.count - 1).contains(where: { start in
            bytes[start..<(start + needle.count)].elementsEqual(needle)
        }) { count += 1 }
        lineStart = index + 1
    }
    return count
}

/// A home for the task user, as HDFS gives each user /user/NAME.
func makeHome(_ cluster: LocalCluster) async throws -> String {
    let admin = cluster.client()
    defer { Task { await admin.close() } }
    try await admin.mkdirs("/user/\(taskUser)")
    try await admin.setOwner("/user/\(taskUser)", owner: taskUser, group: taskUser)
    return "/user/\(taskUser)"
}

/// The task user's home and a 100-line input file in it, every seventh line an ERROR.
func prepare(_ cluster: LocalCluster, lines: Int = 100) async throws -> (home: String, input: [UInt8]) {
    let home = try await makeHome(cluster)
    let client = cluster.client(user: taskUser)
    defer { Task { await client.close() } }
    let input = Array((0..<lines).map { "line \($0)\($0 % 7 == 0 ? " ERROR" : "")\n" }.joined().utf8)
    try await put(client, "\(home)/in.txt", input, blockSize: 1 << 20)
    return (home, input)
}
