import Foundation
import StrataClient
import StrataCompute
import StrataTestKit
import Testing

/// `GET /api/v1/jobs/{id}?changedAfter=V`: a watch the master answers at its next change of
/// state, which is how `strata job submit --wait` follows a job without polling.
@Suite(.serialized) struct JobWatchTests {
    @Test func aWatchIsAnsweredAtEachChangeUntilTheJobEnds() async throws {
        try await withComputeCluster { cluster in
            let home = try await makeHome(cluster)
            let client = cluster.client(user: taskUser)
            defer { Task { await client.close() } }
            try await put(client, "\(home)/in.txt", Array("a\nb\n".utf8), blockSize: 1 << 20)
            let submission = ComputeAPI.JobSubmission(
                arguments: ["sh", "-c", "cat >/dev/null; sleep 0.5; echo done"], inputs: ["\(home)/in.txt"], output: "\(home)/out")
            let job = try await submit(cluster, submission)

            func detail(_ query: String = "") async throws -> (status: Int, detail: ComputeAPI.JobDetail?, body: String) {
                let (status, body) = try await callMaster(cluster, .GET, "/api/v1/jobs/\(job.id)\(query)")
                return (status, try? JSONDecoder().decode(ComputeAPI.JobDetail.self, from: Data(body.utf8)), body)
            }
            var current = try #require(try await detail().detail)
            var version = try #require(current.stateVersion)
            var answers = 0
            // Each watch waits up to 30 s but is answered at the next change: staged, starting,
            // running, finished, committed. A watch that timed out would show the same version.
            while !current.job.state.isTerminal {
                answers += 1
                try #require(answers < 50, "the job did not end after \(answers) watches")
                current = try #require(try await detail("?changedAfter=\(version)&waitMs=30000").detail)
                let next = try #require(current.stateVersion)
                #expect(next > version, "a watch answered without a change")
                version = next
            }
            #expect(current.job.state == .finished)
            #expect(answers >= 2)

            // Nothing changes now: a short watch times out and shows the job as it is.
            let quiet = try await detail("?changedAfter=\(version)&waitMs=100")
            #expect(quiet.status == 200 && quiet.detail?.job.state == .finished)
            #expect((quiet.detail?.stateVersion ?? 0) >= version)

            let bad = try await detail("?changedAfter=soon")
            #expect(bad.status == 400 && bad.body.contains("changedAfter must be a whole number"))
            let unknown = try await callMaster(cluster, .GET, "/api/v1/jobs/job-nope?changedAfter=0&waitMs=0")
            #expect(unknown.status == 404 && unknown.body.contains("no job job-nope"))
        }
    }
}
