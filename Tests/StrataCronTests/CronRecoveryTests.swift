import Foundation
import StrataCore
@testable import StrataCron
import Testing

/// Killing the service (kill -9) at every point of its log and restarting it: every scheduled
/// run starts exactly once, retries and dependent runs too, and replaying the log rebuilds the
/// state the service had.
struct CronRecoveryTests {
    /// Ten minutes of a job firing every minute (tasks take 30 seconds; a run's first attempt
    /// fails in odd minutes and is retried a minute later), a dependent job after it, and a
    /// Forbid job whose runs take 90 seconds; then the scheduled jobs are suspended and the runs
    /// in flight drain. With `crashAfterRecords`, the service dies once its log holds that many
    /// records and restarts at the next event.
    static func scenario(crashAfterRecords: Int?) -> CronHarness {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.crashAfterRecords = crashAfterRecords
        harness.put(#"{"name": "minutely", "command": "work", "schedule": "* * * * *", "retries": 1}"#)
        harness.put(#"{"name": "after", "command": "report", "parents": ["minutely"]}"#)
        harness.put(#"{"name": "exclusive", "command": "long", "schedule": "* * * * *", "concurrencyPolicy": "Forbid"}"#)
        for step in 1...90 {
            harness.advance(seconds: 10)
            if step == 60 {
                harness.run { $0.suspend("minutely", now: $1, wallTimeMs: $2) }
                harness.run { $0.suspend("exclusive", now: $1, wallTimeMs: $2) }
            }
            harness.tick()
            for task in harness.tasks.values.sorted(by: { ($0.runId, $0.attempt) < ($1.runId, $1.attempt) }) where task.state == .running {
                let age = harness.wallTimeMs - task.startedAtMs
                let minute = task.runId.scheduledMs / 60_000
                switch task.runId.jobName {
                case "exclusive" where age >= 90_000:
                    harness.end(task.runId, attempt: task.attempt, .succeeded)
                case "minutely" where age >= 30_000:
                    harness.end(task.runId, attempt: task.attempt, task.attempt == 0 && minute % 2 == 1 ? .failed : .succeeded)
                case "after" where age >= 30_000:
                    harness.end(task.runId, attempt: task.attempt, .succeeded)
                default:
                    break
                }
            }
        }
        harness.ensureUp()
        return harness
    }

    static let minutes = (1...9).map { "2025-01-01T00:0\($0):00Z" } + ["2025-01-01T00:10:00Z"]

    @Test func withoutACrashEveryMinuteRunsOnceAndRetriesAndDependentsFollow() {
        let harness = Self.scenario(crashAfterRecords: nil)
        #expect(harness.restarts == 0)
        #expect(harness.doubleStarts.isEmpty)
        #expect(harness.firstAttempts(of: "minutely") == Self.minutes)
        // Odd minutes failed once and were retried: all ten succeeded.
        #expect(harness.tasks(of: "minutely").count == 15)
        #expect(harness.stats("minutely").successCount == 10)
        #expect(harness.stats("after").successCount == 10)
        #expect(harness.firstAttempts(of: "after").count == 10)
        // Forbid: each run takes 90 s, so every other minute is skipped.
        #expect(harness.firstAttempts(of: "exclusive") == ["00:01", "00:03", "00:05", "00:07", "00:09"].map { "2025-01-01T\($0):00Z" })
        #expect(harness.stats("exclusive").skippedCount == 5)
        #expect(harness.state.runs.isEmpty)
        // The log rebuilds the same state.
        let replayed = harness.replayed()
        #expect(replayed.jobs == harness.state.jobs)
        #expect(replayed.statuses == harness.state.statuses)
        #expect(replayed.runs == harness.state.runs)
    }

    @Test func aCrashAfterAnyRecordStartsEveryScheduledRunExactlyOnce() {
        let total = Self.scenario(crashAfterRecords: nil).log.count
        #expect(total > 50)
        var relaunches = 0
        for crashPoint in 1...total {
            let harness = Self.scenario(crashAfterRecords: crashPoint)
            relaunches += harness.relaunches
            let context = Comment(rawValue: "crash after record \(crashPoint) of \(total)")
            #expect(harness.restarts == 1, context)
            #expect(harness.doubleStarts.isEmpty, context)
            #expect(harness.firstAttempts(of: "minutely") == Self.minutes, context)
            #expect(harness.stats("minutely").successCount == 10, context)
            #expect(harness.stats("minutely").missedCount == 0, context)
            // Each success of the parent started the dependent job once.
            #expect(harness.firstAttempts(of: "after").count == 10, context)
            #expect(harness.stats("after").successCount == 10, context)
            // Each exclusive minute was started or skipped, never both, never twice.
            let started = Set(harness.firstAttempts(of: "exclusive"))
            let skipped = harness.log.compactMap { record -> String? in
                if case .runSkipped(let id, _, _) = record, id.jobName == "exclusive" { return utc(id.scheduledMs) }
                return nil
            }
            #expect(started.isDisjoint(with: skipped), context)
            #expect(started.count + skipped.count == 10, context)
            #expect(harness.running("exclusive").isEmpty, context)
            #expect(harness.state.runs.isEmpty, context)
            let replayed = harness.replayed()
            #expect(replayed.statuses == harness.state.statuses, context)
            if !harness.doubleStarts.isEmpty || harness.firstAttempts(of: "minutely") != Self.minutes { break }
        }
        // Some crashes fell between logging a start and reaching the master.
        #expect(relaunches > 10)
    }

    @Test func aRunInFlightIsReconciledAndOnlyStartedAgainIfTheMasterNeverHadIt() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "j", "command": "x", "schedule": "* * * * *"}"#)
        harness.advance(to: "2025-01-01T00:01:00Z")
        // The start is logged, and the service dies before it reaches the master.
        harness.crashAfterRecords = harness.log.count + 1
        harness.tick()
        #expect(harness.isDown)
        #expect(harness.tasks(of: "j").isEmpty)
        harness.advance(seconds: 5)
        harness.ensureUp()
        // Recovery asked the master, which never had the task: the same attempt started once.
        #expect(harness.tasks(of: "j").map { "\($0.runId) \($0.attempt)" } == ["j@20250101T000100Z 0"])
        #expect(harness.doubleStarts.isEmpty)
        // A run the master has is not started again after another kill -9, and its end,
        // which the service missed while down, reaches it through recovery.
        harness.run { $0.runNow("j", now: $1, wallTimeMs: $2) }
        let manual = harness.state.runs(of: "j").first { $0.kind == .manual }!.id
        harness.isDown = true
        harness.tasks[CronState.taskId(manual, attempt: 0)]?.state = .ended(.succeeded)
        harness.advance(seconds: 1)
        harness.ensureUp()
        #expect(harness.doubleStarts.isEmpty)
        #expect(harness.stats("j").successCount == 1)
        #expect(harness.tasks(of: "j").count == 2)
        #expect(harness.state.runs(of: "j").map(\.kind) == [.scheduled])
    }

    @Test func aRunWaitingToRetryWhenTheServiceStopsIsRetriedAfterADelayFromTheRestart() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "j", "command": "x", "schedule": "0 * * * *"}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        harness.end(runId("j", "2025-01-01T01:00:00Z"), attempt: 0, .failed)
        harness.advance(seconds: 30)
        var restarted = harness.replayed()
        let recovered = restarted.recover(now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(recovered.actions.isEmpty && recovered.records.isEmpty)
        #expect(restarted.nextRetryDeadline == harness.now.advanced(byMilliseconds: 60_000))
        let early = restarted.tick(now: harness.now.advanced(byMilliseconds: 59_999), wallTimeMs: harness.wallTimeMs + 59_999)
        #expect(early.actions.isEmpty)
        let due = restarted.tick(now: harness.now.advanced(byMilliseconds: 60_000), wallTimeMs: harness.wallTimeMs + 60_000)
        #expect(due.actions == [.start(runId("j", "2025-01-01T01:00:00Z"), attempt: 1, job: restarted.jobs["j"]!, arguments: nil)])
    }

