@testable import StrataCron
import Testing

/// Which runs start when the service wakes (on time, late, after being down) and which are
/// recorded as missed.
struct CatchUpTests {
    let everyFiveMinutes = cron("*/5 * * * *")

    func policy(epsilonSeconds: Int64, catchUp: Int = 1) -> CatchUpPolicy {
        try! CatchUpPolicy(epsilonMilliseconds: epsilonSeconds * 1000, maximumCatchUpRuns: catchUp)
    }

    @Test func aRunWakingOnTimeStartsAndTheNextWakeIsTheNextFireTime() {
        let decision = everyFiveMinutes.runsDue(
            handledThroughMs: instant("2025-01-01T00:05:00Z"), nowMs: instant("2025-01-01T00:10:00.500Z"), policy: policy(epsilonSeconds: 60))
        #expect(utc(decision.due) == utc(instants("2025-01-01T00:10:00Z")))
        #expect(decision.missed == [])
        #expect(decision.missedCount == 0)
        #expect(decision.handledThroughMs == instant("2025-01-01T00:10:00Z"))
        #expect(decision.nextWakeMs.map(utc) == "2025-01-01T00:15:00Z")
        // Woken early: nothing yet.
        let early = everyFiveMinutes.runsDue(
            handledThroughMs: instant("2025-01-01T00:05:00Z"), nowMs: instant("2025-01-01T00:09:59.999Z"), policy: policy(epsilonSeconds: 60))
        #expect(early.due == [] && early.missedCount == 0)
        #expect(early.handledThroughMs == instant("2025-01-01T00:05:00Z"))
        #expect(early.nextWakeMs.map(utc) == "2025-01-01T00:10:00Z")
    }

    @Test func aRunStillStartsWithinEpsilonAndIsMissedBeyondIt() {
        let handled = instant("2025-01-01T00:05:00Z")
        let justInTime = everyFiveMinutes.runsDue(handledThroughMs: handled, nowMs: instant("2025-01-01T00:11:00Z"), policy: policy(epsilonSeconds: 60))
        #expect(utc(justInTime.due) == utc(instants("2025-01-01T00:10:00Z")))
        let tooLate = everyFiveMinutes.runsDue(handledThroughMs: handled, nowMs: instant("2025-01-01T00:11:00.001Z"), policy: policy(epsilonSeconds: 60))
        #expect(tooLate.due == [])
        #expect(utc(tooLate.missed) == utc(instants("2025-01-01T00:10:00Z")))
        #expect(tooLate.missedCount == 1 && tooLate.missedCountIsExact)
        #expect(tooLate.handledThroughMs == instant("2025-01-01T00:10:00Z"))
        #expect(tooLate.nextWakeMs.map(utc) == "2025-01-01T00:15:00Z")
        // An epsilon of zero starts a run only exactly on time.
        let exact = everyFiveMinutes.runsDue(handledThroughMs: handled, nowMs: instant("2025-01-01T00:10:00Z"), policy: policy(epsilonSeconds: 0))
        #expect(exact.due.count == 1)
        let late = everyFiveMinutes.runsDue(handledThroughMs: handled, nowMs: instant("2025-01-01T00:10:00.001Z"), policy: policy(epsilonSeconds: 0))
        #expect(late.due == [] && late.missedCount == 1)
    }

    @Test func afterAnHourDownOnlyTheLatestRunsWithinEpsilonStart() {
        let handled = instant("2025-01-01T00:05:00Z")
        let now = instant("2025-01-01T01:00:30Z")
        // Epsilon ten minutes: 00:55 and 01:00 are in time; one starts (the latest);
        // 00:10 to 00:50 are too late, and 00:55 is beyond the bound: ten missed.
        let one = everyFiveMinutes.runsDue(handledThroughMs: handled, nowMs: now, policy: policy(epsilonSeconds: 600))
        #expect(utc(one.due) == utc(instants("2025-01-01T01:00:00Z")))
        #expect(one.missedCount == 10)
        #expect(one.missed.first.map(utc) == "2025-01-01T00:10:00Z")
        #expect(one.missed.last.map(utc) == "2025-01-01T00:55:00Z")
        #expect(one.missed.count == 10)
        #expect(one.handledThroughMs == instant("2025-01-01T01:00:00Z"))
        #expect(one.nextWakeMs.map(utc) == "2025-01-01T01:05:00Z")
        // Allowing three to catch up: both in-time runs start, oldest first.
        let three = everyFiveMinutes.runsDue(handledThroughMs: handled, nowMs: now, policy: policy(epsilonSeconds: 600, catchUp: 3))
        #expect(utc(three.due) == utc(instants("2025-01-01T00:55:00Z", "2025-01-01T01:00:00Z")))
        #expect(three.missedCount == 9)
        #expect(three.missed.last.map(utc) == "2025-01-01T00:50:00Z")
    }

