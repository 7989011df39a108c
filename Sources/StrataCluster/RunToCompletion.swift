import StrataCore

/// Runs `body` to its end even when the calling task is cancelled: stopping what a service
/// started (closing sockets, flushing the journal, waiting for background tasks within their
/// bound) must finish whether the service was asked to stop gracefully or was cancelled. The
/// task is awaited, so it does not outlive the caller.
func runToCompletion(_ body: @escaping @Sendable () async -> Void) async {
    await Task { await body() }.value
}

/// The shape of every daemon service's `run()`: `serve` starts the daemon, resolves `ready` and
/// returns at graceful shutdown; `stop` then runs whatever happened. A `ready` still unresolved
/// when `serve` ends (it failed, or shutdown came first) fails, so nobody waits for a service
/// that stopped.
func runDaemon<Value: Sendable>(
    _ name: String, ready: Readiness<Value>, serve: () async throws -> Void, stop: () async -> Void
) async throws {
    do {
        try await serve()
    } catch {
        ready.fail(error)
        await stop()
        throw error
    }
    ready.fail(ClusterServiceError.stoppedBeforeReady(name))
    await stop()
}
