import Foundation
import Hummingbird
import StrataImages

/// An error as the distribution spec has the registry answer it: a status, a code from its
/// table, a message, and headers some of them need (416's `Range`, 401's `WWW-Authenticate`).
struct RegistryError: Error, CustomStringConvertible {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var detail: [String: String]?
    var headers: [(FieldName, String)] = []

    init(status: HTTPResponse.Status, code: String, _ message: String, detail: [String: String]? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
    }

    var description: String { "\(status.code) \(code): \(message)" }

    static let unauthorized: RegistryError = {
        var error = RegistryError(status: .unauthorized, code: "UNAUTHORIZED", "this registry needs the cluster secret (bearer token, or the password of basic authentication)")
        error.headers = [(RegistryHeader.wwwAuthenticate, "Basic realm=\"strata\"")]
        return error
    }()

    static func notFound(path: String) -> RegistryError {
        RegistryError(status: .notFound, code: "NOT_FOUND", "no such endpoint: \(path)")
    }

    static func methodNotAllowed(_ method: HTTPRequest.Method) -> RegistryError {
        RegistryError(status: .methodNotAllowed, code: "UNSUPPORTED", "\(method) is not supported here")
    }

    /// The store's errors with the statuses the spec and the reference registry give them;
    /// anything else is a 500 that says what failed.
    init(_ error: any Error) {
        if let error = error as? RegistryError {
            self = error
            return
        }
        guard let error = error as? ImageStoreError else {
            self.init(status: .internalServerError, code: "UNKNOWN", "\(error)")
            return
        }
        let status: HTTPResponse.Status
        switch error {
        case .blobUnknown, .blobUploadUnknown, .manifestUnknown, .nameUnknown: status = .notFound
        case .blobUploadInvalid, .digestInvalid, .manifestBlobUnknown, .manifestInvalid, .nameInvalid, .sizeInvalid, .tagInvalid:
            status = .badRequest
        case .unsupported: status = .methodNotAllowed
        case .rangeInvalid: status = .rangeNotSatisfiable
        }
        var detail: [String: String]?
        if case .blobUnknown(let digest) = error { detail = ["digest": digest.description] }
        if case .manifestBlobUnknown(let digest) = error { detail = ["digest": digest.description] }
        self.init(status: status, code: error.code == "RANGE_INVALID" ? "BLOB_UPLOAD_INVALID" : error.code, error.message, detail: detail)
    }
}
