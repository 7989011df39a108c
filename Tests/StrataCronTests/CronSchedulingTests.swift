import StrataCore
@testable import StrataCron
import Testing

/// Scheduled runs: each scheduled time once, epsilon and the starting deadline, missed runs,
/// suspend and resume, schedule changes, manual runs.
struct CronSchedulingTests {
    @Test func eachScheduledTimeStartsOnceHoweverOftenTheServiceTicks() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "five", "command": "true", "schedule": "*/5 * * * *"}"#)
        harness.tick()
        #expect(harness.firstAttempts(of: "five") == [])
        harness.advance(to: "2025-01-01T00:05:00Z")
        harness.tick()
        harness.tick()
        harness.advance(seconds: 20)
        harness.tick()
        #expect(harness.firstAttempts(of: "five") == ["2025-01-01T00:05:00Z"])
        #expect(harness.state.statuses["five"]?.handledThroughMs == instant("2025-01-01T00:05:00Z"))
        #expect(harness.state.nextWakeWallTimeMs == instant("2025-01-01T00:10:00Z"))
        // The start carries the job as it is, and the run is in flight.
        let run = harness.state.runs[runId("five", "2025-01-01T00:05:00Z")]
        #expect(run?.kind == .scheduled && run?.attempt == 0 && run?.state == .running)
        #expect(harness.state.jobState("five") == "running")
        harness.end(runId("five", "2025-01-01T00:05:00Z"), attempt: 0, .succeeded)
        #expect(harness.state.runs.isEmpty)
        #expect(harness.stats("five").successCount == 1)
        #expect(harness.stats("five").lastSuccessMs == instant("2025-01-01T00:05:20Z"))
        #expect(harness.state.jobState("five") == "idle")
        // A wall clock stepped back starts nothing again.
        harness.wallTimeMs = instant("2025-01-01T00:04:00Z")
        harness.tick()
        harness.wallTimeMs = instant("2025-01-01T00:05:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "five") == ["2025-01-01T00:05:00Z"])
    }

    @Test func aRepeatingIntervalWithAnEmptyStartFiresAtOnceAndThenEveryPeriod() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "hourly", "command": "true", "schedule": "R3//PT1H"}"#)
        #expect(harness.state.jobs["hourly"]?.schedule == "R3/2025-01-01T00:00:30Z/PT1H")
        harness.tick()
        for _ in 1...4 {
            harness.advance(seconds: 3600)
            harness.tick()
        }
        #expect(harness.firstAttempts(of: "hourly") == ["2025-01-01T00:00:30Z", "2025-01-01T01:00:30Z", "2025-01-01T02:00:30Z"])
        #expect(harness.state.nextWakeWallTimeMs == nil)
    }

    @Test func aRunLateByLessThanEpsilonStartsAndALaterOneIsRecordedMissed() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        // Chronos' default epsilon: 60 seconds.
        harness.put(#"{"name": "five", "command": "true", "schedule": "*/5 * * * *"}"#)
        harness.advance(to: "2025-01-01T00:06:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "five") == ["2025-01-01T00:05:00Z"])
        harness.advance(to: "2025-01-01T00:11:00Z")
        harness.advance(seconds: 1)
        harness.tick()
        #expect(harness.firstAttempts(of: "five") == ["2025-01-01T00:05:00Z"])
        #expect(harness.stats("five").missedCount == 1)
        let missed = harness.state.statuses["five"]?.notRun
        #expect(missed?.map(\.status) == [.missed])
        #expect(missed?.map { utc($0.runId.scheduledMs) } == ["2025-01-01T00:10:00Z"])
        #expect(harness.log.contains(.runsMissed(
            jobName: "five", scheduledMs: [instant("2025-01-01T00:10:00Z")], count: 1, handledThroughMs: instant("2025-01-01T00:10:00Z"),
            atMs: instant("2025-01-01T00:11:01Z"))))
        // Missed is missed: ticking again changes nothing.
        let records = harness.log.count
        harness.tick()
        #expect(harness.log.count == records)
    }

    @Test func aLongerEpsilonOrAStartingDeadlineLetsALateRunStart() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "eps", "command": "true", "schedule": "*/5 * * * *", "epsilon": "PT10M"}"#)
        harness.put(#"{"name": "deadline", "command": "true", "schedule": "*/5 * * * *", "startingDeadlineSeconds": 600}"#)
        harness.put(#"{"name": "strict", "command": "true", "schedule": "*/5 * * * *", "epsilon": "PT10M", "startingDeadlineSeconds": 30}"#)
        harness.advance(to: "2025-01-01T00:14:00Z")
        harness.tick()
        // 00:05 is nine minutes late: within ten minutes, but only the latest overdue run
        // (00:10) starts; 00:05 is missed.
        #expect(harness.firstAttempts(of: "eps") == ["2025-01-01T00:10:00Z"])
        #expect(harness.stats("eps").missedCount == 1)
        #expect(harness.firstAttempts(of: "deadline") == ["2025-01-01T00:10:00Z"])
        // startingDeadlineSeconds takes the place of epsilon.
        #expect(harness.firstAttempts(of: "strict") == [])
        #expect(harness.stats("strict").missedCount == 2)
    }

    @Test func runsMissedWhileTheServiceWasDownStartWithinEpsilonAndAreRecordedMissedBeyondIt() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "minutely", "command": "true", "schedule": "* * * * *", "epsilon": "PT90S"}"#)
        harness.put(#"{"name": "hourly", "command": "true", "schedule": "0 * * * *", "epsilon": "PT90S"}"#)
        harness.advance(to: "2025-01-01T00:01:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "minutely") == ["2025-01-01T00:01:00Z"])
        // Down from 00:01:10 to 00:05:20: a new service replays the log and recovers.
        harness.advance(to: "2025-01-01T00:05:20Z")
        var restarted = CronState()
        for record in harness.log { restarted.apply(record, now: harness.now) }
        let outcome = restarted.recover(now: harness.now, wallTimeMs: harness.wallTimeMs)
        // The run in flight is reconciled, not started again.
        #expect(outcome.actions.contains(.reconcile(runId("minutely", "2025-01-01T00:01:00Z"), attempt: 0, job: harness.state.jobs["minutely"]!)))
        let starts = outcome.actions.compactMap { action -> String? in
            if case .start(let id, 0, _, _) = action { return "\(id.jobName) \(utc(id.scheduledMs))" }
            return nil
        }
        // 00:05 is 20 s late (within 90 s) and starts; 00:02 to 00:04 are missed. The hourly job
        // had nothing due.
        #expect(starts == ["minutely 2025-01-01T00:05:00Z"])
        #expect(outcome.records.contains(.runsMissed(
            jobName: "minutely", scheduledMs: instants("2025-01-01T00:02:00Z", "2025-01-01T00:03:00Z", "2025-01-01T00:04:00Z"), count: 3,
            handledThroughMs: instant("2025-01-01T00:04:59.999Z"), atMs: harness.wallTimeMs)))
        #expect(restarted.statuses["minutely"]?.stats.missedCount == 3)
    }

    @Test func aSuspendedJobStartsNothingAndOnResumeRunsFromTheNextScheduledTime() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "m", "command": "true", "schedule": "* * * * *"}"#)
        harness.run { $0.suspend("m", now: $1, wallTimeMs: $2) }
        #expect(harness.state.jobs["m"]?.disabled == true)
        #expect(harness.state.jobJSON("m")?["disabled"] == .boolean(true))
        for _ in 0..<5 {
            harness.advance(seconds: 60)
            harness.tick()
        }
        #expect(harness.firstAttempts(of: "m") == [])
        #expect(harness.state.nextWakeWallTimeMs == nil)
        // Suspending twice records nothing more.
        let records = harness.log.count
        harness.run { $0.suspend("m", now: $1, wallTimeMs: $2) }
        #expect(harness.log.count == records)
        harness.run { $0.resume("m", now: $1, wallTimeMs: $2) }
        harness.tick()
        #expect(harness.firstAttempts(of: "m") == [])
        #expect(harness.stats("m").missedCount == 0)
        harness.advance(to: "2025-01-01T00:06:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "m") == ["2025-01-01T00:06:00Z"])
        // A disabled job still runs when asked to.
        harness.run { $0.suspend("m", now: $1, wallTimeMs: $2) }
        harness.run { $0.runNow("m", now: $1, wallTimeMs: $2) }
        #expect(harness.state.runs(of: "m").map(\.kind) == [.scheduled, .manual])
    }

    @Test func aChangedScheduleCountsFromTheChangeAndAnUnchangedOneKeepsItsMark() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "j", "command": "true", "schedule": "*/5 * * * *", "epsilon": "PT1H"}"#)
        harness.advance(to: "2025-01-01T00:07:00Z")
        // A new command alone keeps the mark: 00:05 (two minutes late, within epsilon) starts.
        harness.put(#"{"name": "j", "command": "echo changed", "schedule": "*/5 * * * *", "epsilon": "PT1H"}"#)
        harness.tick()
        #expect(harness.firstAttempts(of: "j") == ["2025-01-01T00:05:00Z"])
        harness.advance(to: "2025-01-01T00:12:30Z")
        // A new schedule counts from the change: neither the old schedule's 00:10 (within
        // epsilon) nor the new one's 00:12 runs, nor is either counted missed.
        harness.put(#"{"name": "j", "command": "echo changed", "schedule": "*/2 * * * *", "epsilon": "PT1H"}"#)
        harness.tick()
        #expect(harness.firstAttempts(of: "j") == ["2025-01-01T00:05:00Z"])
        harness.advance(to: "2025-01-01T00:14:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "j") == ["2025-01-01T00:05:00Z", "2025-01-01T00:14:00Z"])
        #expect(harness.stats("j").missedCount == 0)
    }

    @Test func aManualRunGetsARunIdOfItsOwnAndItsArguments() {
        var harness = CronHarness(at: "2025-01-01T00:04:59Z")
        harness.put(#"{"name": "j", "command": "run", "schedule": "*/5 * * * *"}"#)
        harness.advance(seconds: 1)
        // Now is exactly a scheduled time: the manual run takes the next millisecond.
        harness.run { $0.runNow("j", arguments: "-debug", now: $1, wallTimeMs: $2) }
        harness.run { $0.runNow("j", arguments: "  ", now: $1, wallTimeMs: $2) }
        harness.tick()
        let runs = harness.state.runs(of: "j")
        #expect(runs.map { utc($0.id.scheduledMs) } == ["2025-01-01T00:05:00Z", "2025-01-01T00:05:00.001Z", "2025-01-01T00:05:00.002Z"])
        #expect(runs.map(\.kind) == [.scheduled, .manual, .manual])
        #expect(runs.map(\.arguments) == [nil, "-debug", nil])
        #expect(harness.doubleStarts.isEmpty)
        // An unknown job is refused.
        var state = harness.state
        guard case .failure(let error) = state.runNow("nope", now: harness.now, wallTimeMs: harness.wallTimeMs) else {
            Issue.record("an unknown job ran")
            return
        }
        #expect(error.kind == .jobNotFound && error.status == 400)
        #expect(error.message == "Job 'nope' not found")
    }

    @Test func nextFireTimesListTheScheduleAndRefuseADependentJob() throws {
        var harness = CronHarness(at: "2025-03-08T12:00:00Z")
        harness.put(#"{"name": "nightly", "command": "true", "schedule": "30 2 * * *", "scheduleTimeZone": "America/New_York"}"#)
        harness.put(#"{"name": "child", "command": "true", "parents": ["nightly"]}"#)
        let times = try harness.state.nextFireTimes("nightly", after: harness.wallTimeMs, count: 3)
        // 2025-03-09 02:30 does not exist in New York: it fires at 03:00 EDT (07:00Z).
        #expect(utc(times) == ["2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z", "2025-03-11T06:30:00Z"])
        #expect(throws: CronError.self) { try harness.state.nextFireTimes("child", after: 0, count: 1) }
        #expect(throws: CronError.self) { try harness.state.nextFireTimes("nightly", after: 0, count: 0) }
        #expect(throws: CronError.self) { try harness.state.nextFireTimes("nope", after: 0, count: 1) }
    }
}
