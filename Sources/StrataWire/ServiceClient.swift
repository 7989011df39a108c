import NIOCore
import Synchronization
import SwiftProtobuf

/// A connection to one RPC service that reconnects when the connection is lost: the next call
/// after a failure opens a new one. Calls issued concurrently share the connection.
public final class ServiceClient: Sendable {
    public let host: String
    public let port: Int
    private let group: any EventLoopGroup
    private let connection = Mutex<Task<RPCConnection, any Error>?>(nil)

    public init(host: String, port: Int, group: any EventLoopGroup) {
        self.host = host
        self.port = port
        self.group = group
    }

    public var address: String { "\(host):\(port)" }

    func current() async throws -> RPCConnection {
        let task = connection.withLock { slot -> Task<RPCConnection, any Error> in
            if let existing = slot { return existing }
            let (host, port, group) = (self.host, self.port, self.group)
            let task = Task { try await RPCConnection.connect(host: host, port: port, group: group) }
            slot = task
            return task
        }
        do {
            let connection = try await task.value
            if connection.isActive { return connection }
            forget(task)
            return try await current()
        } catch {
            forget(task)
            throw error
        }
    }

    private func forget(_ task: Task<RPCConnection, any Error>) {
        connection.withLock { slot in
            if slot == task { slot = nil }
        }
    }

    /// Calls `method`. A lost connection fails the calls that were on it (`RPCConnectionError`);
    /// the next call connects again.
    public func call<Response: SwiftProtobuf.Message>(
        _ method: NameNodeMethod, _ request: some SwiftProtobuf.Message, user: String, clientName: String = "",
        as responseType: Response.Type = Response.self, timeout: TimeAmount = .seconds(120)
    ) async throws -> Response {
        try await current().call(method, request, user: user, clientName: clientName, as: responseType, timeout: timeout)
    }

    public func close() async {
        let task = connection.withLock { slot -> Task<RPCConnection, any Error>? in
            defer { slot = nil }
            return slot
        }
        if let connection = try? await task?.value { await connection.close() }
    }
}
