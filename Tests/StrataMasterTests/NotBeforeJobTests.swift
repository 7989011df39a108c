import Foundation
import StrataCompute
import StrataCore
import StrataTestKit
import Testing

/// Jobs submitted with `notBefore`: placed and prepared at once, their tasks' commands started
/// no earlier than that wall time, by real agents.
@Suite(.serialized) struct NotBeforeJobTests {
    /// A one-task service job running `command` as the task user.
    static func job(_ command: String, notBefore: Int64?) -> ComputeAPI.JobSubmission {
        var submission = ComputeAPI.JobSubmission(arguments: ["/bin/sh", "-c", command], inputs: [], output: "")
        submission.service = ServiceTask(portCount: 0)
        submission.memMB = 32
        submission.cpus = 0.1
        submission.maxAttempts = 1
        submission.notBefore = notBefore
        return submission
    }

    /// A temporary directory every user may write in, for a task to leave a mark.
    static func withMarkDirectory<Result>(_ body: (String) async throws -> Result) async throws -> Result {
        let directory = NSTemporaryDirectory() + "strata-marks-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o777)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try await body(directory)
    }

    /// Waits (on the master's changes, within a bound) until the job's first attempt is in one
    /// of `states`, and returns it.
    static func waitForAttempt(_ cluster: LocalCluster, _ jobId: String, in states: Set<TaskState>) async throws -> TaskAttempt {
        let clock = SystemClock()
        let deadline = clock.now + .seconds(30)
        while true {
            let seen = cluster.master!.stateChanges.count
            if let attempt = cluster.master!.attempts(ofJob: jobId).first, states.contains(attempt.state) { return attempt }
            try #require(clock.now < deadline, "job \(jobId) never had an attempt in \(states): \(cluster.master!.attempts(ofJob: jobId))")
            await clock.wait(for: cluster.master!.stateChanges, after: seen, until: deadline)
        }
    }

    @Test func aJobWithNotBeforeIsPlacedAtOnceAndItsCommandStartsNoEarlier() async throws {
        try await withComputeCluster { cluster in try await Self.withMarkDirectory { marks in
            _ = try await makeHome(cluster)
            let clock = SystemClock()
            let notBefore = clock.wallTimeMs + 3_000
            let job = try await submit(cluster, Self.job("date +%s%3N > \(marks)/started", notBefore: notBefore))
            #expect(job.notBefore == notBefore)
            // Placed and handed to its agent (which prepares it) well before its time.
            let staged = try await Self.waitForAttempt(cluster, job.id, in: [.staging, .starting])
            #expect(staged.stagedAtMs < notBefore)
            #expect(clock.wallTimeMs < notBefore, "placing took until the not-before time")
            #expect(!FileManager.default.fileExists(atPath: "\(marks)/started"))

            let ended = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 60)
            #expect(ended.state == .finished, "\(ended.message ?? "")")
            let attempt = try #require(cluster.master!.attempts(ofJob: job.id).first)
            let running = try #require(attempt.runningAtMs)
            #expect(running >= notBefore)
            let started = try #require(Int64((try String(contentsOfFile: "\(marks)/started", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(started >= notBefore, "the command started \(notBefore - started) ms early")
        } }
    }

    @Test func aTaskKilledBeforeItsNotBeforeNeverStartsItsCommand() async throws {
        try await withComputeCluster { cluster in try await Self.withMarkDirectory { marks in
            _ = try await makeHome(cluster)
            let notBefore = SystemClock().wallTimeMs + 120_000
            let job = try await submit(cluster, Self.job("touch \(marks)/ran", notBefore: notBefore))
            // The agent has it (it reported STARTING), then it is killed.
            _ = try await Self.waitForAttempt(cluster, job.id, in: [.starting])
            #expect(try await callMaster(cluster, .POST, "/api/v1/jobs/\(job.id)/kill").status == 200)
            let attempt = try await Self.waitForAttempt(cluster, job.id, in: [.killed])
            #expect(attempt.runningAtMs == nil)
            #expect(attempt.message?.contains("never started") == true, "\(attempt.message ?? "")")
            let ended = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 30)
            #expect(ended.state == .killed)
            #expect(!FileManager.default.fileExists(atPath: "\(marks)/ran"))
        } }
    }

    @Test func aPastNotBeforeStartsAtOnceAndBadOnesAreRefusedWithAMessage() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            let now = SystemClock().wallTimeMs
            let refused: [String] = [
                #"{"arguments":["true"],"inputs":[],"output":"","service":{"portCount":0,"labels":{}},"notBefore":-1}"#,
                #"{"arguments":["true"],"inputs":[],"output":"","service":{"portCount":0,"labels":{}},"notBefore":\#(now + 2 * 3_600_000)}"#,
                #"{"arguments":["true"],"inputs":[],"output":"","service":{"portCount":0,"labels":{}},"notBefore":"soon"}"#,
            ]
            for body in refused {
                let reply = try await callMaster(cluster, .POST, "/api/v1/jobs", body: body)
                #expect(reply.status == 400, "\(body): \(reply.status) \(reply.body)")
                let message = (try? JSONSerialization.jsonObject(with: Data(reply.body.utf8))) as? [String: Any]
                #expect(message?["message"] is String, "\(reply.body)")
            }
            // Too many statuses in one agent report: refused, nothing changed.
            let statuses = Array(repeating: #"{"taskId":"t","state":"TASK_RUNNING"}"#, count: ComputeAPI.StatusReports.maximumCount + 1)
            let report = try await callMaster(
                cluster, .POST, "/api/v1/agents/nobody/statuses", user: nil, body: #"{"statuses":[\#(statuses.joined(separator: ","))]}"#)
            #expect(report.status == 400, "\(report.body)")
            #expect(cluster.master!.attempts(ofJob: "t").isEmpty)

            // The master still serves: a not-before time already past starts at once.
            let job = try await submit(cluster, Self.job("true", notBefore: now - 60_000))
            let ended = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 60)
            #expect(ended.state == .finished, "\(ended.message ?? "")")
        }
    }
}
