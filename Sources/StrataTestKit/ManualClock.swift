import StrataCore
import Synchronization

/// A clock that moves only when a test moves it, so tests of timeouts, leases and schedules run
/// without sleeping and never depend on how busy the machine is.
///
/// `advance(by:)` moves both time lines together (time passing) and wakes every sleeper whose
/// deadline it reaches; `stepWallClock(by:)` moves only the wall clock, as NTP or a resumed VM
/// would, and wakes no one.
public final class ManualClock: Clock {
    private struct Sleeper {
        var id: UInt64
        var deadline: MonotonicInstant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: MonotonicInstant
        var wallTimeMs: Int64
        var sleepers: [Sleeper] = []
        var nextSleeperId: UInt64 = 0
    }

    private let state: Mutex<State>

    /// Starts at `now` on the monotonic line and at `wallTimeMs` on the wall clock (by default a
    /// fixed date, 2026-01-01T00:00:00Z, so tests print stable times).
    public init(now: MonotonicInstant = .milliseconds(1_000_000), wallTimeMs: Int64 = 1_767_225_600_000) {
        state = Mutex(State(now: now, wallTimeMs: wallTimeMs))
    }

    public var now: MonotonicInstant { state.withLock { $0.now } }

    public var wallTimeMs: Int64 { state.withLock { $0.wallTimeMs } }

    /// Tasks suspended in `sleep` right now (a test can wait for a service to reach its sleep
    /// before advancing).
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Lets `duration` pass: both time lines move, and sleepers due by then resume.
    public func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now + duration
            state.wallTimeMs += Int64(duration.components.seconds) * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
            let due = state.sleepers.filter { $0.deadline <= state.now }
            state.sleepers.removeAll { $0.deadline <= state.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Lets `milliseconds` pass.
    public func advance(milliseconds: Int64) {
        advance(by: .milliseconds(milliseconds))
    }

    /// Steps the wall clock alone, forward or back, as a clock correction would; the monotonic
    /// time line and sleepers are untouched.
    public func stepWallClock(byMilliseconds milliseconds: Int64) {
        state.withLock { $0.wallTimeMs += milliseconds }
    }

    public func sleep(until deadline: MonotonicInstant) async throws {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextSleeperId += 1 }
            return state.nextSleeperId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Checked under the same lock the cancellation handler takes: a cancellation either
                // comes before (seen here) or finds the sleeper registered.
                let outcome = state.withLock { state -> Result<Bool, CancellationError> in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(true) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return .success(false)
                }
                switch outcome {
                case .failure(let error): continuation.resume(throwing: error)
                case .success(true): continuation.resume()
                case .success(false): break
                }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> Sleeper? in
                guard let position = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: position)
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }
}
