import Synchronization

/// A value a service reports once, when it starts serving (its bound ports, the objects it
/// runs), and that others wait for instead of polling: a data node waits for its name node's
/// ports, `strata cluster up` for the whole cluster before it prints where it listens, an HTTP
/// server's owner for the port it bound.
///
/// The first of `resolve` and `fail` wins; later calls are ignored. A service fails its value
/// when its `run()` ends before it was ready, so a waiter never waits for a service that stopped.
public final class Readiness<Value: Sendable>: Sendable {
    private struct Storage {
        var outcome: Result<Value, any Error>?
        var waiters: [UInt64: CheckedContinuation<Value, any Error>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let storage = Mutex(Storage())

    public init() {}

    /// Waits until the value is ready and returns it. Throws the service's error if it stopped
    /// first, or `CancellationError` if the waiting task is cancelled.
    public func wait() async throws -> Value {
        let waiter = storage.withLock { storage in
            defer { storage.nextWaiter += 1 }
            return storage.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let outcome: Result<Value, any Error>? = storage.withLock { storage in
                    if let outcome = storage.outcome { return outcome }
                    // Checked under the lock that `onCancel` takes, so a cancellation is either
                    // seen here or finds the continuation stored.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    storage.waiters[waiter] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let continuation = storage.withLock { $0.waiters.removeValue(forKey: waiter) }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// The value, once ready (nil before, or if the service failed).
    public var value: Value? {
        storage.withLock { try? $0.outcome?.get() }
    }

    public func resolve(_ value: Value) {
        finish(.success(value))
    }

    public func fail(_ error: any Error) {
        finish(.failure(error))
    }

    private func finish(_ outcome: Result<Value, any Error>) {
        let waiters = storage.withLock { storage -> [CheckedContinuation<Value, any Error>] in
            guard storage.outcome == nil else { return [] }
            storage.outcome = outcome
            defer { storage.waiters = [:] }
            return Array(storage.waiters.values)
        }
        for waiter in waiters { waiter.resume(with: outcome) }
    }
}
