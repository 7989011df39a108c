import Foundation
import Hummingbird
import StrataNameNode
import StrataWire

/// One parsed WebHDFS call: `/webhdfs/v1<path>?op=...`.
struct WebHDFSRequest: Sendable {
    static let prefix = "/webhdfs/v1"
    /// HDFS's default web user when `user.name` is not given (`hadoop.http.staticuser.user`).
    static let defaultUser = "dr.who"

    let method: HTTPRequest.Method
    /// The DFS path, decoded and checked.
    let path: String
    /// The path as it came in the URL (still percent-encoded), for redirects.
    let encodedPath: String
    let parameters: WebHDFSParameters
    /// The operation, upper-cased.
    let operation: String
    let user: String

    /// Nil when the URL is not a WebHDFS URL at all.
    init?(_ request: Request) throws(RemoteException) {
        let rawPath = request.uri.path
        guard rawPath.hasPrefix(Self.prefix) else { return nil }
        var rest = String(rawPath.dropFirst(Self.prefix.count))
        guard rest.isEmpty || rest.hasPrefix("/") else { return nil }
        if rest.isEmpty { rest = "/" }
        encodedPath = rest
        guard let decoded = rest.removingPercentEncoding else {
            throw RemoteException.invalidPath(rest, "malformed percent-encoding")
        }
        // Checks the path the way the name node will (absolute, no empty, "." or ".." parts).
        _ = try PathName.components(decoded)
        path = decoded
        method = request.head.method
        parameters = WebHDFSParameters(query: request.uri.query)
        guard let operation = parameters["op"], !operation.isEmpty else {
            throw WebHDFSParameters.invalid("op", "null (an op must be given)")
        }
        self.operation = operation.uppercased()
        let named = parameters["user.name"] ?? ""
        user = named.isEmpty ? Self.defaultUser : named
        if let proxy = parameters["doas"], !proxy.isEmpty, proxy != user {
            throw RemoteException.accessDenied("User: \(user) is not allowed to impersonate \(proxy)")
        }
    }

    /// The HDFS operations of each method (those Strata serves and those it does not), for the
    /// error a client gets when it uses one with the wrong method or an unknown one.
    static let hdfsOperations: [HTTPRequest.Method: Set<String>] = [
        .get: [
            "OPEN", "GETFILESTATUS", "LISTSTATUS", "LISTSTATUS_BATCH", "GETCONTENTSUMMARY", "GETQUOTAUSAGE", "GETFILECHECKSUM",
            "GETHOMEDIRECTORY", "GETDELEGATIONTOKEN", "GETTRASHROOT", "GETXATTRS", "LISTXATTRS", "CHECKACCESS",
            "GETALLSTORAGEPOLICY", "GETSTORAGEPOLICY", "GETSNAPSHOTDIFF", "GETSNAPSHOTDIFFLISTING", "GETSNAPSHOTTABLEDIRECTORYLIST",
            "GETSNAPSHOTLIST", "GETFILEBLOCKLOCATIONS", "GETECPOLICY", "GETSERVERDEFAULTS", "GETLINKTARGET", "GETFILELINKSTATUS",
            "GETSTATUS", "GETECPOLICIES", "GETACLSTATUS",
        ],
        .put: [
            "CREATE", "MKDIRS", "CREATESYMLINK", "RENAME", "SETREPLICATION", "SETOWNER", "SETPERMISSION", "SETTIMES",
            "RENEWDELEGATIONTOKEN", "CANCELDELEGATIONTOKEN", "ALLOWSNAPSHOT", "DISALLOWSNAPSHOT", "CREATESNAPSHOT", "RENAMESNAPSHOT",
            "SETXATTR", "REMOVEXATTR", "SETSTORAGEPOLICY", "SATISFYSTORAGEPOLICY", "ENABLEECPOLICY", "DISABLEECPOLICY", "SETECPOLICY",
            "MODIFYACLENTRIES", "REMOVEACLENTRIES", "REMOVEDEFAULTACL", "REMOVEACL", "SETACL", "SETQUOTA", "SETQUOTABYSTORAGETYPE",
        ],
        .post: ["APPEND", "CONCAT", "TRUNCATE", "UNSETSTORAGEPOLICY", "UNSETECPOLICY"],
        .delete: ["DELETE", "DELETESNAPSHOT"],
    ]

    /// The error for an operation this server does not serve with this method.
    func unsupported(on server: String) -> RemoteException {
        let methodName = method.rawValue.capitalized
        if Self.hdfsOperations[method]?.contains(operation) == true {
            return RemoteException(.unsupportedOperation, "\(operation) is not supported by the Strata \(server)")
        }
        return WebHDFSParameters.invalid(
            "op", "No enum constant org.apache.hadoop.hdfs.web.resources.\(methodName)OpParam.Op.\(operation)")
    }
}

extension Response {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var buffer = ByteBuffer()
        buffer.writeString(value.encoded())
        return Response(
            status: status, headers: [.contentType: "application/json", .contentLength: "\(buffer.readableBytes)"],
            body: ResponseBody(byteBuffer: buffer))
    }

    static func empty(status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentLength] = "0"
        return Response(status: status, headers: headers, body: ResponseBody())
    }

    static func error(_ error: any Error) -> Response {
        let exception = WebHDFSError.remoteException(for: error)
        var buffer = ByteBuffer()
        buffer.writeString(WebHDFSError.body(exception))
        return Response(
            status: WebHDFSError.status(for: exception.exceptionClass),
            headers: [.contentType: "application/json", .contentLength: "\(buffer.readableBytes)"],
            body: ResponseBody(byteBuffer: buffer))
    }

    static func text(_ text: String, contentType: String) -> Response {
        var buffer = ByteBuffer()
        buffer.writeString(text)
        return Response(
            status: .ok, headers: [.contentType: contentType, .contentLength: "\(buffer.readableBytes)"], body: ResponseBody(byteBuffer: buffer))
    }
}

/// Times and counts a request, and turns any failure into its WebHDFS error response.
func serve(
    _ request: Request, metrics: HTTPMetrics, metricsText: @Sendable () -> String,
    _ body: (WebHDFSRequest) async throws -> Response
) async -> Response {
    let started = ContinuousClock.now
    var operation = "unknown"
    let response: Response
    if request.uri.path == "/metrics" && request.head.method == .get {
        response = .text(metricsText(), contentType: "text/plain; version=0.0.4")
        operation = "metrics"
    } else {
        do {
            if let call = try WebHDFSRequest(request) {
                if WebHDFSRequest.hdfsOperations.values.contains(where: { $0.contains(call.operation) }) { operation = call.operation }
                response = try await body(call)
            } else {
                response = .error(RemoteException(.fileNotFound, "No such resource: \(request.uri.path) (WebHDFS URLs start with \(WebHDFSRequest.prefix)/)"))
            }
        } catch {
            response = .error(error)
        }
    }
    let elapsed = ContinuousClock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    metrics.record(operation: operation, status: Int(response.status.code), seconds: seconds)
    return response
}
