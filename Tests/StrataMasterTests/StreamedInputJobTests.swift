import Foundation
import StrataClient
import StrataCompute
import StrataTestKit
import Testing

/// Jobs whose tasks read their splits from a pipe while the agent reads the blocks: what a task
/// reads is exactly its lines, a task that stops reading early finishes, and an agent keeps no
/// descriptor of a finished task's pipe.
@Suite(.serialized) struct StreamedInputJobTests {
    /// The pipes this process has open, as `/proc/self/fd` names them (`pipe:[inode]`).
    static func openPipes() -> Set<String> {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }.filter { $0.hasPrefix("pipe:") })
    }

    /// Waits up to five seconds for every pipe opened since `before` to be closed; returns those
    /// still open. (Tests of other suites may run meanwhile and hold pipes briefly; a pipe an
    /// agent leaked stays open.)
    static func pipesLeft(since before: Set<String>) async throws -> Set<String> {
        var left = openPipes().subtracting(before)
        for _ in 0..<50 where !left.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            left = openPipes().subtracting(before)
        }
        return left
    }

    /// `cat` over eight blocks gives back the file, byte for byte: each task got exactly the
    /// lines that start in its block, in order.
    @Test func catOverEightBlocksGivesBackTheFileAndLeavesNoPipeOpen() async throws {
        try await withComputeCluster { cluster in
            let home = try await makeHome(cluster)
            let logs = try makeLogs(mebibytes: 4, seed: 11)
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            try await put(client, "\(home)/logs/access.log", logs, blockSize: 512 * 1024)
            let pipesBefore = Self.openPipes()
            var submission = ComputeAPI.JobSubmission(arguments: ["cat"], inputs: ["\(home)/logs"], output: "\(home)/copy")
            submission.memMB = 64
            let job = try await submit(cluster, submission)
            #expect(job.tasks == 8)
            let done = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 120)
            #expect(done.state == .finished, "\(done.message ?? "")")
            var copy: [UInt8] = []
            for index in 0..<job.tasks {
                copy += try await client.readAll("\(home)/copy/" + JobSpec.partName(index))
            }
            #expect(copy.count == logs.count)
            #expect(copy == logs)
            #expect(done.bytesReadLocal > UInt64(logs.count) * 9 / 10)
            let left = try await Self.pipesLeft(since: pipesBefore)
            #expect(left.isEmpty, "pipes left open after the job: \(left)")
        }
    }

    /// `head -1` reads the first line of its split and exits with most of the split unread: the
    /// agent's stream ends (EPIPE), the task finishes, and so does the job.
    @Test func headOneReadsItsFirstLineAndTheJobFinishes() async throws {
        try await withComputeCluster { cluster in
            let home = try await makeHome(cluster)
            let logs = try makeLogs(mebibytes: 8, seed: 5)
            let blockSize = 2 * 1024 * 1024
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            try await put(client, "\(home)/logs/access.log", logs, blockSize: UInt64(blockSize))
            let pipesBefore = Self.openPipes()
            var submission = ComputeAPI.JobSubmission(arguments: ["head", "-1"], inputs: ["\(home)/logs"], output: "\(home)/firsts")
            submission.memMB = 64
            let job = try await submit(cluster, submission)
            #expect(job.tasks == 4)
            let done = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 120)
            #expect(done.state == .finished, "\(done.message ?? "")")
            for index in 0..<job.tasks {
                // The first line that starts in block `index` (a line starts after a newline).
                let blockStart = index * blockSize
                let start = index == 0 ? 0 : logs[(blockStart - 1)...].firstIndex(of: UInt8(ascii: "\n"))! + 1
                let end = logs[start...].firstIndex(of: UInt8(ascii: "\n"))! + 1
                let part = try await client.readAll("\(home)/firsts/" + JobSpec.partName(index))
                #expect(part == Array(logs[start..<end]), "part \(index)")
            }
            let left = try await Self.pipesLeft(since: pipesBefore)
            #expect(left.isEmpty, "pipes left open after the job: \(left)")
        }
    }
}
