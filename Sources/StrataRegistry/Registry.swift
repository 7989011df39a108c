import Foundation
import Hummingbird
import Logging
import NIOCore
import StrataHTTP
import StrataImages

/// The OCI distribution API (v2) over the image store in the DFS: what `skopeo`, `podman`,
/// `crane` and `docker` push to and pull from. Blobs are shared by every repository (the
/// store keeps each once), so a blob pushed under one name can be mounted into any other.
///
/// - `GET /v2/` (200 `{}`), `GET /v2/_catalog[?n=&last=]`
/// - `HEAD|GET|DELETE /v2/<name>/blobs/<digest>` (GET takes `Range: bytes=...`)
/// - `POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]`,
///   `GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<id>`
/// - `HEAD|GET|PUT|DELETE /v2/<name>/manifests/<tag or digest>`
/// - `GET /v2/<name>/tags/list[?n=&last=]`, `GET /v2/<name>/referrers/<digest>[?artifactType=]`
///
/// Errors carry the spec's JSON body, `{"errors":[{"code":..., "message":..., "detail":...}]}`.
/// When the registry listens beyond loopback every request needs the cluster secret, as a
/// bearer token or as the password of basic authentication (what `--creds` gives skopeo).
public final class Registry: Sendable {
    public let store: ImageStore
    let token: String?
    let logger: Logger

    public init(store: ImageStore, token: String? = nil, logger: Logger) {
        self.store = store
        self.token = token
        self.logger = logger
    }

    public func respond(to request: Request) async -> Response {
        var response: Response
        do {
            try authorize(request)
            response = try await route(RegistryRequest(request), request)
        } catch {
            response = Self.errorResponse(error, method: request.method, logger: logger)
        }
        response.headers[RegistryHeader.apiVersion] = "registry/2.0"
        return response
    }

