import StrataCore
@testable import StrataCron
import Testing

/// Runs submitted ahead of their scheduled time (`submitAheadMilliseconds`): which are, when,
/// and what suspending, removing, killing or a restart before the time does to them.
struct CronSubmitAheadTests {
    static let lead: Int64 = 10_000

    @Test func anAllowJobsRunStartsTheLeadTimeAheadOnceAndOnlyOnce() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z", submitAheadMilliseconds: Self.lead)
        harness.put(#"{"name": "minutely", "command": "true", "schedule": "* * * * *"}"#)
        #expect(harness.state.nextWakeWallTimeMs == instant("2025-01-01T00:00:50Z"))
        harness.advance(to: "2025-01-01T00:00:49Z")
        harness.tick()
        #expect(harness.tasks(of: "minutely").isEmpty)
        harness.advance(seconds: 1)
        harness.tick()
        // Submitted ten seconds ahead, as the run of 00:01:00.
        #expect(harness.firstAttempts(of: "minutely") == ["2025-01-01T00:01:00Z"])
        #expect(harness.log.last == .runStarted(runId("minutely", "2025-01-01T00:01:00Z"), attempt: 0, kind: .scheduled, arguments: nil, atMs: instant("2025-01-01T00:00:50Z")))
        #expect(harness.state.statuses["minutely"]?.handledThroughMs == instant("2025-01-01T00:01:00Z"))
        #expect(harness.state.nextWakeWallTimeMs == instant("2025-01-01T00:01:50Z"))
        // Its time comes: nothing more starts, then or a moment later.
        harness.advance(to: "2025-01-01T00:01:00Z")
        harness.tick()
        harness.advance(seconds: 5)
        harness.tick()
        #expect(harness.firstAttempts(of: "minutely") == ["2025-01-01T00:01:00Z"])
        harness.end(runId("minutely", "2025-01-01T00:01:00Z"), attempt: 0, .succeeded)
        #expect(harness.stats("minutely").successCount == 1)
        harness.advance(to: "2025-01-01T00:01:50Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "minutely") == ["2025-01-01T00:01:00Z", "2025-01-01T00:02:00Z"])
        #expect(harness.doubleStarts.isEmpty)
    }

    @Test func aScheduleFasterThanTheLeadHasEveryRunWithinTheLeadStartedOnce() {
        var harness = CronHarness(at: "2025-01-01T00:00:00Z", submitAheadMilliseconds: Self.lead)
        harness.put(#"{"name": "often", "command": "true", "schedule": "R/2025-01-01T00:00:03Z/PT3S"}"#)
        harness.tick()
        #expect(harness.firstAttempts(of: "often") == ["2025-01-01T00:00:03Z", "2025-01-01T00:00:06Z", "2025-01-01T00:00:09Z"])
        harness.advance(seconds: 2)
        harness.tick()
        #expect(harness.firstAttempts(of: "often").last == "2025-01-01T00:00:12Z")
        #expect(harness.tasks(of: "often").count == 4 && harness.doubleStarts.isEmpty)
    }

    @Test func forbidAndReplaceJobsAreDecidedAtTheirScheduledTime() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z", submitAheadMilliseconds: Self.lead)
        harness.put(#"{"name": "forbid", "command": "sleep 90", "schedule": "* * * * *", "concurrencyPolicy": "Forbid"}"#)
        harness.put(#"{"name": "replace", "command": "sleep 90", "schedule": "* * * * *", "concurrencyPolicy": "Replace"}"#)
        #expect(harness.state.nextWakeWallTimeMs == instant("2025-01-01T00:01:00Z"))
        harness.advance(to: "2025-01-01T00:00:50Z")
        harness.tick()
        #expect(harness.tasks.isEmpty)
        harness.advance(to: "2025-01-01T00:01:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "forbid") == ["2025-01-01T00:01:00Z"])
        #expect(harness.firstAttempts(of: "replace") == ["2025-01-01T00:01:00Z"])
        // Ten seconds before the next time the first runs are still in flight and untouched.
        harness.advance(to: "2025-01-01T00:01:50Z")
        harness.tick()
        #expect(harness.running("forbid").count == 1 && harness.running("replace").count == 1)
        #expect(harness.stats("forbid").skippedCount == 0)
        // At the time: Forbid skips, Replace kills the run in flight and starts its own.
        harness.advance(to: "2025-01-01T00:02:00Z")
        harness.tick()
        #expect(harness.stats("forbid").skippedCount == 1)
        #expect(harness.firstAttempts(of: "forbid") == ["2025-01-01T00:01:00Z"])
        #expect(harness.running("replace").map { utc($0.runId.scheduledMs) } == ["2025-01-01T00:02:00Z"])
        // A run killed by Replace after its time had started: killed, not cancelled.
        #expect(harness.state.statuses["replace"]?.failed.map(\.status) == [.killed])
    }

    @Test func suspendingBeforeItsTimeCancelsTheRunSubmittedAheadAsNotRun() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z", submitAheadMilliseconds: Self.lead)
        harness.put(#"{"name": "paused", "command": "true", "schedule": "* * * * *"}"#)
        harness.advance(to: "2025-01-01T00:00:52Z")
        harness.tick()
        let id = runId("paused", "2025-01-01T00:01:00Z")
        #expect(harness.running("paused").map(\.runId) == [id])
        harness.advance(seconds: 3)
        harness.run { $0.suspend("paused", now: $1, wallTimeMs: $2) }
        // Killed on the master before it could start; recorded as cancelled, not as a failure.
        #expect(harness.tasks(of: "paused").map(\.state) == [.ended(.killed)])
        #expect(harness.state.runs.isEmpty)
        #expect(harness.state.statuses["paused"]?.notRun.map(\.status) == [.cancelled])
        #expect(harness.state.statuses["paused"]?.failed.isEmpty == true)
        #expect(harness.stats("paused").errorCount == 0)
        // Suspended: nothing starts at the time or after.
        harness.advance(to: "2025-01-01T00:01:55Z")
        harness.tick()
        #expect(harness.tasks(of: "paused").count == 1)
        // Resumed: the next time ahead of the resumption runs, submitted ahead as before.
        harness.run { $0.resume("paused", now: $1, wallTimeMs: $2) }
        harness.tick()
        #expect(harness.firstAttempts(of: "paused") == ["2025-01-01T00:01:00Z", "2025-01-01T00:02:00Z"])
        // A replay of the log gives the same history.
        #expect(harness.replayed().statuses["paused"]?.notRun.map(\.status) == [.cancelled])
        #expect(harness.doubleStarts.isEmpty)
    }

    @Test func killingOrRemovingBeforeItsTimeCancelsTheRunAndAfterItKillsIt() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z", submitAheadMilliseconds: Self.lead)
        harness.put(#"{"name": "job", "command": "sleep 600", "schedule": "* * * * *"}"#)
        harness.put(#"{"name": "gone", "command": "true", "schedule": "* * * * *"}"#)
        harness.advance(to: "2025-01-01T00:00:55Z")
        harness.tick()
        #expect(harness.tasks.count == 2)
        harness.run { $0.kill("job", now: $1, wallTimeMs: $2) }
        #expect(harness.state.statuses["job"]?.notRun.map(\.status) == [.cancelled])
        harness.run { $0.remove("gone", now: $1, wallTimeMs: $2) }
        #expect(harness.running("gone").isEmpty && harness.state.jobs["gone"] == nil && harness.state.runs.isEmpty)
        // The next run, killed after its time: a killed run, as before.
        harness.advance(to: "2025-01-01T00:01:50Z")
        harness.tick()
        harness.advance(to: "2025-01-01T00:02:05Z")
        harness.run { $0.kill("job", now: $1, wallTimeMs: $2) }
        #expect(harness.state.statuses["job"]?.failed.map(\.status) == [.killed])
        #expect(harness.state.statuses["job"]?.notRun.map(\.status) == [.cancelled])
        #expect(harness.stats("job").errorCount == 0)
    }

    /// The service dies at every point between logging a run started ahead and the run's end;
    /// each restart (before the run's time) reconciles with the master: one task, never two.
    @Test func aRestartBetweenTheEarlyStartAndItsTimeStartsTheRunExactlyOnce() {
        for crashAt in 1...6 {
            var harness = CronHarness(at: "2025-01-01T00:00:30Z", submitAheadMilliseconds: Self.lead)
            harness.put(#"{"name": "steady", "command": "true", "schedule": "* * * * *"}"#)
            harness.crashAfterRecords = harness.log.count + crashAt
            harness.advance(to: "2025-01-01T00:00:50Z")
            harness.tick()
            harness.advance(seconds: 5)
            harness.tick()
            harness.advance(to: "2025-01-01T00:01:00Z")
            harness.tick()
            for task in harness.running("steady") { harness.end(task.runId, attempt: task.attempt, .succeeded) }
            harness.advance(seconds: 1)
            harness.tick()
            #expect(harness.doubleStarts.isEmpty, "crash after record \(crashAt)")
            #expect(harness.firstAttempts(of: "steady") == ["2025-01-01T00:01:00Z"], "crash after record \(crashAt)")
            #expect(harness.stats("steady").successCount == 1, "crash after record \(crashAt)")
        }
    }

    @Test func withoutALeadEveryRunStartsAtItsTime() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "plain", "command": "true", "schedule": "* * * * *"}"#)
        #expect(harness.state.nextWakeWallTimeMs == instant("2025-01-01T00:01:00Z"))
        harness.advance(to: "2025-01-01T00:00:59Z")
        harness.tick()
        #expect(harness.tasks.isEmpty)
        harness.advance(seconds: 1)
        harness.tick()
        #expect(harness.firstAttempts(of: "plain") == ["2025-01-01T00:01:00Z"])
    }
}
