import Foundation
import Hummingbird
import StrataCompute
import StrataHTTP

extension Agent {
    /// The agent's HTTP API (JSON):
    ///
    /// - `GET /health`; `GET /state` (its id and tasks)
    /// - `POST /api/v1/tasks` launch one task, `POST /api/v1/tasks/launch` launch several (master
    ///   → agent; `{"tasks": [...]}`, answered with the ids accepted and refused),
    ///   `POST /api/v1/tasks/{id}/kill`
    /// - `GET /files/read?path=TASK/stdout&offset=N&length=M` a chunk of a sandbox file
    ///   (Mesos' shape; `offset=-1` gives the file's length), `stdout` or `stderr`
    ///
    /// With a cluster secret, every call needs `Authorization: Bearer <secret>`.
    public func respond(to request: Request) async -> Response {
        let call = APIRequest(request)
        do {
            try call.requireSecret(configuration.token, service: "agent")
            if call.match(.get, "health") != nil {
                return JSONAPI.response(["status": "ok"])
            } else if call.match(.get, "state") != nil {
                let statuses = tasks.withLock { $0.values.map(\.status).sorted { $0.taskId < $1.taskId } }
                return JSONAPI.response(AgentState(id: agentId, info: info.withLock { $0 }, tasks: statuses))
            } else if call.match(.post, "api/v1/tasks") != nil {
                let order = try await JSONAPI.decode(TaskLaunchOrder.self, from: request)
                guard accept(order) else { throw APIError.conflict("task \(order.taskId) is already on this agent") }
                return JSONAPI.response(["accepted": order.taskId], status: .accepted)
            } else if call.match(.post, "api/v1/tasks/launch") != nil {
                let batch = try await JSONAPI.decode(ComputeAPI.LaunchBatch.self, from: request)
                guard batch.tasks.count <= ComputeAPI.LaunchBatch.maximumCount else {
                    throw APIError.badRequest("\(batch.tasks.count) tasks in one launch; at most \(ComputeAPI.LaunchBatch.maximumCount)")
                }
                var reply = ComputeAPI.LaunchBatchReply(accepted: [], refused: [])
                for order in batch.tasks {
                    if accept(order) {
                        reply.accepted.append(order.taskId)
                    } else {
                        reply.refused.append(.init(taskId: order.taskId, message: "task \(order.taskId) is already on this agent, or the agent is stopping"))
                    }
                }
                return JSONAPI.response(reply, status: .accepted)
            } else if let taskId = call.match(.post, "api/v1/tasks/*/kill")?.first {
                await kill(taskId)
                return JSONAPI.response(["killed": taskId])
            } else if call.match(.get, "files/read") != nil {
                return JSONAPI.response(try readSandboxFile(call))
            }
            throw APIError.notFound("no such resource: \(call.method) /\(call.components.joined(separator: "/"))")
        } catch {
            return JSONAPI.error(error)
        }
    }

    struct AgentState: Encodable {
        var id: String
        var info: AgentInfo?
        var tasks: [TaskStatus]
    }

    /// The largest chunk one read returns.
    static let maximumReadBytes: Int64 = 1 << 20

    func readSandboxFile(_ call: APIRequest) throws -> ComputeAPI.FileChunk {
        guard let path = call.query["path"] else { throw APIError.badRequest("path= is required (TASK_ID/stdout or TASK_ID/stderr)") }
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count == 2, ["stdout", "stderr"].contains(parts[1]), !parts[0].hasPrefix("."), !parts[0].contains("..") else {
            throw APIError.badRequest("path must be TASK_ID/stdout or TASK_ID/stderr, not '\(path)'")
        }
        let sandbox = tasks.withLock { $0[parts[0]]?.sandbox } ?? (configuration.workDirectory + "/sandboxes/" + parts[0])
        let file = sandbox + "/" + parts[1]
        guard let handle = FileHandle(forReadingAtPath: file) else { throw APIError.notFound("no \(parts[1]) for task \(parts[0]) on this agent") }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let offset = try call.integer("offset") ?? 0
        if offset < 0 { return ComputeAPI.FileChunk(data: "", offset: size) }
        let length = min(try call.integer("length") ?? Self.maximumReadBytes, Self.maximumReadBytes)
        guard length >= 0 else { throw APIError.badRequest("length must not be negative") }
        guard UInt64(offset) < size else { return ComputeAPI.FileChunk(data: "", offset: UInt64(offset)) }
        try handle.seek(toOffset: UInt64(offset))
        let data = try handle.read(upToCount: Int(length)) ?? Data()
        return ComputeAPI.FileChunk(data: String(decoding: data, as: UTF8.self), offset: UInt64(offset))
    }
}
