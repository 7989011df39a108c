import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import StrataCompute
import StrataHTTP

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
        return try await withHTTPClient { http in
            try await body(ComputeClient(master: address, user: callingUser(), token: clusterToken(), http: http))
        }
    }

    static func clusterToken() -> String? {
        if let token = ProcessInfo.processInfo.environment["STRATA_TOKEN"], !token.isEmpty { return token }
        let path = userStrataDirectory() + "/token"
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
        let url = "http://\(address ?? master)\(path)\(separator)user.name=\(encodedUser)"
        do {
            return try await JSONClient.call(http, method, url: url, body: body, token: token, timeoutSeconds: 30)
        } catch let error as APIError {
            throw CLIError(error.message)
        } catch is DecodingError {
            throw CLIError("\(address ?? master) answered \(path) with something that is not Strata's JSON")
        } catch {
            throw CLIError("cannot reach \(address == nil ? "the master" : "the agent") at \(address ?? master): \(describeConnectionError(error))")
        }
    }

    /// Runs a command's body with a client; an error prints as `strata COMMAND: message` and exits 1.
    static func run(_ command: String, master: String?, _ body: (ComputeClient) async throws -> Void) async throws {
        try await runReportingErrors(command) { try await withClient(master: master, body) }
    }
}

/// Runs `body` with an HTTP client of its own, shut down after it whether it returns or throws.
/// Without `retryingConnections`, a refused connection fails the request at once rather than
/// being tried again until the connect timeout (10 s).
func withHTTPClient<Result>(retryingConnections: Bool = true, _ body: (HTTPClient) async throws -> Result) async throws -> Result {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.retryConnectionEstablishment = retryingConnections
    let http = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
    do {
        let result = try await body(http)
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}

/// Runs a command's body; a `CLIError` prints as `strata COMMAND: message` and exits 1.
func runReportingErrors(_ command: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        printError("strata \(command): \(error)")
        throw ExitCode(1)
    }
}

/// One request to an HTTP API with the cluster secret as a bearer token, answered with its status
/// and body whatever the status: for callers that read more of an error answer than its
/// message (Marathon's validation details, the deployments that lock an app).
func exchangeHTTP(
    _ http: HTTPClient, _ method: HTTPMethod, url: String, body: [UInt8]?, token: String?, timeoutSeconds: Int64
) async throws -> (status: Int, body: [UInt8]) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
    }
    let response = try await http.execute(request, timeout: .seconds(timeoutSeconds))
    let bytes = try await response.body.collect(upTo: JSONClient.maximumReplyBytes)
    return (Int(response.status.code), Array(bytes.readableBytesView))
}

/// Why a request got no answer, in the system's words where there are some ("Connection
/// refused") rather than the networking library's types.
func describeConnectionError(_ error: any Error) -> String {
    switch error {
    case let error as IOError: String(cString: strerror(error.errnoCode))
    case let error as NIOConnectionError:
        error.connectionErrors.first.map { describeConnectionError($0.error) } ?? error.dnsAError.map(describeConnectionError) ?? "\(error)"
    case let error as HTTPClientError where error == .connectTimeout: "no connection within the time allowed"
    case let error as HTTPClientError where error == .deadlineExceeded: "no answer within the time allowed"
    default: "\(error)"
    }
}

/// A failure the CLI reports as one line and exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// `~/.strata`: `$HOME` as the shell has it (so a session, sudo -E or a test can point it
/// elsewhere), else the account's home directory.
func userStrataDirectory() -> String {
    if let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty { return home + "/.strata" }
    return FileManager.default.homeDirectoryForCurrentUser.path + "/.strata"
}
