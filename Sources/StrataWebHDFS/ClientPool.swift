import NIOCore
import StrataClient
import Synchronization

/// DFS clients of one HTTP server, one per calling user (WebHDFS `user.name`), kept for reuse:
/// each holds a connection to the name node. At most `maximumClients` are kept; callers beyond
/// that get a client of their own, closed when they are done.
final class ClientPool: Sendable {
    static let maximumClients = 256

    private let clients = Mutex<[String: DFSClient]>([:])
    private let makeClient: @Sendable (String) -> DFSClient

    init(makeClient: @escaping @Sendable (String) -> DFSClient) {
        self.makeClient = makeClient
    }

    /// A client for `user`, and whether the caller must close it.
    func client(for user: String) -> (client: DFSClient, isTemporary: Bool) {
        let pooled = clients.withLock { clients -> DFSClient? in
            if let existing = clients[user] { return existing }
            guard clients.count < Self.maximumClients else { return nil }
            let client = makeClient(user)
            clients[user] = client
            return client
        }
        if let pooled { return (pooled, false) }
        return (makeClient(user), true)
    }

    func closeAll() async {
        let all = clients.withLock { clients in
            defer { clients = [:] }
            return Array(clients.values)
        }
        for client in all { await client.close() }
    }
}
