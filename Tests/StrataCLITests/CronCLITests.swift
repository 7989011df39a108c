import Foundation
import Glibc
import Testing

/// `strata cron` as a user runs it, against a name node, a data node, a master, an agent and
/// `strata cron serve`, each a process of its own on loopback. Runs run as `nobody` (agents
/// refuse root tasks). HOME is a directory of the test's own and STRATA_TOKEN is empty, so
/// nothing reads or writes the real ~/.strata.
@Suite(.serialized) struct CronCLITests {
    static let taskUser = "nobody"
    /// Chronos' jobs ask for 256 MB of disk by default: the agent offers room for many.
    static let agentResources = "cpus:4;mem:4096;disk:8192"

    /// The cluster with its compute side and a cron service, and the environment `strata cron`
    /// runs in (STRATA_CRON naming that service).
    static func startCluster() throws -> (cluster: ProcessCluster, environment: [String: String]) {
        let cluster = try ProcessCluster(dataNodes: 1)
        try cluster.waitUntilReady(dataNodes: 1)
        try cluster.startCompute(agentResources: agentResources)
        let isolated = try AppCLITests.isolatedEnvironment(in: cluster.directory)
        try cluster.startCron(taskUser: taskUser, environment: isolated)
        return (cluster, environment(cluster, isolated))
    }

    static func environment(_ cluster: ProcessCluster, _ isolated: [String: String]) -> [String: String] {
        var environment = cluster.environment.merging(isolated) { $1 }
        environment["STRATA_CRON"] = "http://127.0.0.1:\(cluster.cronPort)"
        return environment
    }

