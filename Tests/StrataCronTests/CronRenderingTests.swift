import StrataCore
@testable import StrataCron
import Testing

/// What the API answers with: graph/dot, graph/csv, jobs, jobs/search, job/stat, history.
struct CronRenderingTests {
    func cluster() -> CronHarness {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "extract", "command": "python extract.py", "schedule": "0 * * * *"}"#)
        harness.put(#"{"name": "audit", "command": "audit --all", "schedule": "30 * * * *"}"#)
        harness.put(#"{"name": "load", "command": "hive -f load.sql", "parents": ["extract", "audit"]}"#)
        harness.put(#"{"name": "report", "command": "python report.py", "parents": ["load"]}"#)
        return harness
    }

    /// `cluster()` an hour in: audit's run at 00:30 succeeded, extract's at 01:00 just started.
    func auditSucceededAndExtractStarted() -> CronHarness {
        var harness = cluster()
        harness.advance(to: "2025-01-01T00:30:00Z")
        harness.tick()
        harness.end(runId("audit", "2025-01-01T00:30:00Z"), attempt: 0, .succeeded)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        return harness
    }

    @Test func graphDotIsWhatJGraphTsExporterWritesForChronos() {
        #expect(cluster().state.graphDot() == """
            digraph G {
              1 [ label="audit" ];
              2 [ label="extract" ];
              3 [ label="load" ];
              4 [ label="report" ];
              1 -> 3;
              2 -> 3;
              3 -> 4;
            }

            """)
        #expect(CronState().graphDot() == "digraph G {\n}\n")
    }

    @Test func graphCSVHasTheLastAndCurrentStateOfEachJobThenTheLinks() {
        var harness = auditSucceededAndExtractStarted()
        harness.end(runId("extract", "2025-01-01T01:00:00Z"), attempt: 0, .failed)
        #expect(harness.state.graphCSV() == """
            node,audit,success,idle
            node,extract,fresh,queued
            node,load,fresh,idle
            node,report,fresh,idle
            link,audit,load
            link,extract,load
            link,load,report

            """)
        harness.advance(seconds: 60)
        harness.tick()
        #expect(harness.state.graphCSV().hasPrefix("node,audit,success,idle\nnode,extract,fresh,running\n"))
    }

    @Test func searchMatchesNameAndCommandCaseInsensitivelyAndPages() {
        let state = cluster().state
        #expect(state.search(name: "LOA").map(\.name) == ["load"])
        #expect(state.search(command: "python").map(\.name) == ["extract", "report"])
        #expect(state.search(name: "extract", command: "python").map(\.name) == ["extract"])
        #expect(state.search(name: "extract", command: "hive").map(\.name) == [])
        // `any` adds the jobs it matches, as Chronos has it...
        #expect(state.search(name: "extract", command: "hive", any: "audit").map(\.name) == ["audit"])
        #expect(state.search(name: "report", any: "hive").map(\.name) == ["load", "report"])
        // ... and alone returns only those.
        #expect(state.search(any: "PY").map(\.name) == ["extract", "report"])
        #expect(state.search().map(\.name) == ["audit", "extract", "load", "report"])
        #expect(state.search(limit: 2, offset: 1).map(\.name) == ["extract", "load"])
        #expect(state.search(offset: 9).map(\.name) == [])
        #expect(state.search(limit: 0).map(\.name) == [])
        guard case .array(let found) = state.searchJSON(name: "load") else {
            Issue.record("search answered with something else than an array")
            return
        }
        #expect(found.map { $0["name"] } == [.string("load")])
        guard case .array(let all) = state.jobsJSON() else { return }
        #expect(all.count == 4)
        #expect(all[2]["parents"] == .array([.string("extract"), .string("audit")]))
    }

    @Test func searchReturnsAtMostTenJobsByDefault() {
        var state = CronState()
        for number in 0..<12 {
            _ = state.put(job("{\"name\": \"job-\(number)\", \"command\": \"x\", \"schedule\": \"@daily\"}"), now: .zero, wallTimeMs: 0)
        }
        #expect(state.search().count == 10)
    }

    @Test func jobStatHasAHistogramOfRunTimesAndTheTaskHistory() throws {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "j", "command": "x", "schedule": "0 * * * *", "retries": 0, "successfulHistoryLimit": 10}"#)
        for (hour, seconds) in [(1, 30), (2, 90), (3, 3_725)] {
            harness.advance(to: "2025-01-01T0\(hour):00:00Z")
            harness.tick()
            harness.advance(seconds: Int64(seconds))
            harness.end(runId("j", "2025-01-01T0\(hour):00:00Z"), attempt: 0, .succeeded)
        }
        harness.advance(to: "2025-01-01T05:00:00Z")
        harness.tick()
        harness.advance(seconds: 5)
        harness.end(runId("j", "2025-01-01T05:00:00Z"), attempt: 0, .failed)
        harness.advance(to: "2025-01-01T06:00:00Z")
        harness.tick()
        let stat = try harness.state.jobStatJSON("j")
        guard case .object(let histogramMembers) = stat["histogram"], case .array(let tasks) = stat["taskStatHistory"] else {
            Issue.record("job/stat has the wrong shape: \(stat.serialized)")
            return
        }
        #expect(histogramMembers.map(\.key) == ["75thPercentile", "95thPercentile", "98thPercentile", "99thPercentile", "median", "mean", "count"])
        #expect(stat["histogram"]?["count"] == .integer(3))
        #expect(stat["histogram"]?["median"] == .number(90_000))
        #expect(stat["histogram"]?["mean"] == .number((30_000 + 90_000 + 3_725_000) / 3))
        #expect(stat["histogram"]?["99thPercentile"] == .number(3_725_000))
        #expect(tasks.count == 5)
        #expect(tasks[0].serialized == #"{"taskId":"j@20250101T060000Z.0","jobName":"j","slaveId":"","startTime":"01/01/25 06:00:00","endTime":"N/A","status":"Running"}"#)
        #expect(tasks[1].serialized == #"{"taskId":"j@20250101T050000Z.0","jobName":"j","slaveId":"agent-1","startTime":"01/01/25 05:00:00","endTime":"01/01/25 05:00:05","duration":"5s","status":"Fail"}"#)
        #expect(tasks[2]["duration"] == .string("1h2m5s"))
        #expect(tasks[3]["duration"] == .string("1m30s"))
        #expect(tasks[4]["status"] == .string("Success"))
        #expect(throws: CronError.self) { try harness.state.jobStatJSON("nope") }
        #expect(CronState.statDuration(7_200_000) == "2h0s")
    }

    /// `jobs/summary` as Chronos writes it: `status` the last run's outcome, `state` whether a
    /// run is queued or running, an empty schedule for a dependent job.
    @Test func jobsSummaryHasEachJobsLastOutcomeStateScheduleAndParents() {
        let harness = auditSucceededAndExtractStarted()
        #expect(harness.state.jobsSummaryJSON().serialized == #"{"jobs":["#
            + #"{"name":"audit","status":"success","state":"idle","schedule":"30 * * * *","parents":[],"disabled":false},"#
            + #"{"name":"extract","status":"fresh","state":"running","schedule":"0 * * * *","parents":[],"disabled":false},"#
            + #"{"name":"load","status":"fresh","state":"idle","schedule":"","parents":["extract","audit"],"disabled":false},"#
            + #"{"name":"report","status":"fresh","state":"idle","schedule":"","parents":["load"],"disabled":false}]}"#)
        #expect(CronState().jobsSummaryJSON().serialized == #"{"jobs":[]}"#)
    }

    /// `stats/{percentile}`: every job's statistic in seconds, slowest first; a name that is
    /// no statistic gives an empty list, as in Chronos.
    @Test func statsListEveryJobsRunTimeStatisticSlowestFirst() {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "quick", "command": "x", "schedule": "0 * * * *", "retries": 0}"#)
        harness.put(#"{"name": "slow", "command": "x", "schedule": "0 * * * *", "retries": 0}"#)
        harness.put(#"{"name": "never", "command": "x", "schedule": "R/2099-01-01T00:00:00Z/P1D"}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        harness.advance(seconds: 2)
        harness.end(runId("quick", "2025-01-01T01:00:00Z"), attempt: 0, .succeeded)
        harness.advance(seconds: 88)
        harness.end(runId("slow", "2025-01-01T01:00:00Z"), attempt: 0, .succeeded)
        #expect(harness.state.statsJSON("99thPercentile").serialized
            == #"[{"jobNameLabel":"slow","time":90.0},{"jobNameLabel":"quick","time":2.0},{"jobNameLabel":"never","time":0.0}]"#)
        #expect(harness.state.statsJSON("median").serialized.hasPrefix(#"[{"jobNameLabel":"slow","#))
        #expect(harness.state.statsJSON("99th").serialized == "[]")
    }

    @Test func historyListsRunsLatestFirstWithTheirCounts() throws {
        var harness = CronHarness(at: "2025-01-01T00:00:30Z")
        harness.put(#"{"name": "j", "command": "x", "schedule": "0 * * * *", "retries": 0, "epsilon": "PT0S"}"#)
        harness.advance(to: "2025-01-01T01:00:00Z")
        harness.tick()
        harness.advance(seconds: 10)
        harness.end(runId("j", "2025-01-01T01:00:00Z"), attempt: 0, .succeeded)
        harness.advance(to: "2025-01-01T02:00:01Z")
        harness.tick()
        harness.advance(to: "2025-01-01T03:00:00Z")
        harness.tick()
        let history = try harness.state.historyJSON("j")
        #expect(history.serialized == #"""
            {"name":"j","successCount":1,"errorCount":0,"missedCount":1,"skippedCount":0,"inFlight":[{"runId":"j@20250101T030000Z","kind":"scheduled","attempt":0,"state":"running","startedAt":"2025-01-01T03:00:00.000Z"}],"history":[{"runId":"j@20250101T020000Z","scheduledTime":"2025-01-01T02:00:00.000Z","status":"missed","attempts":0,"endedAt":"2025-01-01T02:00:01.000Z"},{"runId":"j@20250101T010000Z","scheduledTime":"2025-01-01T01:00:00.000Z","status":"succeeded","kind":"scheduled","attempts":1,"startedAt":"2025-01-01T01:00:00.000Z","endedAt":"2025-01-01T01:00:10.000Z","agentId":"agent-1"}]}
            """#)
    }
}
