import Foundation
import Hummingbird

/// What a JSON API handler needs of a request: its method, path components and query.
public struct APIRequest: Sendable {
    public var method: HTTPRequest.Method
    /// The path split at `/`, percent-decoded (`/api/v1/jobs/job-1` → `["api", "v1", "jobs", "job-1"]`).
    public var components: [String]
    public var query: [String: String]
    public var authorization: String?

    public init(_ request: Request) {
        method = request.head.method
        components = request.uri.path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        var query: [String: String] = [:]
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[1])) : ""
            query[key] = value
        }
        self.query = query
        authorization = request.headers[.authorization]
    }

    /// The calling user (Hadoop's pseudo authentication: `?user.name=`), or nil.
    public var user: String? {
        guard let user = query["user.name"], !user.isEmpty else { return nil }
        return user
    }

    /// Whether the request carries `Authorization: Bearer <token>` (compared in constant time).
    public func presents(token: String) -> Bool {
        guard let authorization, authorization.hasPrefix("Bearer ") else { return false }
        let given = Array(authorization.dropFirst("Bearer ".count).utf8)
        let expected = Array(token.utf8)
        guard given.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (left, right) in zip(given, expected) { difference |= left ^ right }
        return difference == 0
    }

    /// An integer query parameter: nil when absent, 400 when not a number.
    public func integer(_ name: String) throws -> Int64? {
        guard let text = query[name] else { return nil }
        guard let value = Int64(text) else { throw APIError.badRequest("\(name) must be a whole number, not '\(text)'") }
        return value
    }
}

extension APIRequest {
    /// Matches the path against `pattern` (`api/v1/jobs/*/kill`, `*` for one component) and the
    /// method; returns the components the stars matched, or nil.
    public func match(_ method: HTTPRequest.Method, _ pattern: String) -> [String]? {
        guard self.method == method else { return nil }
        let parts = pattern.split(separator: "/")
        guard parts.count == components.count else { return nil }
        var captured: [String] = []
        for (part, component) in zip(parts, components) {
            if part == "*" {
                captured.append(component)
            } else if part != component {
                return nil
            }
        }
        return captured
    }
}
