import Foundation
import Logging
import StrataClient
import StrataCompute
import StrataCore
import StrataImages
import StrataTestKit
import Testing

/// Jobs whose tasks run from an image in the cluster's image store: resolved by the master,
/// unpacked by the agent into its cache, run with runc read-only with the job's limits.
@Suite(.serialized) struct ImageJobTests {
    /// Pushes a busybox image whose second layer holds /etc/motd, as `tools/busybox:1`.
    static func pushImage(_ cluster: LocalCluster, directory: String, cmd: [String]) async throws -> TestLayout {
        let layout = try TestLayout.write(
            at: directory, tag: "1", layers: [try TestLayout.busyboxLayer(), TestLayout.fileLayer("etc/motd", "hello from the image\n")],
            cmd: cmd)
        try await cluster.pushImage(from: directory, repository: "tools/busybox", tag: "1")
        return layout
    }

    static func onNode1(_ submission: inout ComputeAPI.JobSubmission) {
        submission.constraints = [Constraint(field: "hostname", operator: .like, value: "node1")]
        submission.localityWaitMs = 0
    }

    @Test func aTaskRunsFromAnImageInTheStoreAndTheSecondStartUsesTheCache() async throws {
        try await withComputeCluster { cluster in
            let (home, input) = try await prepare(cluster)
            let layout = try await Self.pushImage(cluster, directory: cluster.directory + "/layout", cmd: ["sh", "-c", "cat /etc/motd"])

            // The image's command (its Cmd) when none is given; the working directory and PATH
            // come from its config.
            var first = ComputeAPI.JobSubmission(arguments: [], inputs: ["\(home)/in.txt"], output: "\(home)/motd")
            first.image = "tools/busybox:1"
            first.memMB = 64
            Self.onNode1(&first)
            let firstJob = try await submit(cluster, first)
            #expect(firstJob.image?.manifestDigest == layout.manifest.description)
            #expect(firstJob.arguments == ["sh", "-c", "cat /etc/motd"])
            let firstDone = try await cluster.master!.waitForJob(firstJob.id, timeoutSeconds: 60)
            #expect(firstDone.state == .finished, "\(firstDone.message ?? "")")
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            let motd = String(decoding: try await client.readAll("\(home)/motd/part-00000"), as: UTF8.self)
            #expect(motd == "hello from the image\n")

            // The agent on node1 keeps the unpacked image. With its layers gone from the DFS, a
            // second task from the image still starts: from the cache, reading no layer.
            let cacheRoot = cluster.directory + "/node1/agent/images/rootfs"
            let entries = try FileManager.default.contentsOfDirectory(atPath: cacheRoot)
            #expect(entries.count == 1)
            let admin = cluster.client()
            defer { Task { await admin.close() } }
            for layer in layout.layers {
                #expect(try await admin.delete("/system/images/blobs/sha256/" + layer.hex, recursive: false))
            }
            var second = ComputeAPI.JobSubmission(arguments: ["busybox", "grep", "-c", "ERROR"], inputs: ["\(home)/in.txt"], output: "\(home)/errors")
            second.image = "tools/busybox:1"
            Self.onNode1(&second)
            let secondJob = try await submit(cluster, second)
            let secondDone = try await cluster.master!.waitForJob(secondJob.id, timeoutSeconds: 60)
            #expect(secondDone.state == .finished, "\(secondDone.message ?? "") \(cluster.master!.attempts(ofJob: secondJob.id).map { "\($0.reason ?? "") \($0.message ?? "")" })")
            let count = String(decoding: try await client.readAll("\(home)/errors/part-00000"), as: UTF8.self)
            #expect(count.trimmingCharacters(in: .whitespacesAndNewlines) == String(countLines(input, containing: "ERROR")))
            #expect(try FileManager.default.contentsOfDirectory(atPath: cacheRoot) == entries)
        }
    }

