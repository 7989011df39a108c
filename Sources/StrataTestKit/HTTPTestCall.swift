import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A test's HTTP answer: its status and body, read as JSON on demand.
public struct HTTPReply: Sendable {
    public var status: Int
    public var body: String
    public var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]) }
    /// The body as a JSON object (empty when it is not one).
    public var object: [String: Any] { json as? [String: Any] ?? [:] }

    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}

/// One HTTP call to a service on loopback `port`, a JSON `body` if given (at most 16 MB of
/// answer, 30 s).
public func httpCall(_ port: Int, _ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> HTTPReply {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = method
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let bytes = try await response.body.collect(upTo: 16 << 20)
    return HTTPReply(status: Int(response.status.code), body: String(buffer: bytes))
}
