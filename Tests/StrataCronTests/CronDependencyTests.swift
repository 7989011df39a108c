import StrataCore
@testable import StrataCron
import Testing

/// Dependent jobs: when they run, which parents they may have, and what removing a parent does.
struct CronDependencyTests {
    /// Two scheduled parents and a child of both.
    func pipeline() -> CronHarness {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "extract-a", "command": "a", "schedule": "0 * * * *"}"#)
        harness.put(#"{"name": "extract-b", "command": "b", "schedule": "0 * * * *"}"#)
        harness.put(#"{"name": "load", "command": "load", "parents": ["extract-a", "extract-b"]}"#)
        return harness
    }

    /// `pipeline()` at 01:00:10: both parents' 01:00 runs started, extract-a's succeeded.
    func firstParentSucceeded() -> CronHarness {
        var harness = pipeline()
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        harness.advance(seconds: 10)
        harness.end(runId("extract-a", "2025-01-01T01:00:00Z"), attempt: 0, .succeeded)
        #expect(harness.tasks(of: "load").isEmpty)
        return harness
    }

    /// Chronos' "mark a job as successful": the job counts a success with no run, and a child
    /// whose parents have now all succeeded starts, as after a successful run; replaying the
    /// log gives the same counts.
    @Test func aJobMarkedSuccessfulCountsForItsChildrenWithoutRunning() throws {
        var harness = firstParentSucceeded()
        harness.run { $0.markSucceeded("extract-b", now: $1, wallTimeMs: $2) }
        #expect(harness.stats("extract-b").successCount == 1)
        #expect(harness.stats("extract-b").lastSuccessMs == instant("2025-01-01T01:00:10Z"))
        #expect(harness.firstAttempts(of: "load") == ["2025-01-01T01:00:10Z"])
        #expect(harness.state.runs(of: "load").map(\.kind) == [.dependent])
        // The scheduled run of extract-b still runs on its own.
        #expect(harness.state.runs(of: "extract-b").count == 1)
        #expect(harness.replayed().statuses["extract-b"]?.stats == harness.stats("extract-b"))
        var state = harness.state
        guard case .failure(let error) = state.markSucceeded("nope", now: harness.now, wallTimeMs: instant("2025-01-01T01:00:10Z")) else {
            Issue.record("an unknown job was marked successful")
            return
        }
        #expect(error.kind == .jobNotFound)
        #expect(harness.doubleStarts.isEmpty)
    }

    @Test func aDependentJobRunsOnceAllItsParentsSucceededSinceItsLastRun() {
        var harness = firstParentSucceeded()
        #expect(harness.state.statuses["load"]?.succeededParents == ["extract-a"])
        harness.advance(seconds: 10)
        harness.end(runId("extract-b", "2025-01-01T01:00:00Z"), attempt: 0, .succeeded)
        #expect(harness.firstAttempts(of: "load") == ["2025-01-01T01:00:20Z"])
        #expect(harness.state.runs(of: "load").map(\.kind) == [.dependent])
        #expect(harness.state.statuses["load"]?.succeededParents == [])
        // Next hour: a fails for good, b succeeds: load waits.
        harness.advance(to: "2025-01-01T02:00:00Z")
        harness.tick()
        harness.end(runId("extract-b", "2025-01-01T02:00:00Z"), attempt: 0, .succeeded)
        for attempt in 0...2 {
            harness.end(runId("extract-a", "2025-01-01T02:00:00Z"), attempt: attempt, .failed)
            harness.advance(seconds: 60)
            harness.tick()
        }
        #expect(harness.stats("extract-a").errorCount == 1)
        #expect(harness.firstAttempts(of: "load") == ["2025-01-01T01:00:20Z"])
        // A manual run of a counts: load runs.
        harness.run { $0.runNow("extract-a", now: $1, wallTimeMs: $2) }
        let manual = harness.state.runs(of: "extract-a")[0]
        harness.end(manual.id, attempt: 0, .succeeded)
        #expect(harness.firstAttempts(of: "load").count == 2)
        #expect(harness.doubleStarts.isEmpty)
    }

    @Test func aSoftErrorParentCountsForItsChildrenEvenWhenItFails() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "parent", "command": "p", "schedule": "0 * * * *", "retries": 0, "softError": true}"#)
        harness.put(#"{"name": "child", "command": "c", "parents": ["parent"]}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        harness.end(runId("parent", "2025-01-01T01:00:00Z"), attempt: 0, .failed)
        #expect(harness.firstAttempts(of: "child") == ["2025-01-01T01:00:00Z"])
    }

