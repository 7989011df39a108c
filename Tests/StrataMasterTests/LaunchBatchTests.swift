import AsyncHTTPClient
import Foundation
import NIOCore
import StrataCompute
import StrataTestKit
import Testing

@testable import StrataAgent

/// The master sends the tasks one placement puts on an agent in one call
/// (`POST /api/v1/tasks/launch`); the agent answers with the ids it took and those it refused.
/// (A job whose tasks are placed at once, as in DataLocalJobTests, is launched this way.)
@Suite(.timeLimit(.minutes(2)))
struct LaunchBatchTests {
    static func order(_ taskId: String) -> TaskLaunchOrder {
        var order = TaskLaunchOrder(
            taskId: taskId, jobId: "batch-test", user: taskUser, arguments: ["/bin/sh", "-c", "true"], environment: [:],
            resources: Resources(cpus: 0.1, memMB: 32), rootFilesystem: nil, split: .none, output: "", partName: "part-00000")
        // Far ahead: the tasks wait, prepared, and are killed below before they start.
        order.notBeforeMs = Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000
        return order
    }

    static func post(_ address: String, _ path: String, _ body: some Encodable) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: "http://\(address)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    @Test func anAgentTakesABatchAndRefusesATaskItHasAlready() async throws {
        try await withComputeCluster { cluster in
            let agent = try #require(cluster.agents.first)
            let address = try #require(agent.info.withLock { $0?.address })
            let first = try await Self.post(address, "/api/v1/tasks/launch", ComputeAPI.LaunchBatch(tasks: [Self.order("batch-a"), Self.order("batch-b")]))
            #expect(first.status == 202)
            #expect(try JSONDecoder().decode(ComputeAPI.LaunchBatchReply.self, from: Data(first.body.utf8))
                == ComputeAPI.LaunchBatchReply(accepted: ["batch-a", "batch-b"], refused: []))
            let again = try await Self.post(address, "/api/v1/tasks/launch", ComputeAPI.LaunchBatch(tasks: [Self.order("batch-c"), Self.order("batch-a")]))
            let reply = try JSONDecoder().decode(ComputeAPI.LaunchBatchReply.self, from: Data(again.body.utf8))
            #expect(reply.accepted == ["batch-c"])
            #expect(reply.refused.map(\.taskId) == ["batch-a"])
            for id in ["batch-a", "batch-b", "batch-c"] { await agent.kill(id) }
            #expect(agent.tasks.withLock { $0.values.allSatisfy { $0.status.state.isTerminal || $0.killRequested } })

            // Malformed and oversized batches are refused whole, with a JSON error.
            let malformed = try await Self.post(address, "/api/v1/tasks/launch", ["tasks": "not a list"])
            #expect(malformed.status == 400)
            #expect(malformed.body.contains("malformed JSON"))
            let tooMany = (0...ComputeAPI.LaunchBatch.maximumCount).map { Self.order("many-\($0)") }
            let oversized = try await Self.post(address, "/api/v1/tasks/launch", ComputeAPI.LaunchBatch(tasks: tooMany))
            #expect(oversized.status == 400)
            #expect(agent.tasks.withLock { $0["many-0"] == nil })
        }
    }
}
