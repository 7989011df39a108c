import AsyncHTTPClient
import Foundation
import NIOHTTP1
import NIOCore
import StrataTestKit
import Testing

/// Starts a cluster in a fresh temporary directory, runs `body`, and always shuts it down.
func withCluster<Result>(
    _ configure: (inout LocalCluster.Options) -> Void = { _ in },
    _ body: (LocalCluster) async throws -> Result
) async throws -> Result {
    try await LocalCluster.withTemporary(prefix: "strata-webhdfs-", configure, body)
}

/// An HTTP answer, body collected.
struct Reply {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    var location: String? { headers["location"] }

    /// The RemoteException's `exception` field.
    var exception: String? { (json["RemoteException"] as? [String: Any])?["exception"] as? String }
}

/// A small WebHDFS client over AsyncHTTPClient that does not follow redirects by itself.
struct WebClient {
    let http: HTTPClient
    let base: String

    init(http: HTTPClient, port: Int) {
        self.http = http
        self.base = "http://127.0.0.1:\(port)"
    }

    func send(_ method: HTTPMethod, _ url: String, body: [UInt8]? = nil) async throws -> Reply {
        var full = url.hasPrefix("http") ? url : base + url
        // The cluster's superuser unless a test names a user.
        if full.contains("/webhdfs/v1") && !full.contains("user.name=") {
            full += (full.contains("?") ? "&" : "?") + "user.name=strata"
        }
        var request = HTTPClientRequest(url: full)
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await http.execute(request, timeout: .seconds(60))
        var bytes: [UInt8] = []
        for try await part in response.body { bytes += part.readableBytesView }
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), headers: headers, body: bytes)
    }

    /// Sends to the name node; a 307 is followed once (to a data node) with `body`.
    func twoStep(_ method: HTTPMethod, _ url: String, body: [UInt8]? = nil) async throws -> Reply {
        let first = try await send(method, url)
        guard first.status == 307, let location = first.location else { return first }
        return try await send(method, location, body: body)
    }
}

func withWebClient<Result>(_ cluster: LocalCluster, _ body: (WebClient) async throws -> Result) async throws -> Result {
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
    do {
        let result = try await body(WebClient(http: http, port: cluster.nameNodeHTTPPort))
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

/// Resident memory of this process, from /proc.
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }
    return 0
}
