import Foundation
import StrataClient
import StrataCompute
import StrataCore
import StrataTestKit
import Testing

/// What tasks may do and what happens when they overstep: memory limits, containers, users,
/// kills and the cluster secret, on a real local cluster.
@Suite(.serialized) struct TaskLimitTests {
    @Test func aTaskOverItsMemoryLimitIsKilledAndSaysSo() async throws {
        try await withComputeCluster { cluster in
            let (home, _) = try await prepare(cluster)
            var submission = ComputeAPI.JobSubmission(
                arguments: ["python3", "-c", "x = bytearray(200 * 1024 * 1024); print(len(x))"], inputs: ["\(home)/in.txt"],
                output: "\(home)/out")
            submission.memMB = 32
            submission.maxAttempts = 1
            let job = try await submit(cluster, submission)
            let done = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 60)
            #expect(done.state == .failed)
            let attempt = try #require(cluster.master!.attempts(ofJob: job.id).first)
            #expect(attempt.state == .failed)
            #expect(attempt.reason == "REASON_CONTAINER_LIMITATION_MEMORY")
            #expect(attempt.message?.contains("Memory limit exceeded") == true, "\(attempt.message ?? "")")
            #expect(done.message?.contains("Memory limit exceeded") == true)
        }
    }

    @Test func aRuncTaskRunsFromABusyboxRootFilesystemAndItsOutputIsKept() async throws {
        let root = NSTemporaryDirectory() + "strata-rootfs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        for directory in ["proc", "dev", "sys", "tmp", "mnt/sandbox"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(directory)", withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: "/usr/bin/busybox", toPath: root + "/bin/busybox")
        for applet in ["sh", "grep", "cat", "wc"] {
            try FileManager.default.createSymbolicLink(atPath: "\(root)/bin/\(applet)", withDestinationPath: "busybox")
        }
        try await withComputeCluster { cluster in
            let (home, input) = try await prepare(cluster)
            var submission = ComputeAPI.JobSubmission(arguments: ["grep", "-c", "ERROR"], inputs: ["\(home)/in.txt"], output: "\(home)/out")
            submission.rootFilesystem = root
            submission.memMB = 64
            let job = try await submit(cluster, submission)
            let done = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 60)
            #expect(done.state == .finished, "\(done.message ?? "")")
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            let part = String(decoding: try await client.readAll("\(home)/out/part-00000"), as: UTF8.self)
            #expect(part.trimmingCharacters(in: .whitespacesAndNewlines) == String(countLines(input, containing: "ERROR")))
        }
    }

    @Test func aUserUnknownOnTheAgentsHostFailsTheTaskWithAClearReason() async throws {
        try await withComputeCluster { cluster in
            let (home, _) = try await prepare(cluster)
            let admin = cluster.client()
            defer { Task { await admin.close() } }
            try await admin.mkdirs("/shared")
            try await admin.setPermission("/shared", permission: 0o777)
            var submission = ComputeAPI.JobSubmission(arguments: ["cat"], inputs: ["\(home)/in.txt"], output: "/shared/out")
            submission.maxAttempts = 1
            let job = try await submit(cluster, submission, user: "no-such-user-here")
            let done = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 60)
            #expect(done.state == .failed)
            let attempt = try #require(cluster.master!.attempts(ofJob: job.id).first)
            #expect(attempt.reason == "REASON_TASK_INVALID")
            #expect(attempt.message?.contains("user 'no-such-user-here' does not exist") == true, "\(attempt.message ?? "")")
        }
    }

    @Test func killingAJobKillsItsRunningTasksAndOnlyItsUserOrTheSuperuserMay() async throws {
        try await withComputeCluster { cluster in
            let (home, _) = try await prepare(cluster)
            let job = try await submit(
                cluster, ComputeAPI.JobSubmission(arguments: ["sleep", "600"], inputs: ["\(home)/in.txt"], output: "\(home)/out"))
            let master = cluster.master!
            // Wait for the task to run.
            let clock = SystemClock()
            let deadline = clock.now + .seconds(60)
            while master.attempts(ofJob: job.id).first?.state != .running, clock.now < deadline {
                let seen = master.stateChanges.count
                await clock.wait(for: master.stateChanges, after: seen, until: deadline)
            }
            #expect(master.attempts(ofJob: job.id).first?.state == .running)
            #expect(try await callMaster(cluster, .POST, "/api/v1/jobs/\(job.id)/kill", user: "mallory").status == 403)
            #expect(try await callMaster(cluster, .POST, "/api/v1/jobs/\(job.id)/kill", user: "strata").status == 200)
            let done = try await master.waitForJob(job.id, timeoutSeconds: 30)
            #expect(done.state == .killed)
            while master.attempts(ofJob: job.id).first?.state == .running, clock.now < deadline {
                let seen = master.stateChanges.count
                await clock.wait(for: master.stateChanges, after: seen, until: deadline)
            }
            #expect(master.attempts(ofJob: job.id).first?.state == .killed)
        }
    }

    @Test func withAClusterSecretEveryCallNeedsItAndNothingStartsWithout() async throws {
        try await withComputeCluster({ $0.token = "s3cret-token" }) { cluster in
            let (home, _) = try await prepare(cluster)
            let body = #"{"arguments":["cat"],"inputs":["\#(home)/in.txt"],"output":"\#(home)/out"}"#
            let refused = try await callMaster(cluster, .POST, "/api/v1/jobs", body: body)
            #expect(refused.status == 401 && refused.body.contains("cluster secret"))
            #expect(try await callMaster(cluster, .GET, "/api/v1/jobs").status == 401)
            #expect(try await callMaster(cluster, .GET, "/api/v1/jobs", token: "wrong").status == 401)
            let accepted = try await callMaster(cluster, .POST, "/api/v1/jobs", body: body, token: "s3cret-token")
            #expect(accepted.status == 201)
            // Agents registered with the secret, and the master reached them with it: the job runs.
            let done = try await cluster.master!.waitForJob("job-1", timeoutSeconds: 60)
            #expect(done.state == .finished)
        }
    }
}