    private func authorize(_ request: Request) throws {
        guard let token else { return }
        let given = request.headers[.authorization] ?? ""
        if given.hasPrefix("Bearer "), Self.constantTimeEqual(String(given.dropFirst(7)), token) { return }
        if given.hasPrefix("Basic "), let decoded = Data(base64Encoded: String(given.dropFirst(6))),
           let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":"),
           Self.constantTimeEqual(String(text[text.index(after: colon)...]), token) {
            return
        }
        throw RegistryError.unauthorized
    }

    static func constantTimeEqual(_ left: String, _ right: String) -> Bool {
        let a = Array(left.utf8)
        let b = Array(right.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    func route(_ call: RegistryRequest, _ request: Request) async throws -> Response {
        var path = call.components
        guard path.first == "v2" else { throw RegistryError.notFound(path: request.uri.path) }
        path.removeFirst()
        if path.isEmpty {
            guard call.method == .get || call.method == .head else { throw RegistryError.methodNotAllowed(call.method) }
            return Self.jsonBytes(Array("{}".utf8), method: call.method)
        }
        if Self.answersFromIndex(path, call.method) {
            // See first what a `strata image` command changed meanwhile.
            try await store.reloadIfTakenOver()
        }
        if path == ["_catalog"] {
            guard call.method == .get else { throw RegistryError.methodNotAllowed(call.method) }
            return try catalog(call)
        }
        // The name may itself hold slashes: the route is read from the path's end.
        let count = path.count
        if count >= 3, path[count - 1] == "uploads", path[count - 2] == "blobs" {
            return try await startUpload(call, request, name: name(path.dropLast(2)))
        }
        if count >= 4, path[count - 3] == "blobs", path[count - 2] == "uploads" {
            return try await upload(call, request, name: name(path.dropLast(3)), id: path[count - 1])
        }
        if count >= 3, path[count - 2] == "blobs" {
            return try await blob(call, request, name: name(path.dropLast(2)), digest: path[count - 1])
        }
        if count >= 3, path[count - 2] == "manifests" {
            return try await manifest(call, request, name: name(path.dropLast(2)), reference: path[count - 1])
        }
        if count >= 3, path[count - 2] == "tags", path[count - 1] == "list" {
            guard call.method == .get else { throw RegistryError.methodNotAllowed(call.method) }
            return try tags(call, name: name(path.dropLast(2)))
        }
        if count >= 3, path[count - 2] == "referrers" {
            guard call.method == .get else { throw RegistryError.methodNotAllowed(call.method) }
            return try await referrers(call, name: name(path.dropLast(2)), digest: path[count - 1])
        }
        throw RegistryError.notFound(path: request.uri.path)
    }

    /// Whether a request (its path after `/v2/`) is answered from the image index: manifests,
    /// tags, the catalog, referrers and blob deletion are; blob reads and uploads go to the
    /// blobs' files alone.
    static func answersFromIndex(_ path: [String], _ method: HTTPRequest.Method) -> Bool {
        let count = path.count
        if count >= 3, path[count - 1] == "uploads", path[count - 2] == "blobs" { return false }
        if count >= 4, path[count - 3] == "blobs", path[count - 2] == "uploads" { return false }
        if count >= 3, path[count - 2] == "blobs" { return method == .delete }
        return true
    }

    /// A repository name from the path's components, checked against the spec's grammar.
    func name(_ components: ArraySlice<String>) throws -> String {
        let name = components.joined(separator: "/")
        try ImageNames.validateRepository(name)
        return name
    }

    // MARK: - Listings

    func catalog(_ call: RegistryRequest) throws -> Response {
        let (limit, last) = try call.page()
        // n=0 asks for an empty page, without a link.
        let page = store.listRepositories(n: limit == 0 ? nil : limit, last: last)
        let names = limit == 0 ? [] : page.names
        struct Catalog: Encodable { var repositories: [String] }
        var response = try Self.json(Catalog(repositories: names))
        if limit != 0, page.more, let limit, let next = names.last {
            response.headers[RegistryHeader.link] = "</v2/_catalog?n=\(limit)&last=\(RegistryRequest.escape(next))>; rel=\"next\""
        }
        return response
    }

    func tags(_ call: RegistryRequest, name: String) throws -> Response {
        let (limit, last) = try call.page()
        let page = try store.listTags(repository: name, n: limit == 0 ? nil : limit, last: last)
        let names = limit == 0 ? [] : page.names
        struct Tags: Encodable { var name: String; var tags: [String] }
        var response = try Self.json(Tags(name: name, tags: names))
        if limit != 0, page.more, let limit, let next = names.last {
            response.headers[RegistryHeader.link] = "</v2/\(name)/tags/list?n=\(limit)&last=\(RegistryRequest.escape(next))>; rel=\"next\""
        }
        return response
    }

    // MARK: - Responses

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        jsonBytes(Array(try JSONAPI.encoder().encode(value)), status: status)
    }

    static func jsonBytes(_ bytes: [UInt8], status: HTTPResponse.Status = .ok, method: HTTPRequest.Method = .get) -> Response {
        let headers: HTTPFields = [.contentType: "application/json", .contentLength: "\(bytes.count)"]
        let body = method == .head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        return Response(status: status, headers: headers, body: body)
    }

    static func empty(_ status: HTTPResponse.Status, _ headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentLength] = "0"
        return Response(status: status, headers: headers, body: ResponseBody())
    }

    static func errorResponse(_ error: any Error, method: HTTPRequest.Method, logger: Logger) -> Response {
        let failure = RegistryError(error)
        if failure.status.code >= 500 { logger.warning("registry request failed", metadata: ["error": "\(error)"]) }
        struct Entry: Encodable { var code: String; var message: String; var detail: [String: String]? }
        struct Body: Encodable { var errors: [Entry] }
        let body = (try? JSONAPI.encoder().encode(Body(errors: [Entry(code: failure.code, message: failure.message, detail: failure.detail)])))
            .map { Array($0) } ?? Array(#"{"errors":[]}"#.utf8)
        var response = jsonBytes(body, status: failure.status, method: method)
        for (name, value) in failure.headers { response.headers[name] = value }
        return response
    }
}

/// A header's name (HTTPTypes' `HTTPField.Name`).
typealias FieldName = HTTPFields.Element.Name

/// Header names the distribution spec uses.
enum RegistryHeader {
    static let apiVersion = FieldName("Docker-Distribution-API-Version")!
    static let contentDigest = FieldName("Docker-Content-Digest")!
    static let uploadUUID = FieldName("Docker-Upload-UUID")!
    static let range = FieldName("Range")!
    static let contentRange = FieldName("Content-Range")!
    static let acceptRanges = FieldName("Accept-Ranges")!
    static let link = FieldName("Link")!
    static let ociSubject = FieldName("OCI-Subject")!
    static let filtersApplied = FieldName("OCI-Filters-Applied")!
    static let wwwAuthenticate = FieldName("WWW-Authenticate")!
}

/// What the registry needs of a request: method, path components (percent-decoded) and query.
struct RegistryRequest {
    var method: HTTPRequest.Method
    var components: [String]
    var query: [String: String]

    init(_ request: Request) {
        let call = APIRequest(request)
        method = call.method
        components = call.components
        query = call.query
    }

    /// `n` and `last` of a listing; 400 for an `n` that is not a count.
    func page() throws -> (limit: Int?, last: String?) {
        var limit: Int?
        if let text = query["n"] {
            guard let value = Int(text), value >= 0 else { throw RegistryError(status: .badRequest, code: "PAGINATION_NUMBER_INVALID", "n must be a count, not '\(text)'") }
            limit = value
        }
        let last = query["last"].flatMap { $0.isEmpty ? nil : $0 }
        return (limit, last)
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}
