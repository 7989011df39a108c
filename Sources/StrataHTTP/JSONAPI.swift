import Foundation
import Hummingbird
import NIOCore

/// An error an HTTP API answers with: a status and a JSON body `{"message": "..."}` (Marathon's
/// and Mesos' operator APIs answer errors this way).
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code) \(message)" }

    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    public static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }
    public static func conflict(_ message: String) -> APIError { APIError(.conflict, message) }
    public static func forbidden(_ message: String) -> APIError { APIError(.forbidden, message) }
    public static func unprocessable(_ message: String) -> APIError { APIError(.unprocessableContent, message) }
}

/// Encoding and decoding of JSON request and response bodies, with a bound on what is read.
public enum JSONAPI {
    /// The largest request body an API reads (a job with many inputs is a few kilobytes).
    public static let maximumRequestBytes = 4 * 1024 * 1024

    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A 200 (or `status`) response with `value` as its JSON body.
    public static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        do {
            return bytes(Array(try encoder().encode(value)), status: status, contentType: "application/json")
        } catch {
            return self.error(APIError(.internalServerError, "could not encode the answer: \(error)"))
        }
    }

    public static func bytes(_ bytes: [UInt8], status: HTTPResponse.Status = .ok, contentType: String) -> Response {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        return Response(
            status: status, headers: [.contentType: contentType, .contentLength: "\(buffer.readableBytes)"],
            body: ResponseBody(byteBuffer: buffer))
    }

    /// The JSON error body for `error`: an `APIError`'s status and message, or 500.
    public static func error(_ error: any Error) -> Response {
        let apiError = error as? APIError ?? APIError(.internalServerError, "\(error)")
        struct Body: Encodable { var message: String }
        var buffer = ByteBuffer()
        let encoded: Data? = try? encoder().encode(Body(message: apiError.message))
        buffer.writeBytes(encoded.map { Array($0) } ?? Array(#"{"message":"error"}"#.utf8))
        return Response(
            status: apiError.status, headers: [.contentType: "application/json", .contentLength: "\(buffer.readableBytes)"],
            body: ResponseBody(byteBuffer: buffer))
    }

    /// Reads and decodes a request's JSON body: 413 past the bound, 400 with the decoder's
    /// complaint for malformed JSON.
    /// A request's whole body, at most `maximumRequestBytes` (413 beyond).
    public static func bodyBytes(of request: Request) async throws -> [UInt8] {
        do {
            return Array(try await request.body.collect(upTo: maximumRequestBytes).readableBytesView)
        } catch {
            throw APIError(.contentTooLarge, "the request body is larger than \(maximumRequestBytes) bytes")
        }
    }

    public static func decode<Value: Decodable>(_ type: Value.Type, from request: Request) async throws -> Value {
        let bytes = try await bodyBytes(of: request)
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw APIError.badRequest("malformed JSON: \(describe(error))")
        } catch {
            throw APIError.badRequest("malformed JSON: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
            return keys.isEmpty ? "" : " at \(keys.joined(separator: "."))"
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return context.debugDescription + path(context)
        case .keyNotFound(let key, let context):
            return "missing field '\(key.stringValue)'" + path(context)
        @unknown default:
            return "\(error)"
        }
    }
}
