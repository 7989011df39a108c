import Foundation
import StrataClient
import StrataCompute
import StrataTestKit
import Testing

/// Data-local batch jobs on a real local cluster: name node, three data nodes, a master and an
/// agent beside each data node, tasks run as real processes in cgroups.
@Suite(.serialized) struct DataLocalJobTests {
    /// `grep -c ERROR` over more than 40 blocks: the parts add up to grep over the whole file,
    /// and nearly every task ran beside its block.
    @Test func grepOverFortyBlocksGivesGrepsAnswerAndRunsNodeLocal() async throws {
        try await withComputeCluster { cluster in
            let home = try await makeHome(cluster)
            let logs = try makeLogs(mebibytes: 6, seed: 7)
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            try await put(client, "\(home)/logs/access.log", logs, blockSize: 128 * 1024)
            var submission = ComputeAPI.JobSubmission(
                arguments: ["grep", "-c", "ERROR"], inputs: ["\(home)/logs"], output: "\(home)/errors")
            submission.memMB = 64
            let job = try await submit(cluster, submission)
            #expect(job.tasks == 48)
            let done = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 120)
            #expect(done.state == .finished, "\(done.message ?? "")")
            var total = 0
            for index in 0..<job.tasks {
                let part = try await client.readAll("\(home)/errors/" + JobSpec.partName(index))
                total += Int(String(decoding: part, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1_000_000
            }
            #expect(total == countLines(logs, containing: "ERROR"))
            #expect(try await client.status("\(home)/errors/_SUCCESS") != nil)
            #expect(try await client.status("\(home)/errors/_temporary") == nil)
            #expect(Double(done.nodeLocalTasks) >= 0.95 * Double(done.tasks), "\(done.nodeLocalTasks) of \(done.tasks) node-local")
            #expect(done.bytesReadLocal > UInt64(logs.count) * 9 / 10)
            // Every attempt ran as the submitting user, and its part belongs to that user.
            #expect(cluster.master!.attempts(ofJob: job.id).allSatisfy { $0.user == taskUser })
            #expect(try await client.status("\(home)/errors/part-00000")?.owner == taskUser)
        }
    }

    /// What cannot work is refused at submission with a clear error, and nothing starts.
    @Test func badSubmissionsAreRefusedWithAClearErrorAndNothingStarts() async throws {
        try await withComputeCluster { cluster in
            let home = try await makeHome(cluster)
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            try await put(client, "\(home)/in.txt", Array("a\nb\n".utf8), blockSize: 1 << 20)
            try await client.mkdirs("\(home)/exists")

            func refused(_ body: String, user: String? = taskUser) async throws -> (Int, String) {
                try await callMaster(cluster, .POST, "/api/v1/jobs", user: user, body: body)
            }
            let missing = try await refused(#"{"arguments":["cat"],"inputs":["/user/nobody/nope"],"output":"/user/nobody/o1"}"#)
            #expect(missing.0 == 404 && missing.1.contains("/user/nobody/nope does not exist"))
            let exists = try await refused(#"{"arguments":["cat"],"inputs":["/user/nobody/in.txt"],"output":"/user/nobody/exists"}"#)
            #expect(exists.0 == 409 && exists.1.contains("already exists"))
            let huge = try await refused(#"{"arguments":["cat"],"inputs":["/user/nobody/in.txt"],"output":"/user/nobody/o2","cpus":64}"#)
            #expect(huge.0 == 422 && huge.1.contains("64 cpus"))
            let malformed = try await refused(#"{"arguments":["cat"],"inputs":"#)
            #expect(malformed.0 == 400 && malformed.1.contains("malformed JSON"))
            let noCommand = try await refused(#"{"arguments":[],"inputs":["/user/nobody/in.txt"],"output":"/user/nobody/o3"}"#)
            #expect(noCommand.0 == 400)
            let noUser = try await refused(#"{"arguments":["cat"],"inputs":["/user/nobody/in.txt"],"output":"/user/nobody/o4"}"#, user: nil)
            #expect(noUser.0 == 401)
            let forbidden = try await refused(#"{"arguments":["cat"],"inputs":["/user/nobody/in.txt"],"output":"/forbidden"}"#)
            #expect(forbidden.0 == 403)
            let unknown = try await callMaster(cluster, .GET, "/api/v1/nothing")
            #expect(unknown.0 == 404 && unknown.1.contains("message"))
            // Nothing was started, and none of the refused outputs exists.
            let jobs = try await callMaster(cluster, .GET, "/api/v1/jobs")
            #expect(jobs.1 == "[]")
            for output in ["o1", "o2", "o3", "o4"] { #expect(try await client.status("\(home)/\(output)") == nil) }
            #expect(try await client.status("/forbidden") == nil)
        }
    }

    /// A task that keeps failing fails its job after --max-attempts, with its stderr in the
    /// job's message; only the job's user may kill a job.
    @Test func aCrashingTaskFailsItsJobAfterMaxAttemptsWithItsStderr() async throws {
        try await withComputeCluster { cluster in
            let home = try await makeHome(cluster)
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            try await put(client, "\(home)/in.txt", Array("a\nb\n".utf8), blockSize: 1 << 20)
            var submission = ComputeAPI.JobSubmission(
                arguments: ["sh", "-c", "echo 'cannot parse line 1' >&2; exit 3"], inputs: ["\(home)/in.txt"], output: "\(home)/out")
            submission.maxAttempts = 2
            let job = try await submit(cluster, submission)
            let done = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 60)
            #expect(done.state == .failed)
            #expect(done.failedAttempts == 2)
            #expect(done.message?.contains("cannot parse line 1") == true, "\(done.message ?? "")")
            #expect(try await client.status("\(home)/out/_SUCCESS") == nil)
            let other = try await callMaster(cluster, .POST, "/api/v1/jobs/\(job.id)/kill", user: "mallory")
            #expect(other.0 == 403)
        }
    }
}
