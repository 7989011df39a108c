import StrataCore
import StrataTestKit
import Testing

/// The manual clock the services' tests run on: sleepers wake when time is advanced to their
/// deadline, not before; a wall-clock step wakes no one; cancellation ends a sleep.
@Suite struct ManualClockTests {
    @Test func sleepersWakeWhenTimeReachesTheirDeadline() async throws {
        let clock = ManualClock()
        let start = clock.now
        let woke = Task { () -> MonotonicInstant in
            try await clock.sleep(milliseconds: 500)
            return clock.now
        }
        // Wait for the sleeper to be registered (an event, not a timing guess).
        while clock.sleeperCount == 0 { await Task.yield() }
        clock.stepWallClock(byMilliseconds: 3_600_000)
        clock.advance(milliseconds: 499)
        #expect(clock.sleeperCount == 1)
        clock.advance(milliseconds: 1)
        let at = try await woke.value
        #expect(at.milliseconds(since: start) == 500)
        #expect(clock.sleeperCount == 0)
    }

    @Test func advancingMovesBothTimeLinesAndSteppingOnlyTheWallClock() {
        let clock = ManualClock(now: .milliseconds(10), wallTimeMs: 1_000_000)
        clock.advance(milliseconds: 250)
        #expect(clock.now == .milliseconds(260))
        #expect(clock.wallTimeMs == 1_000_250)
        clock.stepWallClock(byMilliseconds: -3_600_000)
        #expect(clock.now == .milliseconds(260))
        #expect(clock.wallTimeMs == 1_000_250 - 3_600_000)
    }

    @Test func cancellingASleeperEndsItsSleepWithCancellationError() async throws {
        let clock = ManualClock()
        let sleeper = Task { try await clock.sleep(milliseconds: 1_000_000) }
        while clock.sleeperCount == 0 { await Task.yield() }
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.sleeperCount == 0)
        // A sleep whose deadline has passed returns at once.
        try await clock.sleep(until: clock.now)
    }
}
