import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import StrataClient
import StrataCore
import StrataHTTP
import StrataNameNode
import StrataWire

/// The name node's HTTP server (HDFS port 9870): WebHDFS namespace operations, the first step of
/// OPEN, CREATE, APPEND and GETFILECHECKSUM (a redirect to a data node's HTTP server), and
/// `/metrics`. Operations run as the calling user through a DFS client of this name node, so
/// they get exactly the RPC callers' permission checks.
public final class NameNodeWebHDFS: Service, Sendable {
    let nameNode: NameNode
    let rpcAddress: String
    let clients: ClientPool
    let metrics = HTTPMetrics()
    let logger: Logger
    private let server: HTTPServer

    private init(nameNode: NameNode, rpcAddress: String, clients: ClientPool, logger: Logger, server: HTTPServer) {
        self.nameNode = nameNode
        self.rpcAddress = rpcAddress
        self.clients = clients
        self.logger = logger
        self.server = server
    }

    public var port: Int { server.port }

    /// The server for `host:port` (0: a free port), serving while `run` runs. Make it after the
    /// name node is serving RPC: its requests go to that port.
    public static func make(
        nameNode: NameNode, host: String, port: Int, group: any EventLoopGroup, logger: Logger
    ) -> NameNodeWebHDFS {
        let rpcHost = nameNode.configuration.host == "0.0.0.0" ? "127.0.0.1" : nameNode.configuration.host
        let rpcPort = nameNode.rpcPort
        let clients = ClientPool { user in
            var configuration = DFSClientConfiguration(user: user)
            configuration.nameNodeHost = rpcHost
            configuration.nameNodePort = rpcPort
            // A web request does not wait out safe mode for long.
            configuration.retryWindowSeconds = 5
            return DFSClient(configuration: configuration, group: group)
        }
        let handler = Handler()
        let server = HTTPServer(host: host, port: port, group: group, logger: logger) { request in
            await handler.webHDFS?.handle(request) ?? .error(RemoteException(.retriable, "starting"))
        }
        let webHDFS = NameNodeWebHDFS(nameNode: nameNode, rpcAddress: "\(rpcHost):\(rpcPort)", clients: clients, logger: logger, server: server)
        handler.set(webHDFS)
        return webHDFS
    }

    /// Waits until the server is serving and returns its bound port; throws if it stopped first.
    public func serving() async throws -> Int {
        try await server.serving()
    }

    /// Serves until graceful shutdown (see `HTTPServer.run`), then closes the DFS clients its
    /// requests used.
    public func run() async throws {
        do {
            try await server.run()
        } catch {
            await clients.closeAll()
            throw error
        }
        await clients.closeAll()
    }

    func metricsText() -> String {
        let statistics = nameNode.statistics
        return metrics.exposition(
            prefix: "strata_namenode_webhdfs",
            samples: [
                .init(name: "strata_namenode_files", help: "Files in the namespace.", value: Double(statistics.files)),
                .init(name: "strata_namenode_directories", help: "Directories in the namespace.", value: Double(statistics.directories)),
                .init(name: "strata_namenode_blocks", help: "Blocks in the namespace.", value: Double(statistics.blocks)),
                .init(
                    name: "strata_namenode_datanodes", help: "Registered data nodes by state.", labels: "state=\"live\"",
                    value: Double(statistics.liveDataNodes)),
                .init(
                    name: "strata_namenode_datanodes", help: "Registered data nodes by state.", labels: "state=\"dead\"",
                    value: Double(statistics.deadDataNodes)),
                .init(name: "strata_namenode_safe_mode", help: "1 while the name node is in safe mode.", value: statistics.inSafeMode ? 1 : 0),
                .init(
                    name: "strata_namenode_journal_transactions_total", help: "Edits submitted to the journal.", type: "counter",
                    value: Double(statistics.lastTransactionId)),
            ])
    }

    func handle(_ request: Request) async -> Response {
        await serve(request, metrics: metrics, metricsText: { self.metricsText() }) { call in
            let (client, isTemporary) = clients.client(for: call.user)
            defer { if isTemporary { Task { await client.close() } } }
            return try await respond(call, client: client)
        }
    }

