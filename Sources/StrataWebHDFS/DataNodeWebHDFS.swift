import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import StrataClient
import StrataCore
import StrataHTTP
import StrataDataNode
import StrataWire
import Synchronization

/// A data node's HTTP server (HDFS port 9864): the second step of WebHDFS OPEN, CREATE and
/// APPEND, GETFILECHECKSUM, and `/metrics`. The node acts as a DFS client of its name node with
/// itself as the local node, so a CREATE's first replica lands here and OPEN prefers the
/// replicas here. Bodies stream both ways: an upload goes into the output stream as it arrives
/// (its pipeline's acknowledgement window holds the reader back), a download is written as the
/// blocks are read (the connection's write backpressure holds the reader back).
public final class DataNodeWebHDFS: Service, Sendable {
    let dataNode: DataNode
    let clients: ClientPool
    let metrics = HTTPMetrics()
    let nameNodeHTTPPort: Int
    let logger: Logger
    private let server = Mutex<HTTPServer?>(nil)

    private init(dataNode: DataNode, clients: ClientPool, nameNodeHTTPPort: Int, logger: Logger) {
        self.dataNode = dataNode
        self.clients = clients
        self.nameNodeHTTPPort = nameNodeHTTPPort
        self.logger = logger
    }

    public var port: Int { server.withLock { $0?.port ?? 0 } }

    /// The server, set by `make` right after this object is built (its handler calls this object).
    private var httpServer: HTTPServer {
        guard let server = server.withLock({ $0 }) else { preconditionFailure("DataNodeWebHDFS is made by make(...)") }
        return server
    }

    /// The server for `host:port` (0: a free port), serving while `run` runs. `nameNodeHTTPPort`
    /// goes into the `webhdfs://` URL a CREATE answers with.
    public static func make(
        dataNode: DataNode, host: String, port: Int, nameNodeHTTPPort: Int, group: any EventLoopGroup, logger: Logger
    ) -> DataNodeWebHDFS {
        let nodeId = dataNode.nodeId
        let nameNodeHost = dataNode.configuration.nameNodeHost
        let nameNodePort = dataNode.configuration.nameNodePort
        let clients = ClientPool { user in
            var configuration = DFSClientConfiguration(user: user)
            configuration.nameNodeHost = nameNodeHost
            configuration.nameNodePort = nameNodePort
            configuration.localNodeId = nodeId
            return DFSClient(configuration: configuration, group: group)
        }
        let webHDFS = DataNodeWebHDFS(dataNode: dataNode, clients: clients, nameNodeHTTPPort: nameNodeHTTPPort, logger: logger)
        let server = HTTPServer(host: host, port: port, group: group, logger: logger, acceptsUploads: true) { request in
            await webHDFS.handle(request)
        }
        webHDFS.server.withLock { $0 = server }
        return webHDFS
    }

    /// Waits until the server is serving, records its bound port in `dataNode` (which registers
    /// it with the name node: wait for this before starting the node) and returns it; throws if
    /// the server stopped first.
    public func serving() async throws -> Int {
        let port = try await httpServer.serving()
        dataNode.httpPort = port
        return port
    }

    /// Serves until graceful shutdown (see `HTTPServer.run`), then closes the DFS clients its
    /// requests used.
    public func run() async throws {
        do {
            try await httpServer.run()
        } catch {
            await clients.closeAll()
            throw error
        }
        await clients.closeAll()
    }

    func metricsText() -> String {
        let usage = dataNode.store.usage()
        return metrics.exposition(
            prefix: "strata_datanode_webhdfs",
            samples: [
                .init(name: "strata_datanode_blocks", help: "Replicas stored on this node.", value: Double(dataNode.store.count)),
                .init(name: "strata_datanode_capacity_bytes", help: "Capacity of the node's volume.", value: Double(usage.capacity)),
                .init(name: "strata_datanode_used_bytes", help: "Bytes the node's replicas take.", value: Double(usage.used)),
                .init(name: "strata_datanode_remaining_bytes", help: "Free bytes on the node's volume.", value: Double(usage.remaining)),
                .init(
                    name: "strata_datanode_scanner_bytes_total", help: "Stored bytes the block scanner has verified.",
                    value: Double(dataNode.scanner.bytesScanned)),
                .init(
                    name: "strata_datanode_scanner_replicas_total", help: "Replicas the block scanner has verified.",
                    value: Double(dataNode.scanner.replicasScanned)),
                .init(
                    name: "strata_datanode_scanner_corrupt_replicas_total", help: "Damaged replicas the block scanner has found.",
                    value: Double(dataNode.scanner.corruptReplicasFound)),
            ])
    }

