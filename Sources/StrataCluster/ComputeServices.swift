import Logging
import NIOCore
import ServiceLifecycle
import StrataAgent
import StrataCore
import StrataHTTP
import StrataMaster

/// The master as a service: replays its state from the DFS, serves its HTTP API, and runs its
/// placement, log and liveness loops until graceful shutdown; then stops its clients.
public final class MasterService: Service, Sendable {
    public let master: Master
    let group: any EventLoopGroup
    let logger: Logger
    /// The HTTP port, once the master serves (after its state is recovered).
    public let ready = Readiness<Int>()

    public init(master: Master, group: any EventLoopGroup, logger: Logger) {
        self.master = master
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        let master = self.master
        try await runDaemon("the master", ready: ready) {
            try await master.recover()
            let server = HTTPServer(
                host: master.configuration.host, port: master.configuration.port, group: group, logger: logger
            ) { request in await master.respond(to: request) }
            try await serveWithLoops(server: server, ready: ready, name: "master") { _ in await master.run() }
        } stop: {
            await runToCompletion { await master.shutdown() }
        }
    }
}

/// An agent as a service: kills what an earlier run left, serves its HTTP API, registers and
/// heartbeats until graceful shutdown; then kills its tasks and waits for them.
public final class AgentService: Service, Sendable {
    public let agent: Agent
    let group: any EventLoopGroup
    let logger: Logger
    public let ready = Readiness<Int>()

    public init(agent: Agent, group: any EventLoopGroup, logger: Logger) {
        self.agent = agent
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        let agent = self.agent
        try await runDaemon("the agent", ready: ready) {
            await agent.killLeftovers()
            let server = HTTPServer(
                host: agent.configuration.host, port: agent.configuration.port, group: group, logger: logger, acceptsUploads: true
            ) { request in await agent.respond(to: request) }
            try await serveWithLoops(server: server, ready: ready, name: "agent") { port in
                await agent.run(address: "\(agent.configuration.host):\(port)")
            }
        } stop: {
            await runToCompletion { await agent.shutdown() }
        }
    }
}

/// Runs `server` and, once it serves, `loops` if any (until cancelled); resolves `ready` with
/// the port. The server stops at graceful shutdown; the loops are cancelled then.
func serveWithLoops(
    server: HTTPServer, ready: Readiness<Int>, name: String, loops: (@Sendable (Int) async -> Void)? = nil
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await server.run() }
        guard let port = try? await server.serving() else {
            try await tasks.waitForAll()
            return
        }
        if let loops { tasks.addTask { await loops(port) } }
        ready.resolve(port)
        // The server ends first (graceful shutdown, or an error); the loops go with it.
        try await tasks.next()
        tasks.cancelAll()
        try await tasks.waitForAll()
    }
}
