/// Runs `body` to its end even when the calling task is cancelled: stopping what a service
/// started (closing sockets, flushing the journal, waiting for background tasks within their
/// bound) must finish whether the service was asked to stop gracefully or was cancelled. The
/// task is awaited, so it does not outlive the caller.
func runToCompletion(_ body: @escaping @Sendable () async -> Void) async {
    await Task { await body() }.value
}