    @Test func aTaskFromAnImageIsHeldToItsMemoryLimit() async throws {
        try await withComputeCluster { cluster in
            let (home, _) = try await prepare(cluster)
            _ = try await Self.pushImage(cluster, directory: cluster.directory + "/layout", cmd: ["sh"])
            // 100 MB in a shell variable, in a task allowed 32 MB.
            var submission = ComputeAPI.JobSubmission(
                arguments: ["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}"], inputs: ["\(home)/in.txt"],
                output: "\(home)/out")
            submission.image = "tools/busybox:1"
            submission.memMB = 32
            submission.maxAttempts = 1
            let job = try await submit(cluster, submission)
            let done = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 60)
            #expect(done.state == .failed)
            let attempt = try #require(cluster.master!.attempts(ofJob: job.id).first)
            #expect(attempt.reason == "REASON_CONTAINER_LIMITATION_MEMORY", "\(attempt.reason ?? "") \(attempt.message ?? "")")
        }
    }

    @Test func aCommandHealthCheckRunsInsideTheTasksContainer() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            _ = try await Self.pushImage(cluster, directory: cluster.directory + "/layout", cmd: ["sh"])
            // /etc/motd exists only inside the image: the check passes there, not on the host.
            var submission = ComputeAPI.JobSubmission(arguments: ["sh", "-c", "exec sleep 600"], inputs: [], output: "")
            submission.image = "tools/busybox:1"
            submission.memMB = 32
            submission.service = ServiceTask(portCount: 0, healthCheck: CommandHealthCheck(
                command: "cat /etc/motd", gracePeriodMs: 0, intervalMs: 100, timeoutMs: 5_000, delayMs: 0, maxConsecutiveFailures: 3))
            Self.onNode1(&submission)
            let job = try await submit(cluster, submission)
            let clock = SystemClock()
            let deadline = clock.now + .seconds(60)
            while cluster.master!.attempts(ofJob: job.id).last?.healthy != true {
                let seen = cluster.master!.stateChanges.count
                try #require(clock.now < deadline, "\(cluster.master!.attempts(ofJob: job.id))")
                await clock.wait(for: cluster.master!.stateChanges, after: seen, until: deadline)
            }
            #expect(cluster.master!.attempts(ofJob: job.id).last?.message == "hello from the image")
            #expect(try await callMaster(cluster, .POST, "/api/v1/jobs/\(job.id)/kill").status == 200)
            #expect(try await cluster.master!.waitForJob(job.id, timeoutSeconds: 30).state == .killed)
        }
    }

    @Test func anUnknownOrCommandlessImageIsRefusedAtSubmission() async throws {
        try await withComputeCluster { cluster in
            let (home, _) = try await prepare(cluster)
            func refused(_ body: String) async throws -> (Int, String) {
                try await callMaster(cluster, .POST, "/api/v1/jobs", body: body)
            }
            let unknown = try await refused(#"{"arguments":["true"],"inputs":["\#(home)/in.txt"],"output":"\#(home)/o1","image":"tools/nothing:1"}"#)
            #expect(unknown.0 == 404 && unknown.1.contains("no image tools/nothing:1"), "\(unknown)")
            let malformed = try await refused(#"{"arguments":["true"],"inputs":["\#(home)/in.txt"],"output":"\#(home)/o2","image":"Tools/Bad:1"}"#)
            #expect(malformed.0 == 400 && malformed.1.contains("not a valid REPO:TAG"), "\(malformed)")
            _ = try await Self.pushImage(cluster, directory: cluster.directory + "/layout", cmd: [])
            let commandless = try await refused(#"{"arguments":[],"inputs":["\#(home)/in.txt"],"output":"\#(home)/o3","image":"tools/busybox:1"}"#)
            #expect(commandless.0 == 400 && commandless.1.contains("names no command"), "\(commandless)")
            let both = try await refused(#"{"arguments":["true"],"inputs":["\#(home)/in.txt"],"output":"\#(home)/o4","image":"tools/busybox:1","rootFilesystem":"/x"}"#)
            #expect(both.0 == 400)
            #expect(try await callMaster(cluster, .GET, "/api/v1/jobs").body == "[]")
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            for output in ["o1", "o2", "o3", "o4"] { #expect(try await client.status("\(home)/\(output)") == nil) }
        }
    }
}