    @Test func handlingTheSameTimeAgainOrAClockSteppedBackStartsNothingTwice() {
        let first = everyFiveMinutes.runsDue(
            handledThroughMs: instant("2025-01-01T00:55:00Z"), nowMs: instant("2025-01-01T01:00:01Z"), policy: policy(epsilonSeconds: 300))
        #expect(first.due.count == 1)
        let again = everyFiveMinutes.runsDue(handledThroughMs: first.handledThroughMs, nowMs: instant("2025-01-01T01:00:02Z"), policy: policy(epsilonSeconds: 300))
        #expect(again.due == [] && again.missedCount == 0)
        // The wall clock steps back ten minutes: nothing already handled comes back.
        let steppedBack = everyFiveMinutes.runsDue(handledThroughMs: first.handledThroughMs, nowMs: instant("2025-01-01T00:50:00Z"), policy: policy(epsilonSeconds: 300))
        #expect(steppedBack.due == [] && steppedBack.missedCount == 0)
        #expect(steppedBack.handledThroughMs == first.handledThroughMs)
        #expect(steppedBack.nextWakeMs.map(utc) == "2025-01-01T01:05:00Z")
    }

    @Test func missedRunsCountAgainstRepetitionsAndTheScheduleEnds() {
        let schedule = try! Schedule.parse("R3/2025-01-01T00:00:00Z/PT1H", nowMs: 0)
        let created = instant("2024-12-31T00:00:00Z")
        let decision = schedule.runsDue(handledThroughMs: created, nowMs: instant("2025-01-01T03:30:00Z"), policy: .default)
        #expect(decision.due == [])
        #expect(utc(decision.missed) == utc(instants("2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z")))
        #expect(decision.missedCount == 3)
        #expect(decision.nextWakeMs == nil)
        // On time, the third is the last.
        let last = schedule.runsDue(handledThroughMs: instant("2025-01-01T01:00:00Z"), nowMs: instant("2025-01-01T02:00:00Z"), policy: .default)
        #expect(utc(last.due) == utc(instants("2025-01-01T02:00:00Z")))
        #expect(last.nextWakeMs == nil)
    }

    @Test func anEmptyStartFiresAtOnceForANewJob() {
        let now = instant("2025-06-01T12:00:00Z")
        let schedule = try! Schedule.parse("R//PT1H", nowMs: now)
        let decision = schedule.runsDue(handledThroughMs: now - 1, nowMs: now, policy: .default)
        #expect(decision.due == [now])
        #expect(decision.nextWakeMs == now + 3_600_000)
    }

    @Test func yearsOfMissedRunsAreCountedWithoutWalkingThem() {
        // A repeating interval counts by index: exactly, however many.
        let everyTwoSeconds = try! Schedule.parse("R/2012-10-01T05:52:00Z/PT2S", nowMs: 0)
        let handled = instant("2012-10-01T05:51:59Z")
        let now = instant("2022-10-01T05:52:00Z")
        let decision = everyTwoSeconds.runsDue(handledThroughMs: handled, nowMs: now, policy: .default)
        let tenYearsOfTwoSeconds: Int64 = (now - instant("2012-10-01T05:52:00Z")) / 2000 + 1
        #expect(decision.due == [now])
        #expect(decision.missedCount == tenYearsOfTwoSeconds - 1)
        #expect(decision.missedCountIsExact)
        #expect(decision.missed.count == CronLimits.maximumMissedRunsListed)
        #expect(decision.missed.first.map(utc) == "2012-10-01T05:52:00Z")
        #expect(decision.handledThroughMs == now)
    }

    @Test func aCronExpressionCountsMissedRunsUpToItsBound() {
        let everyMinute = cron("* * * * *")
        let decision = everyMinute.runsDue(
            handledThroughMs: instant("2025-01-01T00:00:00Z"), nowMs: instant("2025-12-01T00:00:30Z"), policy: .default)
        #expect(utc(decision.due) == utc(instants("2025-12-01T00:00:00Z")))
        #expect(!decision.missedCountIsExact)
        #expect(decision.missedCount >= Int64(CronLimits.maximumRunsEnumerated))
        #expect(decision.missed.count == CronLimits.maximumMissedRunsListed)
        #expect(decision.nextWakeMs.map(utc) == "2025-12-01T00:01:00Z")
    }

    @Test func epsilonsComeAsIsoDurationsAndAreBounded() throws {
        #expect(try CatchUpPolicy(epsilon: "PT15M").epsilonMilliseconds == 900_000)
        #expect(try CatchUpPolicy(epsilon: "P1DT30S").epsilonMilliseconds == 86_430_000)
        #expect(CatchUpPolicy.default.epsilonMilliseconds == 300_000)
        #expect(throws: ScheduleError.self) { try CatchUpPolicy(epsilon: "P1M") }
        #expect(throws: ScheduleError.self) { try CatchUpPolicy(epsilon: "P8D") }
        #expect(throws: ScheduleError.self) { try CatchUpPolicy(epsilonMilliseconds: -1) }
        #expect(throws: ScheduleError.self) { try CatchUpPolicy(epsilonMilliseconds: 0, maximumCatchUpRuns: 0) }
    }
}