    /// Writes a job definition into the cluster's directory and returns its path.
    static func jobFile(_ cluster: ProcessCluster, _ name: String, _ json: String) throws -> String {
        let path = cluster.directory + "/" + name
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `strata cron history NAME --json`, decoded.
    static func history(_ name: String, _ environment: [String: String]) throws -> [String: Any] {
        let result = try strata(["cron", "history", name, "--json"], environment: environment)
        guard result.status == 0, let history = try AppCLITests.json(result.output) as? [String: Any] else {
            throw ProcessClusterError(message: "strata cron history \(name) failed: \(result.error)")
        }
        return history
    }

    static func entries(_ history: [String: Any]) -> [[String: Any]] { history["history"] as? [[String: Any]] ?? [] }
    static func inFlight(_ history: [String: Any]) -> [[String: Any]] { history["inFlight"] as? [[String: Any]] ?? [] }

    /// The master's jobs of a cron job's runs (`GET /api/v1/jobs?label=strata.cron.job=NAME`).
    static func masterJobs(_ cluster: ProcessCluster, of job: String) throws -> [[String: Any]] {
        let reply = try cluster.callMaster("GET", "/api/v1/jobs?label=strata.cron.job=\(job)")
        guard reply.status == 200, let jobs = reply.json as? [[String: Any]] else {
            throw ProcessClusterError(message: "the master's jobs of \(job): \(reply.status) \(reply.text)")
        }
        return jobs
    }

    /// A master job id of a cron run, `cron.<job>.<yyyyMMddTHHmmss.SSSZ>.<attempt>`, as its
    /// scheduled time and attempt.
    static func scheduledTimeAndAttempt(_ id: String, job: String) -> (time: String, attempt: Int)? {
        let parts = id.split(separator: ".").map(String.init)
        guard parts.count == 5, parts[0] == "cron", parts[1] == job, let attempt = Int(parts[4]) else { return nil }
        return (parts[2] + "." + parts[3], attempt)
    }

    /// `2026-03-09T07:30:00Z` or `2026-03-09T07:30:00.250Z`.
    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    @Test func aJobIsAddedListedShownRunSuspendedResumedAndRemoved() throws {
        let (cluster, environment) = try Self.startCluster()
        func cron(_ arguments: [String], input: Data? = nil) throws -> CommandResult {
            try strata(["cron"] + arguments, environment: environment, input: input)
        }
        let failureContext = { "\ncron log:\n\(cluster.logTail("cron.log"))" }

        // add, from standard input: every second from now on, stored with its start written out.
        let added = try cron(["add", "-"], input: Data(#"{"name": "tick", "command": "true", "schedule": "R//PT1S", "cpus": 0.1, "mem": 32, "disk": 1}"#.utf8))
        try #require(added.status == 0, "\(added.error)\(failureContext())")
        #expect(added.output.hasPrefix("job tick stored: R/") && added.output.hasSuffix("Z/PT1S\n"), "\(added.output)")

        // ls: its schedule, counts and state; --json: the job as the service shows it.
        let listed = try cron(["ls"])
        try #require(listed.status == 0, "\(listed.error)")
        #expect(listed.output.hasPrefix("NAME"), "\(listed.output)")
        for column in ["SCHEDULE", "LAST SUCCESS", "LAST ERROR", "SUCCESSES", "ERRORS", "STATE"] { #expect(listed.output.contains(column)) }
        let row = try #require(AppCLITests.rows(listed.output).first, "\(listed.output)")
        #expect(row.count == 7 && row[0] == "tick" && row[1].hasPrefix("R/") && row[1].hasSuffix("/PT1S"), "\(listed.output)")
        #expect(["idle", "running", "queued"].contains(row[6]), "\(listed.output)")
        let listedJSON = try #require(try AppCLITests.json(try cron(["ls", "--json"]).output) as? [[String: Any]])
        #expect(listedJSON.count == 1 && listedJSON.first?["name"] as? String == "tick" && listedJSON.first?["command"] as? String == "true")

        // show: Chronos' JSON, defaults filled in.
        let shown = try cron(["show", "tick"])
        try #require(shown.status == 0, "\(shown.error)")
        let job = try #require(try AppCLITests.json(shown.output) as? [String: Any])
        #expect(job["name"] as? String == "tick" && job["command"] as? String == "true" && job["retries"] as? Int == 2, "\(shown.output)")
        #expect((job["schedule"] as? String).map { $0 == row[1] } == true, "\(shown.output)")

        // next --count 3: three fire times one second apart, still to come.
        let beforeNext = Date()
        let next = try cron(["next", "tick", "--count", "3"])
        try #require(next.status == 0, "\(next.error)")
        let times = next.output.split(separator: "\n").compactMap { Self.date(String($0)) }
        try #require(times.count == 3, "\(next.output)")
        #expect(abs(times[1].timeIntervalSince(times[0]) - 1) < 0.001 && abs(times[2].timeIntervalSince(times[1]) - 1) < 0.001, "\(next.output)")
        #expect(times[0] > beforeNext.addingTimeInterval(-1), "\(next.output)")
        #expect(try AppCLITests.json(try cron(["next", "tick", "--count", "2", "--json"]).output) as? [String] != nil)

        // history: the scheduled runs succeed, one a second.
        let succeeded = try secondsUntil(timeoutSeconds: 60, intervalSeconds: 0.3) {
            try jsonCount(Self.history("tick", environment), "successCount") >= 2
        }
        try #require(succeeded != nil, "no two successful runs\(failureContext())")
        let table = try cron(["history", "tick"])
        try #require(table.status == 0, "\(table.error)")
        #expect(table.output.hasPrefix("tick: ") && table.output.contains(" succeeded, "), "\(table.output)")
        #expect(table.output.contains("RUN") && table.output.contains(" scheduled ") && table.output.contains(" succeeded "), "\(table.output)")

        // run: a manual run of its own, besides the schedule.
        let ran = try cron(["run", "tick"])
        #expect(ran.status == 0 && ran.output == "started a run of job tick\n", "\(ran.output)\(ran.error)")
        let manual = try secondsUntil(timeoutSeconds: 60, intervalSeconds: 0.3) {
            try Self.entries(Self.history("tick", environment)).contains { $0["kind"] as? String == "manual" && $0["status"] as? String == "succeeded" }
        }
        #expect(manual != nil, "the manual run did not succeed\(failureContext())")

        // suspend: once the runs in flight are over, nothing more starts, through fire times to
        // come (watched on the service's counts and the master's jobs until then).
        let suspended = try cron(["suspend", "tick"])
        #expect(suspended.status == 0 && suspended.output == "suspended job tick\n", "\(suspended.output)\(suspended.error)")
        #expect(AppCLITests.rows(try cron(["ls"]).output).first?.last == "suspended")
        let settled = try secondsUntil(timeoutSeconds: 30, intervalSeconds: 0.2) { Self.inFlight(try Self.history("tick", environment)).isEmpty }
        try #require(settled != nil, "runs still in flight after suspend")
        let atSuspend = try Self.history("tick", environment)
        let masterJobsAtSuspend = try Self.masterJobs(cluster, of: "tick").count
        let quietUntil = Date().addingTimeInterval(3.5)
        while Date() < quietUntil {
            let now = try Self.history("tick", environment)
            #expect(jsonCount(now, "successCount") == jsonCount(atSuspend, "successCount") && Self.inFlight(now).isEmpty, "a run while suspended: \(now)")
            #expect(jsonCount(now, "missedCount") == jsonCount(atSuspend, "missedCount"))
            usleep(300_000)
        }
        #expect(try Self.masterJobs(cluster, of: "tick").count == masterJobsAtSuspend)

        // resume: runs start again at the next fire times.
        let resumed = try cron(["resume", "tick"])
        #expect(resumed.status == 0 && resumed.output == "resumed job tick\n", "\(resumed.output)\(resumed.error)")
        let again = try secondsUntil(timeoutSeconds: 60, intervalSeconds: 0.3) {
            try jsonCount(Self.history("tick", environment), "successCount") > jsonCount(atSuspend, "successCount")
        }
        #expect(again != nil, "no run after resume\(failureContext())")

        // Every run was one master job, each scheduled time once.
        let jobs = try Self.masterJobs(cluster, of: "tick")
        let ids = jobs.compactMap { $0["id"] as? String }
        #expect(Set(ids).count == ids.count && ids.allSatisfy { Self.scheduledTimeAndAttempt($0, job: "tick")?.attempt == 1 }, "\(ids)")

        // rm: gone from the list; asking for it again is the service's refusal.
        let removed = try cron(["rm", "tick"])
        #expect(removed.status == 0 && removed.output == "removed job tick\n", "\(removed.output)\(removed.error)")
        #expect(AppCLITests.rows(try cron(["ls"]).output).isEmpty)
        let gone = try cron(["show", "tick"])
        #expect(gone.status == 1 && gone.error == "strata cron show: Job 'tick' not found\n", "\(gone.error)")
    }

    @Test func aDependentJobRunsAfterItsParentAndRefusalsAreTheServicesMessages() throws {
        let (cluster, environment) = try Self.startCluster()
        func cron(_ arguments: [String], input: Data? = nil) throws -> CommandResult {
            try strata(["cron"] + arguments, environment: environment, input: input)
        }
        let failureContext = { "\ncron log:\n\(cluster.logTail("cron.log"))" }

        // A parent whose schedule is far away, and a child: the parent's manual run starts the child.
        let parent = try Self.jobFile(cluster, "extract.json", #"{"name": "extract", "command": "sleep 1", "schedule": "R/2099-01-01T00:00:00Z/P1D", "mem": 32, "disk": 1}"#)
        let child = try Self.jobFile(cluster, "load.json", #"{"name": "load", "command": "true", "parents": ["extract"], "mem": 32, "disk": 1}"#)
        let addedParent = try cron(["add", parent])
        #expect(addedParent.status == 0 && addedParent.output == "job extract stored: R/2099-01-01T00:00:00Z/P1D\n", "\(addedParent.output)\(addedParent.error)")
        let addedChild = try cron(["add", child])
        #expect(addedChild.status == 0 && addedChild.output == "job load stored: after:extract\n", "\(addedChild.output)\(addedChild.error)")
        let rows = AppCLITests.rows(try cron(["ls"]).output)
        #expect(rows.map { $0.prefix(2) } == [["extract", "R/2099-01-01T00:00:00Z/P1D"], ["load", "after:extract"]], "\(rows)")
        #expect(try Self.history("load", environment)["successCount"] as? Int == 0)

        #expect(try cron(["run", "extract"]).status == 0)
        let childRan = try secondsUntil(timeoutSeconds: 60, intervalSeconds: 0.3) {
            try jsonCount(Self.history("load", environment), "successCount") == 1
        }
        try #require(childRan != nil, "the dependent job did not run\(failureContext())")
        let parentRun = try #require(Self.entries(try Self.history("extract", environment)).first)
        let childRun = try #require(Self.entries(try Self.history("load", environment)).first)
        #expect(parentRun["status"] as? String == "succeeded" && childRun["kind"] as? String == "dependent", "\(parentRun) \(childRun)")
        let parentEnded = try #require((parentRun["endedAt"] as? String).flatMap(Self.date))
        let childStarted = try #require((childRun["startedAt"] as? String).flatMap(Self.date))
        #expect(childStarted >= parentEnded, "the child started at \(childStarted), before its parent ended at \(parentEnded)")
        let listed = try #require(AppCLITests.rows(try cron(["ls"]).output).first { $0.first == "load" })
        #expect(listed[2].hasSuffix("Z") && listed[3] == "-" && listed[4] == "1" && listed[5] == "0", "\(listed)")

        // Refusals: the service's message, exit status 1, nothing stored.
        let refused: [(file: String, json: String, error: String)] = [
            ("cycle.json", #"{"name": "extract", "command": "true", "parents": ["load"]}"#, #"job "extract" would make the dependencies cyclic"#),
            ("orphan.json", #"{"name": "orphan", "command": "true", "parents": ["ghost"]}"#, #"parent "ghost" of job "orphan" is not a job"#),
            ("badschedule.json", #"{"name": "bad", "command": "true", "schedule": "R/2026-13-01T00:00:00Z/PT1S"}"#,
                #"invalid ISO 8601 start "2026-13-01T00:00:00Z": month 13 does not exist"#),
            ("badcron.json", #"{"name": "bad", "command": "true", "schedule": "61 * * * *"}"#, #"invalid cron expression "61 * * * *": minute 61 is out of range 0-59"#),
            ("badzone.json", #"{"name": "bad", "command": "true", "schedule": "@daily", "scheduleTimeZone": "Mars/Olympus"}"#, "Mars/Olympus"),
            ("both.json", #"{"name": "bad", "command": "true", "schedule": "@daily", "parents": ["extract"]}"#, "not both"),
        ]
        for (file, json, error) in refused {
            let result = try cron(["add", try Self.jobFile(cluster, file, json)])
            #expect(result.status == 1, "\(file): \(result.output)")
            #expect(result.error.hasPrefix("strata cron add: ") && result.error.contains(error) && result.error.split(separator: "\n").count == 1,
                "\(file): \(result.error)")
        }
        #expect(AppCLITests.rows(try cron(["ls"]).output).map(\.first) == ["extract", "load"])
        #expect((try AppCLITests.json(try cron(["show", "extract"]).output) as? [String: Any])?["schedule"] as? String == "R/2099-01-01T00:00:00Z/P1D")

        // An unknown job, whatever the command.
        for command in [["show"], ["run"], ["rm"], ["history"], ["suspend"], ["resume"], ["next"], ["kill"]] {
            let result = try cron(command + ["nope"])
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(result.error == "strata cron \(command[0]): Job 'nope' not found\n", "\(command): \(result.error)")
        }
        let dependentNext = try cron(["next", "load"])
        #expect(dependentNext.status == 1 && dependentNext.error.contains("is a dependent job"), "\(dependentNext.error)")
    }

    /// Files that are no job are refused before any request, so with no service to reach the
    /// error is the file's; an unreachable service is named with its URL.
    @Test func badFilesAreRefusedBeforeAnyRequestAndAnUnreachableServiceIsNamed() throws {
        let directory = NSTemporaryDirectory() + "strata-cron-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var environment = try AppCLITests.isolatedEnvironment(in: directory)
        let port = freePort()
        environment["STRATA_CRON"] = "127.0.0.1:\(port)"

        let cases: [(name: String, content: String, error: String)] = [
            ("truncated.json", #"{"name": "x", "command": "#, "is not JSON: "),
            ("array.json", #"[{"name": "x", "command": "true"}]"#, "is not a job: that is a JSON object such as"),
            ("no-name.json", #"{"command": "true", "schedule": "R//PT1S"}"#, #": the job has no "name""#),
            ("number-name.json", #"{"name": 7, "command": "true", "schedule": "R//PT1S"}"#, #": "name" must be a string"#),
        ]
        for (name, content, error) in cases {
            let path = directory + "/" + name
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try strata(["cron", "add", path], environment: environment)
            #expect(result.status == 1, "\(name)")
            #expect(result.error.hasPrefix("strata cron add: \(path)") && result.error.contains(error), "\(name): \(result.error)")
        }
        let missing = try strata(["cron", "add", directory + "/none.json"], environment: environment)
        #expect(missing.status == 1 && missing.error == "strata cron add: \(directory)/none.json: no such file\n", "\(missing.error)")
        let notJSON = try strata(["cron", "add", "-"], environment: environment, input: Data("name: x\n".utf8))
        #expect(notJSON.status == 1 && notJSON.error.hasPrefix("strata cron add: standard input is not JSON: "), "\(notJSON.error)")

        // A good file goes as far as the request: the service, from STRATA_CRON, is not there.
        let good = directory + "/good.json"
        try #"{"name": "x", "command": "true", "schedule": "R//PT1S"}"#.write(toFile: good, atomically: true, encoding: .utf8)
        let unreachable = try strata(["cron", "add", good], environment: environment)
        #expect(unreachable.status == 1)
        #expect(unreachable.error == "strata cron add: cannot reach the cron service at http://127.0.0.1:\(port): Connection refused\n", "\(unreachable.error)")
        // --cron wins over the environment.
        let otherPort = freePort()
        let listed = try strata(["cron", "ls", "--cron", "http://127.0.0.1:\(otherPort)/"], environment: environment)
        #expect(listed.status == 1)
        #expect(listed.error == "strata cron ls: cannot reach the cron service at http://127.0.0.1:\(otherPort): Connection refused\n", "\(listed.error)")
        // Without either, the default port.
        environment["STRATA_CRON"] = ""
        let defaulted = try strata(["cron", "history", "x"], environment: environment)
        #expect(defaulted.status == 1 && defaulted.error.hasPrefix("strata cron history: cannot reach the cron service at http://127.0.0.1:4400: "),
            "\(defaulted.error)")
    }

    /// kill -9 of the cron service while a run is in flight (its master job RUNNING), started
    /// again on the same DFS while that run still runs: the service follows it to its end,
    /// counts it once, and every scheduled time has exactly one master job.
    @Test func aCronServiceKilledWithARunInFlightNeitherLosesNorDoublesARun() throws {
        try Self.killWithARunInFlight(restartingOnceTheRunEnded: false)
    }

    /// The same, but started again only once the run in flight at the kill has ended and its
    /// next fire time has passed: recovery must find the ended run on the master and count it,
    /// and start the missed time (within epsilon) once.
    @Test func aRunThatEndsWhileTheCronServiceIsDownIsCountedOnRecovery() throws {
        try Self.killWithARunInFlight(restartingOnceTheRunEnded: true)
    }

    /// Adds a job whose runs take 4 s, every 5 s; kills the cron service (SIGKILL) once a run's
    /// master job is RUNNING; starts it again at once, or once that job has FINISHED and its
    /// next fire time has passed; waits for the three fire times after the killed run to
    /// succeed, suspends the job and waits for its runs in flight to end. Then: one master job
    /// per scheduled time, each its first attempt; successes as many as master jobs; the killed
    /// run once in history, succeeded.
    static func killWithARunInFlight(restartingOnceTheRunEnded: Bool) throws {
        let periodSeconds = 5.0
        let (cluster, startEnvironment) = try Self.startCluster()
        let isolated = try AppCLITests.isolatedEnvironment(in: cluster.directory)
        var environment = startEnvironment
        func cron(_ arguments: [String]) throws -> CommandResult { try strata(["cron"] + arguments, environment: environment) }
        let failureContext = { "\ncron log:\n\(cluster.logTail("cron.log"))\nmaster log:\n\(cluster.logTail("master.log", characters: 1500))" }

        let file = try Self.jobFile(cluster, "slow.json", #"""
            {"name": "slow", "command": "sleep 4", "schedule": "R//PT5S", "mem": 32, "disk": 1,
             "successfulHistoryLimit": 100, "failedHistoryLimit": 100}
            """#)
        let added = try cron(["add", file])
        try #require(added.status == 0, "\(added.error)\(failureContext())")

        // Wait until a run's master job is RUNNING, then kill the service under it.
        var running: [String: Any]?
        let inFlight = try secondsUntil(timeoutSeconds: 60, intervalSeconds: 0.1) {
            running = try Self.masterJobs(cluster, of: "slow").first { $0["state"] as? String == "RUNNING" }
            return running != nil
        }
        try #require(inFlight != nil, "no run of slow reached RUNNING\(failureContext())")
        cluster.killCron()
        let killedId = try #require(running?["id"] as? String)
        let killedRun = try #require((running?["labels"] as? [String: String])?["strata.cron.run"], "\(String(describing: running))")
        print("killed the cron service while \(killedId) (run \(killedRun)) was running")

        let stamp = DateFormatter()
        stamp.locale = Locale(identifier: "en_US_POSIX")
        stamp.timeZone = TimeZone(identifier: "UTC")
        stamp.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        let killedTime = try #require(Self.scheduledTimeAndAttempt(killedId, job: "slow").flatMap { stamp.date(from: $0.time) })
        let nextTimes = (1...3).map { killedTime.addingTimeInterval(Double($0) * periodSeconds) }
        if restartingOnceTheRunEnded {
            let ended = try secondsUntil(timeoutSeconds: 30, intervalSeconds: 0.1) {
                try Self.masterJobs(cluster, of: "slow").contains { $0["id"] as? String == killedId && $0["state"] as? String == "FINISHED" }
                    && Date() > nextTimes[0].addingTimeInterval(0.5)
            }
            try #require(ended != nil, "\(killedId) did not finish\(failureContext())")
        }
        try cluster.startCron(taskUser: Self.taskUser, environment: isolated)
        environment = Self.environment(cluster, isolated)

        // The three fire times after the killed run, each succeeded.
        let laterRuns = Set(nextTimes.map { "slow@" + stamp.string(from: $0) })
        let more = try secondsUntil(timeoutSeconds: 90, intervalSeconds: 0.3) {
            let succeeded = Self.entries(try Self.history("slow", environment)).filter { $0["status"] as? String == "succeeded" }
            return laterRuns.isSubset(of: succeeded.compactMap { $0["runId"] as? String })
        }
        let laterHistory = more == nil ? try Self.history("slow", environment) : [:]
        try #require(more != nil, "not every one of \(laterRuns.sorted()) succeeded: \(laterHistory)\(failureContext())")
        // Stop the schedule and let the runs in flight end, so the counts and the master's jobs
        // can be compared.
        #expect(try cron(["suspend", "slow"]).status == 0)
        let settled = try secondsUntil(timeoutSeconds: 15, intervalSeconds: 0.2) { Self.inFlight(try Self.history("slow", environment)).isEmpty }
        let settledHistory = try Self.history("slow", environment)
        try #require(settled != nil, "runs still in flight after suspend: \(settledHistory)\(failureContext())")

        let history = try Self.history("slow", environment)
        let jobs = try Self.masterJobs(cluster, of: "slow")
        let ids = jobs.compactMap { $0["id"] as? String }
        #expect(Set(ids).count == ids.count, "\(ids)")
        // Every scheduled time has exactly one master job, its first attempt.
        var byTime: [String: [Int]] = [:]
        for id in ids {
            let parsed = try #require(Self.scheduledTimeAndAttempt(id, job: "slow"), "\(id)")
            byTime[parsed.time, default: []].append(parsed.attempt)
        }
        #expect(byTime.values.allSatisfy { $0 == [1] }, "\(byTime)")
        for time in nextTimes { #expect(byTime[stamp.string(from: time)] == [1], "\(stamp.string(from: time)): \(byTime)") }
        // Runs are submitted ahead of their time: the suspension killed those whose time had not
        // come (KILLED on the master, never started, `cancelled` in history); every other ran.
        let finished = jobs.filter { $0["state"] as? String == "FINISHED" }
        let cancelled = jobs.filter { $0["state"] as? String == "KILLED" }
        #expect(finished.count + cancelled.count == jobs.count, "\(jobs.map { ($0["id"] ?? "", $0["state"] ?? "") })")
        let cancelledRuns = Set(cancelled.compactMap { ($0["labels"] as? [String: String])?["strata.cron.run"] })
        let cancelledEntries = Self.entries(history).filter { $0["status"] as? String == "cancelled" }.compactMap { $0["runId"] as? String }
        #expect(Set(cancelledEntries) == cancelledRuns && cancelledEntries.count == cancelled.count, "\(cancelledEntries) \(cancelledRuns)")
        // Each run counted once: as many successes as master jobs that ran, none failed.
        #expect(jsonCount(history, "successCount") == finished.count && jsonCount(history, "errorCount") == 0, "\(history) \(ids)")
        let runIds = Self.entries(history).filter { $0["status"] as? String == "succeeded" }.compactMap { $0["runId"] as? String }
        #expect(Set(runIds).count == runIds.count && runIds.count == finished.count, "\(runIds) \(ids)")
        // The run in flight at the kill ended once, as a success of its first attempt.
        let killedEntries = Self.entries(history).filter { $0["runId"] as? String == killedRun }
        #expect(killedEntries.count == 1, "\(Self.entries(history))")
        #expect(killedEntries.first?["status"] as? String == "succeeded" && killedEntries.first?["attempts"] as? Int == 1, "\(killedEntries)")
    }
}
