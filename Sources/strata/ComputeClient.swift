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

/// What the CLI knows of a service it reaches by URL (the launcher, the cron service): its name
/// in messages, where it is unless told, and how its error answers read.
protocol HTTPServiceAPI {
    /// How messages name it: `the launcher`.
    static var serviceName: String { get }
    /// The environment variable with its URL: `STRATA_LAUNCHER`.
    static var environmentVariable: String { get }
    /// Its URL when neither the option nor the environment names one.
    static var defaultURL: String { get }
    /// What its answers are, for one that is not: `Marathon's JSON`.
    static var dialect: String { get }
    /// An answer other than 2xx as the lines the CLI prints.
    static func describeError(status: Int, body: [UInt8]) -> String
}

extension HTTPServiceAPI {
    /// An error answer without a message of the service's shape: its status and text.
    static func describeUnknownError(status: Int, body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return "\(serviceName) answered \(status)\(text.isEmpty ? "" : ": \(text)")"
    }
}

/// The CLI's way to a service it reaches by URL (`strata app`, `strata cron`): JSON in and out,
/// the cluster secret as a bearer token, error answers shown as the service words them, and a
/// service that does not answer named with its URL.
struct HTTPServiceClient<API: HTTPServiceAPI> {
    let url: String
    let token: String?
    let http: HTTPClient

    /// Seconds one request may take.
    static var requestTimeoutSeconds: Int64 { 30 }

    /// The service's URL: `option` (`--launcher`, `--cron`), else its environment variable, else
    /// its default; a URL, or host:port for http.
    static func serviceURL(_ option: String?) -> String {
        let configured = ProcessInfo.processInfo.environment[API.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        var url = option ?? configured ?? API.defaultURL
        if !url.contains("://") { url = "http://" + url }
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// Runs a command's body with a client; an error prints as `strata COMMAND: message` and
    /// exits 1.
    static func run(_ command: String, url option: String?, _ body: (Self) async throws -> Void) async throws {
        try await runReportingErrors(command) {
            // A service that refuses the connection is down: say so at once.
            try await withHTTPClient(retryingConnections: false) { http in
                try await body(Self(url: serviceURL(option), token: ComputeClient.clusterToken(), http: http))
            }
        }
    }

    /// One call; an answer other than 2xx is thrown as a `CLIError` with the service's message.
    func call(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) async throws -> [UInt8] {
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await exchangeHTTP(http, method, url: url + path, body: body, token: token, timeoutSeconds: Self.requestTimeoutSeconds)
        } catch {
            throw CLIError("cannot reach \(API.serviceName) at \(url): \(describeConnectionError(error))")
        }
        guard (200..<300).contains(answer.status) else { throw CLIError(API.describeError(status: answer.status, body: answer.body)) }
        return answer.body
    }

    func get<Reply: Decodable>(_ path: String) async throws -> Reply {
        try decode(try await call(.GET, path), path: path)
    }

    func decode<Reply: Decodable>(_ bytes: [UInt8], path: String) throws -> Reply {
        do {
            return try JSONDecoder().decode(Reply.self, from: Data(bytes))
        } catch {
            throw CLIError("\(API.serviceName) at \(url) answered \(path) with something that is not \(API.dialect)")
        }
    }
}

/// A JSON object read from a file (`-`: standard input) to send to a service: refused here,
/// before any request, when it cannot be read, is larger than a service reads, is not JSON or
/// is not an object (`notAnObject` says what it should be). Returns its members and its bytes.
func readJSONObject(_ file: String, for service: String, notAnObject: String) throws -> (members: [String: Any], bytes: [UInt8]) {
    let name = file == "-" ? "standard input" : file
    let bytes: [UInt8]
    if file == "-" {
        bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
    } else {
        guard FileManager.default.fileExists(atPath: file) else { throw CLIError("\(file): no such file") }
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
        bytes = Array(data)
    }
    guard bytes.count <= JSONAPI.maximumRequestBytes else {
        throw CLIError("\(name) is larger than the \(JSONAPI.maximumRequestBytes) bytes \(service) reads")
    }
    let json: Any
    do {
        json = try JSONSerialization.jsonObject(with: Data(bytes))
    } catch {
        let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        throw CLIError("\(name) is not JSON: \(reason)")
    }
    guard let members = json as? [String: Any] else { throw CLIError("\(name) is not \(notAnObject)") }
    return (members, bytes)
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
