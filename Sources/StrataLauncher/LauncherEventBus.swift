import StrataApps
import StrataCore
import Synchronization

/// Marathon's event bus for `/v2/events`: the launcher's records become events (by
/// `LauncherEventDeriver`) in the order they were applied, and each subscriber gets them in a
/// buffer of its own. Publishing never waits: a subscriber whose buffer is full (it reads too
/// slowly, or is gone without the connection noticing yet) is dropped, as Marathon drops a slow
/// event-stream consumer (`HttpEventStreamHandleActor`, `event_stream_max_outstanding_messages`).
final class LauncherEventBus: Sendable {
    /// Events buffered for one subscriber before it is dropped (Marathon's default for
    /// `event_stream_max_outstanding_messages`).
    static let bufferedEventsPerSubscriber = 1024

    /// What a subscriber receives: an event with the record ticket it may be sent after (once
    /// the records up to it are durable), or a prompt to write a heartbeat.
    enum Item: Sendable {
        case event(LauncherEvent, ticket: UInt64)
        case heartbeat
    }

    struct Subscription: Sendable {
        var id: UInt64
        var items: AsyncStream<Item>
        var sink: AsyncStream<Item>.Continuation
    }

    private struct State {
        /// Present while there are subscribers: it follows the state from the first one's start.
        var deriver: LauncherEventDeriver?
        var subscribers: [UInt64: AsyncStream<Item>.Continuation] = [:]
        var nextId: UInt64 = 1
        var dropped = 0
    }

    private let state = Mutex(State())

    var subscriberCount: Int { state.withLock { $0.subscribers.count } }
    /// Subscribers dropped for a full buffer, since the start.
    var droppedCount: Int { state.withLock { $0.dropped } }

    /// Called with the launcher's state lock held, right after an event's `records` were
    /// applied (`ticket`: the count of records applied so far), so events keep the records' order.
    func publish(_ records: [LauncherRecord], ticket: UInt64, now: MonotonicInstant, wallTimeMs: Int64) {
        guard !records.isEmpty else { return }
        state.withLock { bus in
            guard !bus.subscribers.isEmpty, let events = bus.deriver?.events(for: records, now: now, wallTimeMs: wallTimeMs) else { return }
            for event in events { Self.deliver(.event(event, ticket: ticket), in: &bus) }
        }
    }

    /// A new subscriber, called with the launcher's state lock held and `current` the state: the
    /// events of every record applied from now on reach it. Every subscriber, the new one too,
    /// is told with `event_stream_attached`.
    func subscribe(current: LauncherState, wallTimeMs: Int64) -> Subscription {
        let (items, sink) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(Self.bufferedEventsPerSubscriber))
        let id = state.withLock { bus -> UInt64 in
            if bus.deriver == nil { bus.deriver = LauncherEventDeriver(state: current) }
            let id = bus.nextId
            bus.nextId += 1
            bus.subscribers[id] = sink
            Self.deliver(.event(LauncherEvent("event_stream_attached", wallTimeMs: wallTimeMs, [:]), ticket: 0), in: &bus)
            return id
        }
        return Subscription(id: id, items: items, sink: sink)
    }

    func unsubscribe(_ id: UInt64, wallTimeMs: Int64) {
        state.withLock { bus in
            guard let sink = bus.subscribers.removeValue(forKey: id) else { return }
            sink.finish()
            if bus.subscribers.isEmpty {
                bus.deriver = nil
            } else {
                Self.deliver(.event(LauncherEvent("event_stream_detached", wallTimeMs: wallTimeMs, [:]), ticket: 0), in: &bus)
            }
        }
    }

    private static func deliver(_ item: Item, in bus: inout State) {
        for (id, sink) in bus.subscribers {
            if case .dropped = sink.yield(item) {
                sink.finish()
                bus.subscribers[id] = nil
                bus.dropped += 1
            }
        }
        if bus.subscribers.isEmpty { bus.deriver = nil }
    }
}

/// The launcher's own counters, for `/metrics`.
final class LauncherCounters: Sendable {
    struct Values: Sendable {
        var launches = 0
        var launchesRefused = 0
        var kills = 0
        var healthChecks = 0
        var healthChecksFailed = 0
    }

    private let values = Mutex(Values())

    func count(_ change: (inout Values) -> Void) { values.withLock { change(&$0) } }
    var current: Values { values.withLock { $0 } }
}
