import Foundation
import Logging
import ServiceLifecycle
import StrataClient
import StrataCluster
import StrataTestKit
import StrataCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The local cluster as a service in a service group, on loopback with ports the system picks:
/// it serves once ready, stops everything it started on graceful shutdown, and keeps its data.
@Suite(.serialized) struct LocalClusterServiceTests {
    @Test func servesUntilGracefulShutdownThenClosesEveryPortAndKeepsItsData() async throws {
        let directory = NSTemporaryDirectory() + "strata-cluster-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }

        // The cluster's listening sockets, by inode: after shutdown none may be open in this
        // process. (Whether their ports still accept connections says nothing: another test
        // running meanwhile may have been given the same free port.)
        let sockets = try await withClusterRunning(directory: directory) { cluster in
            let ports = listeningPorts(of: cluster)
            #expect(ports.count == 2 + 2 * 3)
            #expect(!ports.contains(0))
            for port in ports { #expect(acceptsConnections(port: port), "port \(port) while serving") }
            let sockets = listeningSocketInodes(ports: Set(ports))
            #expect(sockets.count >= ports.count, "listening sockets of \(ports): \(sockets)")
            try await withClient(of: cluster) { client in
                let stream = try await client.create("/service/data.bin")
                try await stream.write(data)
                try await stream.close()
                #expect(try await client.readAll("/service/data.bin") == data)
            }
            return sockets
        }
        // `run()` returned: nothing the cluster started still listens.
        let open = openSocketInodes()
        #expect(sockets.isDisjoint(with: open), "listening sockets still open after shutdown: \(sockets.intersection(open))")

        // Started again on the same directory, it has the file.
        try await withClusterRunning(directory: directory) { cluster in
            try await withClient(of: cluster) { client in
                let readBack = try await client.readAll("/service/data.bin")
                #expect(readBack == data, "the file after a restart")
            }
        }
    }

    /// Shut down while it is still starting, the cluster stops cleanly: `run()` returns without
    /// an error and a task waiting for it to be ready is told it never will be.
    @Test func gracefulShutdownWhileStartingEndsRunAndFailsReadiness() async throws {
        let directory = NSTemporaryDirectory() + "strata-cluster-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = LocalClusterService(directory: directory)
        let group = ServiceGroup(configuration: .init(services: [cluster], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await #expect(throws: (any Error).self) { _ = try await cluster.ready.wait() }
    }
}

/// Runs a `LocalClusterService` in a service group, waits until it is ready, runs `body`, then
/// shuts the group down gracefully and waits until `run()` has returned.
@discardableResult
func withClusterRunning<Result: Sendable>(
    directory: String, _ body: (LocalClusterService.Running) async throws -> Result
) async throws -> Result {
    let cluster = LocalClusterService(directory: directory)
    let group = ServiceGroup(configuration: .init(services: [cluster], logger: Logger(label: "test")))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: Result
        do {
            result = try await body(try await cluster.ready.wait())
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        // The group returns once the cluster's `run()` has, without an error.
        try await tasks.waitForAll()
        return result
    }
}

func withClient<Result>(of cluster: LocalClusterService.Running, _ body: (DFSClient) async throws -> Result) async throws -> Result {
    var configuration = DFSClientConfiguration(user: "strata")
    configuration.nameNodePort = cluster.nameNodePort
    return try await using(DFSClient(configuration: configuration, group: cluster.group), body)
}

/// The name node's RPC and HTTP ports, and each data node's transfer and HTTP ports.
func listeningPorts(of cluster: LocalClusterService.Running) -> [Int] {
    [cluster.nameNodePort, cluster.nameNodeHTTPPort] + cluster.dataNodes.map(\.transferPort) + cluster.dataNodeHTTP.map(\.port)
}

/// Whether something accepts a TCP connection on 127.0.0.1:`port`.
func acceptsConnections(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// The inodes of the sockets listening on `ports` (from /proc/net/tcp and tcp6, state 0A).
func listeningSocketInodes(ports: Set<Int>) -> Set<String> {
    var inodes: Set<String> = []
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // Read to the end: procfs files have no size, and a reader that trusts one stops early.
        guard let handle = FileHandle(forReadingAtPath: table), let data = try? handle.readToEnd() else { continue }
        try? handle.close()
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 9, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
                  let port = Int(fields[1][fields[1].index(after: colon)...], radix: 16), ports.contains(port)
            else { continue }
            inodes.insert(String(fields[9]))
        }
    }
    return inodes
}

/// The inodes of every socket this process has open.
func openSocketInodes() -> Set<String> {
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    var inodes: Set<String> = []
    for descriptor in descriptors {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)"),
              target.hasPrefix("socket:[")
        else { continue }
        inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
    }
    return inodes
}
