import StrataCore
import StrataTestKit
import Testing

/// Waiting for an event without polling: no event between reading the count and waiting is
/// missed, and a deadline on a manual clock ends the wait when time reaches it.
@Suite struct EventCounterTests {
    @Test func anEventSignalledBeforeTheWaitEndsItAtOnce() async {
        let events = EventCounter()
        let seen = events.count
        events.signal()
        await events.wait(after: seen)
        #expect(events.count == seen + 1)
    }

    @Test func aWaiterWakesOnTheNextEvent() async {
        let events = EventCounter()
        let seen = events.count
        let waiter = Task { await events.wait(after: seen) }
        events.signal()
        await waiter.value
        #expect(events.count == 1)
    }

    @Test func theDeadlineEndsAWaitWithNoEvent() async {
        let clock = ManualClock()
        let events = EventCounter()
        let deadline = clock.now.advanced(byMilliseconds: 20_000)
        let waiter = Task { await clock.wait(for: events, after: events.count, until: deadline) }
        while clock.sleeperCount == 0 { await Task.yield() }
        clock.advance(milliseconds: 20_000)
        await waiter.value
        #expect(events.count == 0)
        #expect(clock.sleeperCount == 0)
    }
}