    @Test func aDependentJobWhoseParentsSucceededJustBeforeTheStopStartsOnRecovery() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "p", "command": "x", "schedule": "0 * * * *"}"#)
        harness.put(#"{"name": "c", "command": "y", "parents": ["p"]}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        // The parent's end is logged; the service dies before the child's start is.
        harness.crashAfterRecords = harness.log.count + 1
        harness.end(runId("p", "2025-01-01T01:00:00Z"), attempt: 0, .succeeded)
        #expect(harness.tasks(of: "c").isEmpty)
        harness.ensureUp()
        #expect(harness.firstAttempts(of: "c") == ["2025-01-01T01:00:00Z"])
        // And a second recovery does not start it again.
        var again = harness.replayed()
        let outcome = again.recover(now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(!outcome.actions.contains { if case .start = $0 { true } else { false } })
    }

    @Test func recordsSurviveEncodingAsTheyAreStoredOnTheDFS() throws {
        let harness = Self.scenario(crashAfterRecords: nil)
        let encoder = JSONEncoder()
        let decoder = JSONDecoder()
        var kinds: Set<String> = []
        for record in harness.log {
            let decoded = try decoder.decode(CronRecord.self, from: try encoder.encode(record))
            #expect(decoded == record)
            kinds.insert(String(describing: record).prefix { $0 != "(" }.description)
        }
        #expect(kinds.isSuperset(of: ["jobAdded", "runStarted", "runEnded", "runSkipped", "suspended"]))
        let more: [CronRecord] = [
            .jobUpdated(job(#"{"name": "x", "command": "x", "parents": ["a"]}"#), atMs: 1),
            .jobRemoved(name: "x", atMs: 2),
            .killRequested(runId("x y", "2025-01-01T00:00:00Z"), atMs: 3),
            .runsMissed(jobName: "x", scheduledMs: [1, 2], count: 7, handledThroughMs: 2, atMs: 4),
            .resumed(name: "x", atMs: 5),
        ]
        for record in more {
            #expect(try decoder.decode(CronRecord.self, from: try encoder.encode(record)) == record)
        }
    }

    @Test func aSnapshotTakenAfterAnyRecordAndTheRecordsAfterItRebuildTheState() throws {
        let harness = Self.scenario(crashAfterRecords: nil)
        let encoder = JSONEncoder()
        let decoder = JSONDecoder()
        for cut in stride(from: 0, through: harness.log.count, by: 7) {
            // The state after `cut` records, snapshotted as the log stores it (JSON).
            var before = CronState(failureRetryDelayMilliseconds: harness.state.failureRetryDelayMilliseconds)
            for record in harness.log[..<cut] { before.apply(record, now: harness.now) }
            let snapshot = try decoder.decode([CronRecord].self, from: try encoder.encode(before.snapshotRecords()))
            var rebuilt = CronState(failureRetryDelayMilliseconds: harness.state.failureRetryDelayMilliseconds)
            for record in snapshot + harness.log[cut...] { rebuilt.apply(record, now: harness.now) }
            #expect(rebuilt.jobs == harness.state.jobs, "cut at \(cut)")
            #expect(rebuilt.statuses == harness.state.statuses, "cut at \(cut)")
            #expect(rebuilt.runs == harness.state.runs, "cut at \(cut)")
            #expect(rebuilt.schedule(of: "minutely") != nil)
        }
    }
}
