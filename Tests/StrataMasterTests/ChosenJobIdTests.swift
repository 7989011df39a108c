import Foundation
import StrataCompute
import StrataCore
import StrataTestKit
import Testing

/// Jobs named by their submitter and found by label: what a service that must never start the
/// same work twice (the cron service) builds on.
@Suite(.serialized) struct ChosenJobIdTests {
    static func run(_ id: String?, labels: [String: String]? = nil, _ command: String = "exec sleep 600") -> ComputeAPI.JobSubmission {
        var submission = ComputeAPI.JobSubmission(arguments: ["sh", "-c", command], inputs: [], output: "")
        submission.service = ServiceTask(portCount: 0, labels: [:])
        submission.memMB = 32
        submission.id = id
        submission.labels = labels
        return submission
    }

    static func body(_ submission: ComputeAPI.JobSubmission) throws -> String {
        String(decoding: try JSONEncoder().encode(submission), as: UTF8.self)
    }

    @Test func aChosenIdIsSubmittedOnceAndFoundByLabel() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            let labels = ["strata.cron": "nightly"]
            let first = try await callMaster(cluster, .POST, "/api/v1/jobs", body: try Self.body(Self.run("nightly.20261204T0300Z", labels: labels)))
            #expect(first.status == 201, "\(first.body)")
            let job = try JSONDecoder().decode(ComputeAPI.JobView.self, from: Data(first.body.utf8))
            #expect(job.id == "nightly.20261204T0300Z" && job.labels == labels)

            // The same id again (a retry after a crash): the job as it is, nothing new started.
            let again = try await callMaster(cluster, .POST, "/api/v1/jobs", body: try Self.body(Self.run("nightly.20261204T0300Z", labels: labels, "exit 1")))
            #expect(again.status == 200, "\(again.body)")
            #expect(try JSONDecoder().decode(ComputeAPI.JobView.self, from: Data(again.body.utf8)).arguments == job.arguments)
            #expect(cluster.master!.attempts(ofJob: job.id).count <= 1)

            // Master-named jobs still count on; another label is not listed.
            let other = try await submit(cluster, Self.run(nil, labels: ["strata.cron": "hourly"]))
            #expect(other.id.hasPrefix("job-"))
            let listed = try JSONDecoder().decode(
                ComputeAPI.JobList.self, from: Data(try await callMaster(cluster, .GET, "/api/v1/jobs/watch?label=strata.cron=nightly&active=true").body.utf8))
            #expect(listed.jobs.map(\.id) == [job.id])
            let plain = try JSONDecoder().decode(
                [ComputeAPI.JobView].self, from: Data(try await callMaster(cluster, .GET, "/api/v1/jobs?label=strata.cron=hourly").body.utf8))
            #expect(plain.map(\.id) == [other.id])

            // A watch from that version is answered at the kill, and the active list is then empty.
            async let watched = callMaster(
                cluster, .GET, "/api/v1/jobs/watch?label=strata.cron=nightly&active=true&changedAfter=\(listed.stateVersion)&waitMs=30000")
            #expect(try await callMaster(cluster, .POST, "/api/v1/jobs/\(job.id)/kill").status == 200)
            let after = try JSONDecoder().decode(ComputeAPI.JobList.self, from: Data(try await watched.body.utf8))
            #expect(after.stateVersion > listed.stateVersion)
            _ = try await cluster.master!.waitForJob(job.id, timeoutSeconds: 30)
            let ended = try JSONDecoder().decode(
                ComputeAPI.JobList.self, from: Data(try await callMaster(cluster, .GET, "/api/v1/jobs/watch?label=strata.cron=nightly&active=true").body.utf8))
            #expect(ended.jobs.isEmpty)
            // Ended, it is still that id's job: submitting it again starts nothing.
            let late = try await callMaster(cluster, .POST, "/api/v1/jobs", body: try Self.body(Self.run("nightly.20261204T0300Z")))
            #expect(late.status == 200 && late.body.contains(#""state":"KILLED""#), "\(late.body)")
        }
    }

    @Test func badIdsAndLabelsAreRefused() async throws {
        try await withComputeCluster { cluster in
            _ = try await makeHome(cluster)
            for id in ["", "job-7", "watch", "-lead", "a/b", "with space", String(repeating: "x", count: 201)] {
                let answer = try await callMaster(cluster, .POST, "/api/v1/jobs", body: try Self.body(Self.run(id)))
                #expect(answer.status == 400, "\(id): \(answer.body)")
            }
            let badLabel = try await callMaster(cluster, .POST, "/api/v1/jobs", body: try Self.body(Self.run("fine", labels: ["": "x"])))
            #expect(badLabel.status == 400, "\(badLabel.body)")
            #expect(try await callMaster(cluster, .GET, "/api/v1/jobs/watch?label=nonsense").status == 400)
            #expect(try await callMaster(cluster, .GET, "/api/v1/jobs").body == "[]")
        }
    }
}
