import Synchronization

/// A count of events that tasks can wait on without polling: a waiter reads `count`, checks its
/// condition, and if it does not hold yet calls `wait(after:)` with the count it read, which
/// returns as soon as any event is signalled after that read (at once if one already was). No
/// event between the read and the wait is missed.
public final class EventCounter: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var count: UInt64 = 0
        var waiters: [Waiter] = []
        var nextId: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Events signalled so far.
    public var count: UInt64 { state.withLock { $0.count } }

    /// Records an event and wakes every waiter.
    public func signal() {
        let woken = state.withLock { state -> [Waiter] in
            state.count += 1
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in woken { waiter.continuation.resume() }
    }

    /// Returns once an event has been signalled after `count` read `seen`, or when the task is
    /// cancelled (the caller checks its condition again either way).
    public func wait(after seen: UInt64) async {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextId += 1 }
            return state.nextId
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.count != seen || Task.isCancelled { return true }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> Waiter? in
                guard let position = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: position)
            }
            cancelled?.continuation.resume()
        }
    }
}

extension Clock {
    /// Waits until `events` counts an event after `seen`, or until `deadline` on this clock,
    /// whichever comes first.
    public func wait(for events: EventCounter, after seen: UInt64, until deadline: MonotonicInstant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await events.wait(after: seen) }
            group.addTask { try? await self.sleep(until: deadline) }
            await group.next()
            group.cancelAll()
        }
    }
}
