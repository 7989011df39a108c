import Logging
import ServiceLifecycle
import StrataCore

/// A service run on its own beside a test cluster (a launcher, a cron service), in a service
/// group of its own, so that a test can stop it and start another on the same DFS: a daemon
/// restarted.
public final class StandaloneService<Wrapped: Service & Sendable>: Sendable {
    public let service: Wrapped
    /// The port it serves on.
    public let port: Int
    private let services: ServiceGroup
    private let running: Task<Void, any Error>

    /// Starts `service` and waits until `ready` gives its port.
    public static func start(_ service: Wrapped, ready: Readiness<Int>, logger: Logger) async throws -> StandaloneService {
        let services = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let running = Task { try await services.run() }
        let port = try await ready.wait()
        return StandaloneService(service: service, port: port, services: services, running: running)
    }

    private init(service: Wrapped, port: Int, services: ServiceGroup, running: Task<Void, any Error>) {
        self.service = service
        self.port = port
        self.services = services
        self.running = running
    }

    /// Shuts it down gracefully and waits until it has stopped.
    public func stop() async {
        await services.triggerGracefulShutdown()
        _ = try? await running.value
    }
}
