import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import StrataClient
import StrataCluster
import StrataCompute
import StrataCore
import StrataCron
import StrataCronService
import StrataTestKit
import Testing

/// The cron service against a real cluster: Chronos' API, runs as master jobs named after
/// their run, dependent jobs, retries, refusals, and a restart that neither loses nor doubles
/// a run.
@Suite(.serialized) struct CronServiceTests {
    static let taskUser = "nobody"

    static func withCronCluster<Result>(cron: Bool = true, _ body: (LocalCluster) async throws -> Result) async throws -> Result {
        try await LocalCluster.withTemporary(prefix: "strata-cron-", { options in
            options.compute = true
            options.cron = cron
            options.cronTaskUser = taskUser
            options.cronRetryDelayMs = 200
            // Chronos' jobs ask for 256 MB of disk by default.
            options.agentResources = Resources(cpus: 4, memMB: 4096, diskMB: 8192)
            options.agentHeartbeatIntervalMs = 200
        }, body)
    }

    static func call(_ port: Int, _ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> HTTPReply {
        try await httpCall(port, method, path, body: body)
    }

    /// The master's jobs of a cron job's runs.
    static func masterJobs(_ cluster: LocalCluster, of job: String) async throws -> [ComputeAPI.JobView] {
        let reply = try await call(cluster.masterPort!, .GET, "/api/v1/jobs?label=strata.cron.job=\(job)")
        return try JSONDecoder().decode([ComputeAPI.JobView].self, from: Data(reply.body.utf8))
    }

    /// Waits (on the service's changes, within a bound) until `condition` holds of its state.
    static func waitFor(_ scheduler: CronScheduler, _ what: String, seconds: Double = 60, _ condition: (CronState) -> Bool) async throws {
        let clock = SystemClock()
        let deadline = clock.now + .seconds(seconds)
        while true {
            let seen = scheduler.stateChanges.count
            if condition(scheduler.snapshot()) { return }
            try #require(clock.now < deadline, "\(what): \(scheduler.snapshot().statuses)")
            await clock.wait(for: scheduler.stateChanges, after: seen, until: deadline)
        }
    }

    static func stats(_ state: CronState, _ job: String) -> CronJobStats { state.statuses[job]?.stats ?? CronJobStats() }

    @Test func scheduledAndDependentJobsRunThroughTheMaster() async throws {
        try await Self.withCronCluster { cluster in
            let port = cluster.cronPort!
            let scheduler = cluster.cron!
            let added = try await Self.call(port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"tick","command":"echo tick","schedule":"R3//PT1S","epsilon":"PT30S","owner":"ops@example.com"}"#)
            #expect(added.status == 204 && added.body.isEmpty, "\(added.body)")
            let child = try await Self.call(port, .POST, "/scheduler/dependency", body: #"{"name":"after tick","command":"echo after","parents":["tick"]}"#)
            #expect(child.status == 204, "\(child.body)")

            try await Self.waitFor(scheduler, "three ticks and a dependent run") { state in
                Self.stats(state, "tick").successCount == 3 && Self.stats(state, "after tick").successCount >= 1 && state.runs.isEmpty
            }
            // One master job per scheduled second, named after it, each run once.
            let ticks = try await Self.masterJobs(cluster, of: "tick")
            #expect(ticks.count == 3 && Set(ticks.map(\.id)).count == 3, "\(ticks.map(\.id))")
            #expect(ticks.allSatisfy { $0.state == .finished && $0.id.hasPrefix("cron.tick.") && $0.id.hasSuffix(".1") && $0.user == Self.taskUser })
            let after = try await Self.masterJobs(cluster, of: "after%20tick")
            #expect(after.count >= 1 && after.allSatisfy { $0.state == .finished && $0.labels?["strata.cron.job"] == "after tick" })

            // Chronos' reads.
            let jobs = try #require(try await Self.call(port, .GET, "/v1/scheduler/jobs").json as? [[String: Any]])
            #expect(jobs.compactMap { $0["name"] as? String } == ["after tick", "tick"])
            #expect(jobs.first { $0["name"] as? String == "tick" }?["successCount"] as? Int == 3)
            let found = try #require(try await Self.call(port, .GET, "/v1/scheduler/jobs/search?name=after").json as? [[String: Any]])
            #expect(found.compactMap { $0["name"] as? String } == ["after tick"])
            let dot = try await Self.call(port, .GET, "/v1/scheduler/graph/dot").body
            #expect(dot.contains("1 [ label=\"after tick\" ]") && dot.contains("2 [ label=\"tick\" ]") && dot.contains("2 -> 1;"), "\(dot)")
            #expect(try await Self.call(port, .GET, "/v1/scheduler/graph/csv").body.contains("tick"))
            #expect(try await Self.call(port, .GET, "/v1/scheduler/job/stat/tick").status == 200)
            let summary = try #require(try await Self.call(port, .GET, "/v1/scheduler/jobs/summary").json as? [String: Any])
            let summarized = try #require(summary["jobs"] as? [[String: Any]])
            #expect(summarized.first { $0["name"] as? String == "tick" }?["status"] as? String == "success")
            let stats = try #require(try await Self.call(port, .GET, "/scheduler/stats/99thPercentile").json as? [[String: Any]])
            #expect(Set(stats.compactMap { $0["jobNameLabel"] as? String }) == ["after tick", "tick"])
            // Chronos' leader is the service itself.
            let leader = try #require(try await Self.call(port, .GET, "/leader").json as? [String: Any])
            #expect(leader["leader"] as? String == "127.0.0.1:\(port)")

            // Run now: one more run of its own.
            #expect(try await Self.call(port, .PUT, "/v1/scheduler/job/tick").status == 204)
            try await Self.waitFor(scheduler, "the manual run") { Self.stats($0, "tick").successCount == 4 }
            #expect(try await Self.masterJobs(cluster, of: "tick").count == 4)

            #expect(try await Self.call(port, .DELETE, "/v1/scheduler/job/after%20tick").status == 204)
            #expect((try await Self.call(port, .GET, "/v1/scheduler/jobs").json as? [Any])?.count == 1)
            // Marked successful by hand: counted, with no run; an unknown job is answered false.
            let successes = Self.stats(scheduler.snapshot(), "tick").successCount
            let marked = try await Self.call(port, .PUT, "/v1/scheduler/job/success/tick")
            #expect(marked.status == 200 && marked.body == "marked job tick as successful: true", "\(marked.body)")
            #expect(Self.stats(scheduler.snapshot(), "tick").successCount == successes + 1)
            #expect(try await Self.masterJobs(cluster, of: "tick").count == 4)
            #expect(try await Self.call(port, .PUT, "/v1/scheduler/job/success/nope").body == "marked job nope as successful: false")
            #expect(try await Self.call(port, .GET, "/ping").status == 200)
            #expect(try await Self.call(port, .GET, "/metrics").body.contains("strata_cron_submissions_total"))
        }
    }

    /// A change (a run started or ended) wakes the tick only to work out when it is next due:
    /// twenty manual runs, forty changes, make no more ticks (each a look at every job) than
    /// the one a second the service makes anyway.
    @Test func runsStartingAndEndingDoNotMakeTheServiceTick() async throws {
        try await Self.withCronCluster { cluster in
            let port = cluster.cronPort!
            let scheduler = cluster.cron!
            let added = try await Self.call(port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"daily","command":"true","schedule":"R/2030-01-01T00:00:00Z/P1D"}"#)
            #expect(added.status == 204, "\(added.body)")
            let clock = SystemClock()
            let started = clock.now
            let ticksBefore = scheduler.ticks.count
            for _ in 0..<20 {
                #expect(try await Self.call(port, .PUT, "/v1/scheduler/job/daily").status == 204)
            }
            try await Self.waitFor(scheduler, "twenty manual runs") { Self.stats($0, "daily").successCount == 20 && $0.runs.isEmpty }
            let seconds = clock.now.milliseconds(since: started) / 1000
            let ticks = scheduler.ticks.count - ticksBefore
            #expect(ticks <= UInt64(seconds) + 2, "\(ticks) ticks in \(seconds) s")
        }
    }

    @Test func aFailingRunIsRetriedAsItsNextAttempt() async throws {
        try await Self.withCronCluster { cluster in
            let port = cluster.cronPort!
            let added = try await Self.call(port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"broken","command":"echo no >&2; exit 3","schedule":"R1//PT1S","retries":1}"#)
            #expect(added.status == 204, "\(added.body)")
            try await Self.waitFor(cluster.cron!, "the run failing twice") { Self.stats($0, "broken").errorCount == 1 && $0.runs.isEmpty }
            let attempts = try await Self.masterJobs(cluster, of: "broken").map(\.id).sorted()
            try #require(attempts.count == 2, "\(attempts)")
            #expect(attempts[0].hasSuffix(".1") && attempts[1].hasSuffix(".2"), "\(attempts)")
            #expect(attempts[0].dropLast(2) == attempts[1].dropLast(2))
        }
    }

    @Test func badJobsAreRefusedWithAMessageAndNothingIsStored() async throws {
        try await Self.withCronCluster { cluster in
            let port = cluster.cronPort!
            let refusals: [(String, String)] = [
                ("/v1/scheduler/iso8601", "{not json"),
                ("/v1/scheduler/iso8601", #"{"name":"x","command":"true","schedule":"R/2026-13-01T00:00:00Z/PT1H"}"#),
                ("/v1/scheduler/iso8601", #"{"name":"x","command":"true","schedule":"R//PT1H","scheduleTimeZone":"Mars/Olympus"}"#),
                ("/v1/scheduler/iso8601", #"{"name":"bad/name","command":"true","schedule":"R//PT1H"}"#),
                ("/v1/scheduler/iso8601", #"{"name":"x","command":"true","parents":["y"]}"#),
                ("/v1/scheduler/dependency", #"{"name":"x","command":"true","parents":["nobody-here"]}"#),
                ("/v1/scheduler/iso8601", #"{"name":"x","command":"true","cpus":"lots","schedule":"R//PT1H"}"#),
            ]
            for (path, body) in refusals {
                let reply = try await Self.call(port, .POST, path, body: body)
                #expect(reply.status == 400, "\(body): \(reply.status) \(reply.body)")
                #expect((reply.json as? [String: Any])?["message"] is String, "\(body): \(reply.body)")
            }
            // A cycle through an update is refused too.
            #expect(try await Self.call(port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"a","command":"true","schedule":"R//PT1H"}"#).status == 204)
            #expect(try await Self.call(port, .POST, "/v1/scheduler/dependency", body: #"{"name":"b","command":"true","parents":["a"]}"#).status == 204)
            let cycle = try await Self.call(port, .POST, "/v1/scheduler/dependency", body: #"{"name":"a","command":"true","parents":["b"]}"#)
            #expect(cycle.status == 400, "\(cycle.body)")
            #expect((try await Self.call(port, .GET, "/v1/scheduler/jobs").json as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["a", "b"])
            #expect(try await Self.call(port, .DELETE, "/v1/scheduler/job/nope").status == 400)
            #expect(try await Self.call(port, .PUT, "/v1/scheduler/job/nope").status == 400)
            #expect(try await Self.call(port, .GET, "/v1/scheduler/nonsense").status == 404)
        }
    }

    @Test func aRestartedServiceFollowsItsRunInFlightAndNeverStartsItAgain() async throws {
        try await Self.withCronCluster(cron: false) { cluster in
            // A snapshot every two records: the restart reads one.
            var cron = try await StandaloneCron.start(cluster, snapshotEveryRecords: 2)
            #expect(try await Self.call(cron.port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"later","command":"true","schedule":"R/2030-01-01T00:00:00Z/P1D"}"#).status == 204)
            let added = try await Self.call(cron.port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"slow","command":"sleep 2","schedule":"R1//PT1S"}"#)
            #expect(added.status == 204, "\(added.body)")
            // Stopped once the master runs it.
            let clock = SystemClock()
            let deadline = clock.now + .seconds(30)
            while try await Self.masterJobs(cluster, of: "slow").isEmpty {
                try #require(clock.now < deadline, "the run never reached the master")
                await clock.wait(for: cluster.master!.stateChanges, after: cluster.master!.stateChanges.count, until: clock.now + .milliseconds(200))
            }
            await cron.stop()

            cron = try await StandaloneCron.start(cluster, snapshotEveryRecords: 2)
            #expect(cron.service.scheduler.snapshot().jobs.keys.sorted() == ["later", "slow"])
            let snapshots = try await cluster.client().list("/system/cron").map { ($0.path as NSString).lastPathComponent }.filter { $0.hasPrefix("snapshot") }
            #expect(!snapshots.isEmpty, "\(snapshots)")
            try await Self.waitFor(cron.service.scheduler, "the run to end after the restart") { Self.stats($0, "slow").successCount == 1 && $0.runs.isEmpty }
            let jobs = try await Self.masterJobs(cluster, of: "slow")
            #expect(jobs.count == 1 && jobs[0].state == .finished, "\(jobs.map(\.id))")
            await cron.stop()
        }
    }

    /// The run's scheduled time: the next whole second at least `seconds` from now, as an ISO
    /// 8601 start and in milliseconds.
    static func fireTime(inAtLeast seconds: Int64) -> (text: String, ms: Int64) {
        let ms = (SystemClock().wallTimeMs / 1000 + seconds + 1) * 1000
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return (formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)), ms)
    }

    /// Waits (on the master's changes, within a bound) until the cron job has `count` master jobs.
    static func waitForMasterJobs(_ cluster: LocalCluster, of job: String, count: Int) async throws -> [ComputeAPI.JobView] {
        let clock = SystemClock()
        let deadline = clock.now + .seconds(30)
        while true {
            let seen = cluster.master!.stateChanges.count
            let jobs = try await Self.masterJobs(cluster, of: job)
            if jobs.count >= count { return jobs }
            try #require(clock.now < deadline, "the run never reached the master")
            await clock.wait(for: cluster.master!.stateChanges, after: seen, until: deadline)
        }
    }

    /// A run submitted ahead of its time, then the service stopped and started again before
    /// that time: the restarted service finds the run on the master, and it runs once, at its
    /// time.
    @Test func aRestartBetweenTheEarlySubmissionAndTheFireTimeRunsItExactlyOnce() async throws {
        try await Self.withCronCluster(cron: false) { cluster in
            var cron = try await StandaloneCron.start(cluster, submitAheadMs: 30_000)
            let fire = Self.fireTime(inAtLeast: 12)
            let added = try await Self.call(cron.port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"early","command":"true","schedule":"R1/\#(fire.text)/PT1M"}"#)
            #expect(added.status == 204, "\(added.body)")
            let submitted = try await Self.waitForMasterJobs(cluster, of: "early", count: 1)
            #expect(submitted.count == 1 && submitted[0].notBefore == fire.ms && submitted[0].state == .running, "\(submitted.map(\.id))")
            await cron.stop()

            cron = try await StandaloneCron.start(cluster, submitAheadMs: 30_000)
            try #require(SystemClock().wallTimeMs < fire.ms, "the restart took until the fire time; the test proves nothing")
            try await Self.waitFor(cron.service.scheduler, "the run to succeed after the restart") { Self.stats($0, "early").successCount == 1 && $0.runs.isEmpty }
            let jobs = try await Self.masterJobs(cluster, of: "early")
            #expect(jobs.count == 1 && jobs[0].state == .finished, "\(jobs.map(\.id))")
            let attempt = try #require(cluster.master!.attempts(ofJob: jobs[0].id).first)
            #expect((attempt.runningAtMs ?? 0) >= fire.ms)
            #expect(attempt.stagedAtMs < fire.ms)
            await cron.stop()
        }
    }

    /// Suspending a job whose run was submitted ahead kills that run before its time: the
    /// master job is killed, the task never runs, the history says cancelled, not failed.
    @Test func suspendingBeforeTheFireTimeCancelsTheRunSubmittedAhead() async throws {
        try await Self.withCronCluster(cron: false) { cluster in
            let cron = try await StandaloneCron.start(cluster, submitAheadMs: 60_000)
            let fire = Self.fireTime(inAtLeast: 30)
            let added = try await Self.call(cron.port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"paused","command":"true","schedule":"R/\#(fire.text)/PT1M"}"#)
            #expect(added.status == 204, "\(added.body)")
            let submitted = try await Self.waitForMasterJobs(cluster, of: "paused", count: 1)
            #expect(try await Self.call(cron.port, .PUT, "/v1/scheduler/job/paused/suspend").status == 204)
            let ended = try await cluster.master!.waitForJob(submitted[0].id, timeoutSeconds: 30)
            #expect(ended.state == .killed)
            #expect(cluster.master!.attempts(ofJob: submitted[0].id).allSatisfy { $0.runningAtMs == nil })
            try await Self.waitFor(cron.service.scheduler, "the run cancelled") { $0.runs.isEmpty }
            let status = try #require(cron.service.scheduler.snapshot().statuses["paused"])
            #expect(status.notRun.map(\.status) == [.cancelled] && status.failed.isEmpty && status.stats.errorCount == 0)
            try #require(SystemClock().wallTimeMs < fire.ms, "suspending took until the fire time; the test proves nothing")
            await cron.stop()
        }
    }

    @Test func imageAndDataLocalJobsRunAsTheirKindOfMasterJob() async throws {
        try await Self.withCronCluster { cluster in
            let port = cluster.cronPort!
            let admin = cluster.client()
            try await admin.mkdirs("/user/\(Self.taskUser)")
            try await admin.setOwner("/user/\(Self.taskUser)", owner: Self.taskUser, group: Self.taskUser)
            try await admin.mkdirs("/data")
            let file = try await admin.create("/data/lines.txt")
            try await file.write(Array("one\ntwo\nthree\n".utf8))
            try await file.close()
            let directory = cluster.directory + "/layout"
            _ = try TestLayout.write(
                at: directory, tag: "1", layers: [try TestLayout.busyboxLayer(), TestLayout.fileLayer("etc/motd", "hello from the image\n")],
                cmd: ["cat", "/etc/motd"])
            try await cluster.pushImage(from: directory, repository: "tools/busybox", tag: "1")

            let image = try await Self.call(port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"boxed","schedule":"R1//PT1S","container":{"type":"DOCKER","image":"tools/busybox:1"}}"#)
            #expect(image.status == 204, "\(image.body)")
            let counted = try await Self.call(port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"count","command":"wc -l","inputPath":"/data/lines.txt","schedule":"R1//PT1S"}"#)
            #expect(counted.status == 204, "\(counted.body)")
            try await Self.waitFor(cluster.cron!, "both runs succeeding") { state in
                Self.stats(state, "boxed").successCount == 1 && Self.stats(state, "count").successCount == 1
            }
            let boxed = try #require(try await Self.masterJobs(cluster, of: "boxed").first)
            #expect(boxed.image?.reference == "tools/busybox:1" && boxed.arguments == ["cat", "/etc/motd"], "\(boxed.arguments)")
            let count = try #require(try await Self.masterJobs(cluster, of: "count").first)
            #expect(count.inputs == ["/data/lines.txt"] && count.output.hasPrefix("/user/\(Self.taskUser)/.cron/"))
            let part = try await admin.readAll(count.output + "/part-00000")
            #expect(String(decoding: part, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "3")
            await admin.close()
        }
    }

    @Test func replaceKillsTheRunInFlightForTheNextOne() async throws {
        try await Self.withCronCluster { cluster in
            let port = cluster.cronPort!
            let added = try await Self.call(port, .POST, "/v1/scheduler/iso8601", body: #"{"name":"long","command":"exec sleep 600","schedule":"R2//PT2S","concurrencyPolicy":"Replace"}"#)
            #expect(added.status == 204, "\(added.body)")
            // The second scheduled run replaces the first: killed, not an error, not retried.
            try await Self.waitFor(cluster.cron!, "the second run in flight, the first killed") { state in
                state.runs.count == 1 && (state.statuses["long"]?.failed.count ?? 0) == 1 && state.runs.keys.first?.scheduledMs ?? 0 > (state.statuses["long"]?.failed.first?.runId.scheduledMs ?? .max)
            }
            let jobs = try await Self.masterJobs(cluster, of: "long").sorted { $0.id < $1.id }
            #expect(jobs.count == 2 && jobs[0].state == .killed && jobs[1].state == .running, "\(jobs.map { ($0.id, $0.state) })")
            #expect(Self.stats(cluster.cron!.snapshot(), "long").errorCount == 0)
            // Removing the job kills its run.
            #expect(try await Self.call(port, .DELETE, "/v1/scheduler/job/long").status == 204)
            _ = try await cluster.master!.waitForJob(jobs[1].id, timeoutSeconds: 30)
        }
    }
}

/// A cron service run on its own against a cluster's master, to stop and start again.
enum StandaloneCron {
    static func start(
        _ cluster: LocalCluster, snapshotEveryRecords: Int = 10_000, submitAheadMs: Int64 = 10_000
    ) async throws -> StandaloneService<CronService> {
        var configuration = CronConfiguration(masterAddress: "127.0.0.1:\(cluster.masterPort!)", taskUser: CronServiceTests.taskUser)
        configuration.port = 0
        configuration.snapshotEveryRecords = snapshotEveryRecords
        configuration.submitAheadMs = submitAheadMs
        var dfs = DFSClientConfiguration(user: "strata")
        dfs.nameNodePort = cluster.nameNodePort
        var logger = Logger(label: "cron-test")
        logger.logLevel = .warning
        let scheduler = CronScheduler(configuration: configuration, dfs: dfs, group: cluster.group, logger: logger)
        let service = CronService(scheduler: scheduler, group: cluster.group, logger: logger)
        return try await StandaloneService.start(service, ready: service.ready, logger: logger)
    }
}
