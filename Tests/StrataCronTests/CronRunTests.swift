import StrataCore
@testable import StrataCron
import Testing

/// How runs end: retries, Forbid and Replace, kills, history limits.
struct CronRunTests {
    @Test func aFailedRunIsRetriedWithTheSameRunIdAfterTheDelayUntilItsRetriesRunOut() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "flaky", "command": "false", "schedule": "0 * * * *"}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        let id = runId("flaky", "2025-01-01T01:00:00Z")
        harness.end(id, attempt: 0, .failed)
        #expect(harness.state.runs[id]?.state == .waitingToRetry)
        #expect(harness.state.jobState("flaky") == "queued")
        #expect(harness.stats("flaky").errorCount == 0)
        // Chronos waits a minute (--failure_retry) before the next attempt.
        harness.advance(seconds: 59)
        harness.tick()
        #expect(harness.tasks(of: "flaky").count == 1)
        #expect(harness.state.nextRetryDeadline == harness.now.advanced(byMilliseconds: 1000))
        harness.advance(seconds: 1)
        harness.tick()
        #expect(harness.tasks(of: "flaky").map(\.attempt) == [0, 1])
        #expect(harness.tasks(of: "flaky").allSatisfy { $0.runId == id })
        harness.end(id, attempt: 1, .lost)
        harness.advance(seconds: 60)
        harness.tick()
        harness.end(id, attempt: 2, .failed)
        // Retries (2) are out: the run failed for good.
        harness.advance(seconds: 600)
        harness.tick()
        #expect(harness.tasks(of: "flaky").map(\.attempt) == [0, 1, 2])
        #expect(harness.state.runs.isEmpty)
        let stats = harness.stats("flaky")
        #expect(stats.errorCount == 1 && stats.errorsSinceLastSuccess == 1 && stats.successCount == 0)
        #expect(stats.lastErrorMs == instant("2025-01-01T01:02:00Z"))
        #expect(harness.state.statuses["flaky"]?.failed.map(\.attempts) == [3])
        #expect(harness.state.jobJSON("flaky")?["lastError"] == .string("2025-01-01T01:02:00.000Z"))
        // A success resets the errors since the last one.
        harness.advance(to: "2025-01-01T02:00:00Z")
        harness.tick()
        harness.end(runId("flaky", "2025-01-01T02:00:00Z"), attempt: 0, .succeeded)
        #expect(harness.stats("flaky").errorsSinceLastSuccess == 0 && harness.stats("flaky").successCount == 1)
        #expect(harness.stats("flaky").lastState == "success")
        // A duplicate report of an attempt that already ended changes nothing.
        let records = harness.log.count
        harness.absorb(harness.state.runEnded(id, attempt: 2, outcome: .failed, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.log.count == records)
    }

    @Test func aJobWithoutRetriesFailsAtTheFirstFailure() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "once", "command": "false", "schedule": "0 * * * *", "retries": 0}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        harness.end(runId("once", "2025-01-01T01:00:00Z"), attempt: 0, .failed)
        #expect(harness.state.runs.isEmpty)
        #expect(harness.stats("once").errorCount == 1)
    }

    /// Chronos' `--disable_after_failures 2`: a success resets the count; two failed runs in a
    /// row (each out of retries) suspend the job, which then starts nothing on its schedule;
    /// the suspension is in the log.
    @Test func aJobIsSuspendedAfterSoManyFailuresSinceItsLastSuccess() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z", disableAfterFailures: 2)
        harness.put(#"{"name": "flaky", "command": "x", "schedule": "0 * * * *", "retries": 0}"#)
        for (hour, outcome) in [(1, CronRunOutcome.failed), (2, .succeeded), (3, .failed)] {
            harness.advance(to: "2025-01-01T0\(hour):00:00Z")
            harness.tick()
            harness.end(runId("flaky", "2025-01-01T0\(hour):00:00Z"), attempt: 0, outcome)
        }
        #expect(harness.state.jobs["flaky"]?.disabled == false, "one failure since the last success")
        harness.advance(to: "2025-01-01T04:00:00Z")
        harness.tick()
        harness.end(runId("flaky", "2025-01-01T04:00:00Z"), attempt: 0, .failed)
        #expect(harness.state.jobs["flaky"]?.disabled == true)
        #expect(harness.replayed().jobs["flaky"]?.disabled == true)
        harness.advance(to: "2025-01-01T05:00:00Z")
        harness.tick()
        #expect(harness.state.runs.isEmpty, "a suspended job starts no scheduled run")
        // Off (the default): failures never suspend.
        var off = CronHarness(at: "2025-01-01T00:00:30Z")
        off.put(#"{"name": "flaky", "command": "x", "schedule": "0 * * * *", "retries": 0}"#)
        for hour in 1...3 {
            off.advance(to: "2025-01-01T0\(hour):00:00Z")
            off.tick()
            off.end(runId("flaky", "2025-01-01T0\(hour):00:00Z"), attempt: 0, .failed)
        }
        #expect(off.state.jobs["flaky"]?.disabled == false)
    }

    @Test func forbidSkipsADueRunWhileOneIsInFlightAndRecordsIt() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "slow", "command": "sleep 90", "schedule": "* * * * *", "concurrencyPolicy": "Forbid"}"#)
        harness.advance(to: "2025-01-01T00:01:00Z")
        harness.tick()
        harness.advance(to: "2025-01-01T00:02:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "slow") == ["2025-01-01T00:01:00Z"])
        #expect(harness.log.last == .runSkipped(runId("slow", "2025-01-01T00:02:00Z"), kind: .scheduled, atMs: instant("2025-01-01T00:02:00Z")))
        #expect(harness.stats("slow").skippedCount == 1)
        #expect(harness.state.statuses["slow"]?.notRun.map(\.status) == [.skipped])
        // Handled: it does not start once the first run ends.
        harness.advance(seconds: 30)
        harness.end(runId("slow", "2025-01-01T00:01:00Z"), attempt: 0, .succeeded)
        harness.tick()
        #expect(harness.firstAttempts(of: "slow") == ["2025-01-01T00:01:00Z"])
        // A manual run while one is in flight is refused with 409.
        harness.advance(to: "2025-01-01T00:03:00Z")
        harness.tick()
        var state = harness.state
        guard case .failure(let error) = state.runNow("slow", now: harness.now, wallTimeMs: harness.wallTimeMs) else {
            Issue.record("a manual run started beside a run in flight")
            return
        }
        #expect(error.kind == .runInFlight && error.status == 409)
        // A run waiting to retry is in flight too.
        harness.end(runId("slow", "2025-01-01T00:03:00Z"), attempt: 0, .failed)
        harness.advance(to: "2025-01-01T00:04:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "slow") == ["2025-01-01T00:01:00Z", "2025-01-01T00:03:00Z"])
        #expect(harness.tasks(of: "slow").map(\.attempt) == [0, 0, 1])
    }

    @Test func replaceKillsTheRunInFlightThenStartsTheNewOne() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "latest", "command": "sleep 90", "schedule": "* * * * *", "concurrencyPolicy": "Replace"}"#)
        harness.advance(to: "2025-01-01T00:01:00Z")
        harness.tick()
        harness.advance(to: "2025-01-01T00:02:00Z")
        let outcome = harness.state.tick(now: harness.now, wallTimeMs: harness.wallTimeMs)
        let old = runId("latest", "2025-01-01T00:01:00Z")
        let new = runId("latest", "2025-01-01T00:02:00Z")
        #expect(outcome.records.prefix(2) == [
            .killRequested(old, atMs: harness.wallTimeMs),
            .runStarted(new, attempt: 0, kind: .scheduled, arguments: nil, atMs: harness.wallTimeMs),
        ])
        #expect(outcome.actions == [.kill(old, attempt: 0), .start(new, attempt: 0, job: harness.state.jobs["latest"]!, arguments: nil)])
        harness.absorb(outcome)
        harness.settle()
        // The killed run is not retried and is no error; the new one runs.
        harness.advance(seconds: 120)
        harness.tick()
        #expect(harness.tasks(of: "latest").filter { $0.runId == old }.map(\.attempt) == [0])
        #expect(harness.stats("latest").errorCount == 0)
        #expect(harness.state.statuses["latest"]?.failed.map(\.status) == [.killed])
        #expect(harness.state.runs(of: "latest").map(\.id.scheduledMs) == [instant("2025-01-01T00:04:00Z")])
    }

    @Test func aKilledTaskReportedAsFailedIsNotRetried() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "j", "command": "sleep 1000", "schedule": "0 * * * *", "retries": 5}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        let id = runId("j", "2025-01-01T01:00:00Z")
        let outcome = try! harness.state.kill("j", now: harness.now, wallTimeMs: harness.wallTimeMs).get()
        harness.log += outcome.records
        #expect(outcome.actions == [.kill(id, attempt: 0)])
        // The task died of the signal and the master says "failed".
        harness.absorb(harness.state.runEnded(id, attempt: 0, outcome: .failed, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.runs.isEmpty)
        #expect(harness.state.statuses["j"]?.failed.map(\.status) == [.killed])
        #expect(harness.stats("j").errorCount == 0)
    }

    @Test func killEndsRunningAttemptsAndRunsWaitingToRetry() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z", retryDelayMilliseconds: 120_000)
        harness.put(#"{"name": "j", "command": "x", "schedule": "* * * * *"}"#)
        harness.advance(to: "2025-01-01T00:01:00Z")
        harness.tick()
        harness.end(runId("j", "2025-01-01T00:01:00Z"), attempt: 0, .failed)
        harness.advance(to: "2025-01-01T00:02:00Z")
        harness.tick()
        #expect(harness.state.runs(of: "j").map(\.state) == [.waitingToRetry, .running])
        harness.run { $0.kill("j", now: $1, wallTimeMs: $2) }
        #expect(harness.state.runs.isEmpty)
        #expect(harness.running("j").isEmpty)
        #expect(harness.state.statuses["j"]?.failed.map(\.status) == [.killed])
        harness.advance(seconds: 120)
        harness.tick()
        // No retry of either.
        #expect(harness.tasks(of: "j").filter { $0.attempt > 0 }.isEmpty)
        var state = harness.state
        #expect(throws: CronError.self) { try state.kill("nope", now: harness.now, wallTimeMs: harness.wallTimeMs).get() }
    }

    @Test func historyKeepsTheLatestRunsWithinEachLimit() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"""
            {"name": "h", "command": "x", "schedule": "* * * * *", "retries": 0, "epsilon": "PT0S",
             "successfulHistoryLimit": 2, "failedHistoryLimit": 1}
            """#)
        for minute in 1...6 {
            harness.advance(seconds: 30)
            harness.tick()
            harness.advance(seconds: 30)
            harness.tick()
            let id = RunId(jobName: "h", scheduledMs: instant("2025-01-01T00:00:00Z") + Int64(minute) * 60_000)
            harness.end(id, attempt: 0, minute % 3 == 0 ? .failed : .succeeded)
        }
        let status = harness.state.statuses["h"]!
        #expect(status.succeeded.map { utc($0.runId.scheduledMs) } == ["2025-01-01T00:04:00Z", "2025-01-01T00:05:00Z"])
        #expect(status.failed.map { utc($0.runId.scheduledMs) } == ["2025-01-01T00:06:00Z"])
        #expect(status.stats.successCount == 4 && status.stats.errorCount == 2)
        #expect(status.history.map(\.status) == [.failed, .succeeded, .succeeded])
        // Missed runs are kept within the failed limit too, and counted.
        harness.advance(seconds: 630)
        harness.tick()
        #expect(harness.state.statuses["h"]!.notRun.count == 1)
        #expect(harness.stats("h").missedCount == 10)
        // Lowering a limit trims at once.
        harness.put(#"""
            {"name": "h", "command": "x", "schedule": "* * * * *", "retries": 0, "epsilon": "PT0S",
             "successfulHistoryLimit": 0, "failedHistoryLimit": 0}
            """#)
        #expect(harness.state.statuses["h"]!.history.isEmpty)
        #expect(harness.stats("h").successCount == 4)
    }
}