    func respond(_ call: WebHDFSRequest, client: DFSClient) async throws -> Response {
        let parameters = call.parameters
        let path = call.path
        switch (call.method, call.operation) {
        case (.get, "GETFILESTATUS"):
            guard let status = try await client.status(path) else { throw RemoteException.fileNotFound(path) }
            return .json(.object([("FileStatus", WebHDFSJSON.fileStatus(status, pathSuffix: ""))]))
        case (.get, "LISTSTATUS"):
            var batch = try await client.listBatch(path, startAfter: "", limit: Limits.listingBatchSize)
            if batch.status.kind == .file { return .json(WebHDFSJSON.fileStatuses([batch.status], listedFile: true)) }
            var entries = batch.entries
            while batch.remaining > 0, let last = entries.last {
                batch = try await client.listBatch(path, startAfter: WebHDFSJSON.name(of: last), limit: Limits.listingBatchSize)
                if batch.entries.isEmpty { break }
                entries += batch.entries
            }
            return .json(WebHDFSJSON.fileStatuses(entries, listedFile: false))
        case (.get, "LISTSTATUS_BATCH"):
            let batch = try await client.listBatch(path, startAfter: parameters["startAfter"] ?? "", limit: Limits.listingBatchSize)
            let isFile = batch.status.kind == .file
            let listing = WebHDFSJSON.fileStatuses(isFile ? [batch.status] : batch.entries, listedFile: isFile)
            return .json(
                .object([
                    ("DirectoryListing", .object([("partialListing", listing), ("remainingEntries", .integer(Int64(batch.remaining)))]))
                ]))
        case (.get, "GETCONTENTSUMMARY"):
            return .json(WebHDFSJSON.contentSummary(try await client.contentSummary(path)))
        case (.get, "GETHOMEDIRECTORY"):
            return .json(WebHDFSJSON.path("/user/\(call.user)"))
        case (.get, "GETFILEBLOCKLOCATIONS"):
            let offset = try parameters.integer("offset", minimum: 0) ?? 0
            let length = try parameters.integer("length", minimum: 0)
            let located = try await client.blockLocations(path, offset: UInt64(offset), length: UInt64(length ?? 0))
            return .json(WebHDFSJSON.blockLocations(located))
        case (.get, "GETSERVERDEFAULTS"):
            return .json(WebHDFSJSON.serverDefaults(try await client.serverDefaults()))
        case (.get, "OPEN"):
            let offset = try parameters.integer("offset", minimum: 0) ?? 0
            _ = try parameters.integer("length", minimum: 0)
            _ = try parameters.integer("buffersize", minimum: 1)
            let located = try await client.blockLocations(path, offset: UInt64(offset), length: 1)
            let holders = (located.blocks.first?.locations ?? []) + (located.hasLastBlock ? located.lastBlock.locations : [])
            return try await redirect(call, client: client, preferring: holders)
        case (.get, "GETFILECHECKSUM"):
            let located = try await client.blockLocations(path)
            return try await redirect(call, client: client, preferring: located.blocks.first?.locations ?? [])
        case (.put, "CREATE"):
            _ = try parameters.boolean("overwrite", default: false)
            _ = try parameters.integer("blocksize", minimum: 1)
            _ = try parameters.integer("replication", minimum: 1, maximum: Int64(Int16.max))
            _ = try parameters.permission()
            _ = try parameters.integer("buffersize", minimum: 1)
            return try await redirect(call, client: client, preferring: [])
        case (.post, "APPEND"):
            _ = try parameters.integer("buffersize", minimum: 1)
            let located = try await client.blockLocations(path)
            let last = located.hasLastBlock ? located.lastBlock : located.blocks.last
            return try await redirect(call, client: client, preferring: last?.locations ?? [])
        case (.put, "MKDIRS"):
            let permission = try parameters.permission() ?? 0o755
            try await client.mkdirs(path, permission: permission, createParent: true)
            return .json(WebHDFSJSON.boolean(true))
        case (.put, "RENAME"):
            guard let destination = try parameters.absolutePath("destination") else {
                throw WebHDFSParameters.invalid("destination", "null (a destination path must be given)")
            }
            return .json(WebHDFSJSON.boolean(try await client.renameLegacy(path, to: destination)))
        case (.delete, "DELETE"):
            let recursive = try parameters.boolean("recursive", default: false)
            return .json(WebHDFSJSON.boolean(try await client.delete(path, recursive: recursive)))
        case (.put, "SETREPLICATION"):
            let replication: Int
            if let given = try parameters.integer("replication", minimum: 1, maximum: Int64(Int16.max)) {
                replication = Int(given)
            } else {
                replication = Int(try await client.serverDefaults().replication)
            }
            return .json(WebHDFSJSON.boolean(try await client.setReplication(path, replication: replication)))
        case (.put, "SETPERMISSION"):
            let permission: UInt16
            if let given = try parameters.permission() {
                permission = given
            } else {
                guard let status = try await client.status(path) else { throw RemoteException.fileNotFound(path) }
                permission = status.kind == .directory ? 0o755 : 0o644
            }
            try await client.setPermission(path, permission: permission)
            return .empty()
        case (.put, "SETOWNER"):
            let owner = parameters["owner"] ?? ""
            let group = parameters["group"] ?? ""
            guard !owner.isEmpty || !group.isEmpty else { throw RemoteException.illegalArgument("Both owner and group are empty.") }
            try await client.setOwner(path, owner: owner, group: group)
            return .empty()
        case (.put, "SETTIMES"):
            let modification = try parameters.integer("modificationtime", minimum: -1) ?? -1
            let access = try parameters.integer("accesstime", minimum: -1) ?? -1
            try await client.setTimes(path, modificationTimeMs: modification, accessTimeMs: access)
            return .empty()
        case (.post, "CONCAT"):
            guard let list = parameters["sources"], !list.isEmpty else {
                throw WebHDFSParameters.invalid("sources", "null (a comma-separated list of source paths must be given)")
            }
            let sources = list.split(separator: ",").map { String($0) }
            if let relative = sources.first(where: { !$0.hasPrefix("/") }) {
                throw WebHDFSParameters.invalid("sources", "Invalid path \"\(relative)\": the path must be absolute")
            }
            try await client.concat(path, sources: sources)
            return .empty()
        case (.post, "TRUNCATE"):
            guard let newLength = try parameters.integer("newlength", minimum: 0) else {
                throw WebHDFSParameters.invalid("newlength", "null (the new length must be given)")
            }
            return .json(WebHDFSJSON.boolean(try await client.truncate(path, newLength: UInt64(newLength))))
        default:
            throw call.unsupported(on: "name node")
        }
    }

