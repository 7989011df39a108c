import Logging
import NIOCore
import ServiceLifecycle
import StrataCore
import StrataHTTP
import StrataLauncher

/// The service launcher as a service: replays its state from the DFS, serves Marathon's API,
/// and runs its loops (log, master watch, health checks, tick) until graceful shutdown; then
/// stops its clients.
public final class LauncherService: Service, Sendable {
    public let launcher: Launcher
    let group: any EventLoopGroup
    let logger: Logger
    /// The HTTP port, once the launcher serves (after its state is recovered).
    public let ready = Readiness<Int>()

    public init(launcher: Launcher, group: any EventLoopGroup, logger: Logger) {
        self.launcher = launcher
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        let launcher = self.launcher
        try await runDaemon("the launcher", ready: ready) {
            try await launcher.recover()
            let server = HTTPServer(
                host: launcher.configuration.host, port: launcher.configuration.port, group: group, logger: logger
            ) { request in await launcher.respond(to: request) }
            try await serveWithLoops(server: server, ready: ready, name: "launcher") { port in
                launcher.servingPort.withLock { $0 = port }
                await launcher.run()
            }
        } stop: {
            await runToCompletion { await launcher.shutdown() }
        }
    }
}