    func handle(_ request: Request) async -> Response {
        await serve(request, metrics: metrics, metricsText: { self.metricsText() }) { call in
            let (client, isTemporary) = clients.client(for: call.user)
            switch (call.method, call.operation) {
            case (.get, "OPEN"):
                // The body is written after this returns: a temporary client is closed by it.
                return try await open(call, client: client, closeClient: isTemporary)
            default:
                defer { if isTemporary { Task { await client.close() } } }
                switch (call.method, call.operation) {
                case (.put, "CREATE"): return try await create(call, body: request.body, client: client)
                case (.post, "APPEND"): return try await append(call, body: request.body, client: client)
                case (.get, "GETFILECHECKSUM"):
                    let (checksum, bytes) = try await FileChecksum.compute(path: call.path, client: client)
                    metrics.addBytesRead(Int(bytes))
                    return .json(WebHDFSJSON.fileChecksum(checksum))
                default:
                    throw call.unsupported(on: "data node")
                }
            }
        }
    }

    func open(_ call: WebHDFSRequest, client: DFSClient, closeClient: Bool) async throws -> Response {
        let offset = UInt64(try call.parameters.integer("offset", minimum: 0) ?? 0)
        let length = try call.parameters.integer("length", minimum: 0).map { UInt64($0) }
        _ = try call.parameters.integer("buffersize", minimum: 1)
        // Errors (missing file, no permission, offset past the end) must come before the 200.
        let located = try await client.blockLocations(call.path, offset: offset, length: 1)
        if !located.hasLastBlock && offset > located.fileLength {
            throw RemoteException(.eof, "Offset=\(offset) out of the range [0, \(located.fileLength)); OPEN, path=\(call.path)")
        }
        // A file being written has no length known up front: its body goes out chunked.
        let contentLength: Int? = located.hasLastBlock ? nil : Int(min(length ?? .max, located.fileLength - offset))
        let path = call.path
        let metrics = self.metrics
        let logger = self.logger
        var headers: HTTPFields = [.contentType: "application/octet-stream"]
        if let contentLength { headers[.contentLength] = "\(contentLength)" }
        let body = ResponseBody(contentLength: contentLength) { writer in
            do {
                if contentLength != 0 {
                    // Each packet (about a megabyte) is decoded into one buffer that goes to the
                    // connection as it is; the next packets decode while it is sent.
                    try await client.readBuffers(path, offset: offset, length: contentLength.map { UInt64($0) } ?? length) { buffer in
                        metrics.addBytesRead(buffer.readableBytes)
                        try await writer.write(buffer)
                    }
                }
                try await writer.finish(nil)
            } catch {
                // The 200 is out: all a client can be told is that the connection ends early.
                logger.warning("WebHDFS OPEN stopped mid-body", metadata: ["path": "\(path)", "error": "\(error)"])
                if closeClient { await client.close() }
                throw error
            }
            if closeClient { await client.close() }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    func create(_ call: WebHDFSRequest, body: RequestBody, client: DFSClient) async throws -> Response {
        let parameters = call.parameters
        let overwrite = try parameters.boolean("overwrite", default: false)
        let blockSize = try parameters.integer("blocksize", minimum: 1).map { UInt64($0) }
        let replication = try parameters.integer("replication", minimum: 1, maximum: Int64(Int16.max)).map { Int($0) }
        let permission = try parameters.permission() ?? 0o644
        _ = try parameters.integer("buffersize", minimum: 1)
        let stream = try await client.create(
            call.path, overwrite: overwrite, replication: replication, blockSize: blockSize, permission: permission, createParent: true)
        do {
            try await copy(body, into: stream)
            try await stream.close()
        } catch {
            // A body cut short leaves no half-written file behind.
            _ = try? await client.delete(stream.path, recursive: false)
            throw error
        }
        let nameNodeHost = parameters["namenoderpcaddress"].flatMap { $0.split(separator: ":").first.map(String.init) }
            ?? dataNode.configuration.nameNodeHost
        return .empty(status: .created, headers: [.location: "webhdfs://\(nameNodeHost):\(nameNodeHTTPPort)\(call.encodedPath)"])
    }

    func append(_ call: WebHDFSRequest, body: RequestBody, client: DFSClient) async throws -> Response {
        _ = try call.parameters.integer("buffersize", minimum: 1)
        let stream = try await client.append(call.path)
        do {
            try await copy(body, into: stream)
        } catch {
            // Keep what arrived (as HDFS's lease recovery would), and report the failure.
            try? await stream.close()
            throw error
        }
        try await stream.close()
        return .empty()
    }

    func copy(_ body: RequestBody, into stream: DFSOutputStream) async throws {
        // Each piece of the body (up to a megabyte) goes straight into the packet being gathered.
        for try await buffer in body {
            try await stream.write(buffer)
            metrics.addBytesWritten(buffer.readableBytes)
        }
    }
}