    /// The second step's URL on a data node: one of `preferring` that serves HTTP (a holder of
    /// the data), else any live node. `noredirect=true` gives it as JSON instead of a 307.
    func redirect(_ call: WebHDFSRequest, client: DFSClient, preferring: [Strata_Wire_DatanodeInfo]) async throws -> Response {
        var node = preferring.first { $0.httpPort != 0 }
        if node == nil {
            let live = try await client.datanodeReport().filter { $0.state == "live" && $0.httpPort != 0 }
            node = live.randomElement()
        }
        guard let node else {
            throw RemoteException.io("Failed to find datanode, suggest to check cluster health. No live data node serves HTTP.")
        }
        var query = call.parameters.rawQuery
        if call.parameters["namenoderpcaddress"] == nil {
            query += (query.isEmpty ? "" : "&") + "namenoderpcaddress=\(rpcAddress)"
        }
        let host = node.ipAddress.isEmpty ? node.hostname : node.ipAddress
        let location = "http://\(host):\(node.httpPort)\(WebHDFSRequest.prefix)\(call.encodedPath)?\(query)"
        if try call.parameters.boolean("noredirect", default: false) {
            return .json(WebHDFSJSON.location(location))
        }
        return .empty(status: .temporaryRedirect, headers: [.location: location])
    }
}

/// Lets the server's handler reach the object built after the server started.
final class Handler: Sendable {
    private let slot = Mutex<NameNodeWebHDFS?>(nil)
    var webHDFS: NameNodeWebHDFS? { slot.withLock { $0 } }
    func set(_ value: NameNodeWebHDFS) { slot.withLock { $0 = value } }
}

import Synchronization
