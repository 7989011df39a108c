import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import StrataCompute

/// The CLI's way to the master's (and agents') HTTP API: JSON in and out, errors as the
/// API's message.
struct ComputeClient {
    let master: String
    let user: String
    let token: String?
    let http: HTTPClient

    /// The master's address (`--master`, else `STRATA_MASTER`, else 127.0.0.1:5050) and the cluster
    /// secret (`STRATA_TOKEN`, else `~/.strata/token`).
    static func withClient<Result>(master: String?, _ body: (ComputeClient) async throws -> Result) async throws -> Result {
        let address = master ?? ProcessInfo.processInfo.environment["STRATA_MASTER"] ?? "127.0.0.1:5050"
        let http = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton))
        let client = ComputeClient(master: address, user: callingUser(), token: clusterToken(), http: http)
        do {
            let result = try await body(client)
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    static func clusterToken() -> String? {
        if let token = ProcessInfo.processInfo.environment["STRATA_TOKEN"], !token.isEmpty { return token }
        let path = FileManager.default.homeDirectoryForCurrentUser.path + "/.strata/token"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }

    func get<Reply: Decodable>(_ path: String, at address: String? = nil) async throws -> Reply {
        try await call(.GET, path, body: nil as [String: String]?, at: address)
    }

    func post<Reply: Decodable>(_ path: String, _ body: some Encodable, at address: String? = nil) async throws -> Reply {
        try await call(.POST, path, body: body, at: address)
    }

    func call<Reply: Decodable>(_ method: HTTPMethod, _ path: String, body: (some Encodable)?, at address: String?) async throws -> Reply {
        let separator = path.contains("?") ? "&" : "?"
        let encodedUser = user.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? user
        var request = HTTPClientRequest(url: "http://\(address ?? master)\(path)\(separator)user.name=\(encodedUser)")
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(30))
        } catch {
            throw CLIError("cannot reach \(address == nil ? "the master" : "the agent") at \(address ?? master): \(error)")
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        guard (200..<300).contains(Int(response.status.code)) else {
            let message = (try? JSONDecoder().decode(APIMessage.self, from: Data(bytes.readableBytesView)))?.message ?? String(buffer: bytes)
            throw CLIError(message)
        }
        return try JSONDecoder().decode(Reply.self, from: Data(bytes.readableBytesView))
    }
}

/// A failure the CLI reports as one line and exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// The body of an API error.
struct APIMessage: Decodable {
    var message: String
}
