import Logging
import NIOCore
import ServiceLifecycle
import StrataCore
import StrataHTTP
import StrataCronService

/// The cron service as a service: replays its state from the DFS, serves Chronos' API,
/// and runs its loops (log, recovery, master watch, tick) until graceful shutdown; then
/// stops its clients.
public final class CronService: Service, Sendable {
    public let scheduler: CronScheduler
    let group: any EventLoopGroup
    let logger: Logger
    /// The HTTP port, once the cron service serves (after its state is recovered).
    public let ready = Readiness<Int>()

    public init(scheduler: CronScheduler, group: any EventLoopGroup, logger: Logger) {
        self.scheduler = scheduler
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        let scheduler = self.scheduler
        try await runDaemon("the cron service", ready: ready) {
            try await scheduler.recover()
            let server = HTTPServer(
                host: scheduler.configuration.host, port: scheduler.configuration.port, group: group, logger: logger
            ) { request in await scheduler.respond(to: request) }
            try await serveWithLoops(server: server, ready: ready, name: "cron") { port in
                scheduler.servingPort.withLock { $0 = port }
                await scheduler.run()
            }
        } stop: {
            await runToCompletion { await scheduler.shutdown() }
        }
    }
}