    @Test func aDisabledChildDoesNotRunAndAChainRunsInOrder() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "a", "command": "a", "schedule": "0 * * * *"}"#)
        harness.put(#"{"name": "b", "command": "b", "parents": ["a"]}"#)
        harness.put(#"{"name": "c", "command": "c", "parents": ["b"], "disabled": true}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        harness.end(runId("a", "2025-01-01T01:00:00Z"), attempt: 0, .succeeded)
        let b = harness.state.runs(of: "b")
        #expect(b.count == 1)
        harness.end(b[0].id, attempt: 0, .succeeded)
        #expect(harness.tasks(of: "c").isEmpty)
    }

    @Test func anUnknownParentIsRefusedAndNothingIsStored() {
        var state = CronState()
        let before = state.jobs
        let result = state.put(job(#"{"name": "child", "command": "c", "parents": ["ghost"]}"#), now: .zero, wallTimeMs: 0)
        guard case .failure(let error) = result else {
            Issue.record("a job with an unknown parent was stored")
            return
        }
        #expect(error.kind == .unknownParent && error.status == 400)
        #expect(error.message == "parent \"ghost\" of job \"child\" is not a job")
        #expect(state.jobs == before)
    }

    @Test func aCycleIsRefusedWithItsPath() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "a", "command": "a", "schedule": "0 * * * *"}"#)
        harness.put(#"{"name": "b", "command": "b", "parents": ["a"]}"#)
        harness.put(#"{"name": "c", "command": "c", "parents": ["b"]}"#)
        let stored = harness.state.jobs
        var state = harness.state
        // a after c closes a -> b -> c -> a.
        guard case .failure(let error) = state.put(job(#"{"name": "a", "command": "a", "parents": ["c"]}"#), now: .zero, wallTimeMs: harness.wallTimeMs) else {
            Issue.record("a cycle was stored")
            return
        }
        #expect(error.kind == .cycle)
        #expect(error.message == "job \"a\" would make the dependencies cyclic: a -> b -> c -> a")
        #expect(state.jobs == stored)
        // A job cannot be its own parent.
        guard case .failure(let own) = state.put(job(#"{"name": "d", "command": "d", "parents": ["d"]}"#), now: .zero, wallTimeMs: 0) else {
            Issue.record("a job that is its own parent was stored")
            return
        }
        #expect(own.kind == .cycle)
        #expect(own.message == "job \"d\" would make the dependencies cyclic: d -> d")
    }

    @Test func removingAParentHandsItsPlaceToItsChildrenAsChronosDoes() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "root", "command": "r", "schedule": "0 * * * *", "scheduleTimeZone": "Europe/Berlin"}"#)
        harness.put(#"{"name": "other", "command": "o", "schedule": "30 * * * *"}"#)
        harness.put(#"{"name": "middle", "command": "m", "parents": ["root"]}"#)
        harness.put(#"{"name": "leaf", "command": "l", "parents": ["middle", "other"]}"#)
        harness.put(#"{"name": "only", "command": "x", "parents": ["root"]}"#)
        harness.put(#"{"name": "both", "command": "x", "parents": ["root", "other"]}"#)
        // A dependent job removed: its children depend on its parents instead.
        harness.run { $0.remove("middle", now: $1, wallTimeMs: $2) }
        #expect(harness.state.jobs["middle"] == nil)
        #expect(harness.state.jobs["leaf"]?.parents == ["other", "root"])
        // A scheduled job removed: a child of it alone takes its schedule; others keep theirs.
        harness.run { $0.remove("root", now: $1, wallTimeMs: $2) }
        #expect(harness.state.jobs["only"]?.schedule == "0 * * * *")
        #expect(harness.state.jobs["only"]?.scheduleTimeZone == "Europe/Berlin")
        #expect(harness.state.jobs["only"]?.parents == [])
        #expect(harness.state.jobs["both"]?.parents == ["other"])
        #expect(harness.state.jobs["leaf"]?.parents == ["other"])
        #expect(harness.state.statuses["root"] == nil)
        // The adopted schedule runs.
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        #expect(harness.firstAttempts(of: "only") == ["2025-01-01T01:00:00Z"])
        var state = harness.state
        #expect(throws: CronError.self) { try state.remove("root", now: .zero, wallTimeMs: 0).get() }
    }

    @Test func removingAJobKillsItsRunsInFlight() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z", retryDelayMilliseconds: 120_000)
        harness.put(#"{"name": "j", "command": "x", "schedule": "* * * * *"}"#)
        harness.advance(to: "2025-01-01T00:01:00Z")
        harness.tick()
        harness.end(runId("j", "2025-01-01T00:01:00Z"), attempt: 0, .failed)
        harness.advance(to: "2025-01-01T00:02:00Z")
        harness.tick()
        harness.run { $0.remove("j", now: $1, wallTimeMs: $2) }
        #expect(harness.running("j").isEmpty)
        #expect(harness.state.runs.isEmpty)
        harness.advance(seconds: 300)
        harness.tick()
        #expect(harness.tasks(of: "j").count == 2)
    }
}
