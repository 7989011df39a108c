import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1

/// Calls a Strata JSON API (a master's or an agent's): the body encoded as JSON, the cluster
/// secret as a bearer token, and an error answer turned into an `APIError` with the API's message.
public enum JSONClient {
    /// The largest answer read.
    public static let maximumReplyBytes = 64 << 20

    public static func call<Reply: Decodable>(
        _ http: HTTPClient, _ method: HTTPMethod, url: String, body: (some Encodable)? = nil as String?, token: String?,
        timeoutSeconds: Int64 = 10
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        }
        let response = try await http.execute(request, timeout: .seconds(timeoutSeconds))
        let bytes = try await response.body.collect(upTo: maximumReplyBytes)
        guard (200..<300).contains(Int(response.status.code)) else {
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(bytes.readableBytesView)))?.message ?? String(buffer: bytes)
            throw APIError(HTTPResponse.Status(code: Int(response.status.code)), message)
        }
        return try JSONDecoder().decode(Reply.self, from: Data(bytes.readableBytesView))
    }
}

/// An error answer's body.
struct ErrorBody: Decodable {
    var message: String
}

extension APIRequest {
    /// Throws 401 unless the request carries `token` (when the service has one).
    public func requireSecret(_ token: String?, service: String) throws {
        guard let token, !presents(token: token) else { return }
        throw APIError(.unauthorized, "this \(service) requires the cluster secret: Authorization: Bearer <token> (the CLI reads STRATA_TOKEN or ~/.strata/token)")
    }
}
