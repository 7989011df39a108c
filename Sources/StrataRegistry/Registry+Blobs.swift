import Foundation
import Hummingbird
import NIOCore
import StrataImages

extension Registry {
    // MARK: - Blobs

    func blob(_ call: RegistryRequest, _ request: Request, name: String, digest text: String) async throws -> Response {
        let digest = try Digest(parsing: text)
        switch call.method {
        case .head, .get:
            guard let size = try await store.blobInfo(digest) else { throw ImageStoreError.blobUnknown(digest) }
            var headers: HTTPFields = [
                .contentType: "application/octet-stream", RegistryHeader.contentDigest: digest.description,
                RegistryHeader.acceptRanges: "bytes", .eTag: "\"\(digest)\"",
            ]
            var status = HTTPResponse.Status.ok
            var range: Range<UInt64> = 0..<size
            if let header = request.headers[.range], call.method == .get {
                guard let asked = Self.byteRange(header, size: size) else {
                    var error = RegistryError(status: .rangeNotSatisfiable, code: "BLOB_UNKNOWN", "the range \(header) is not within the blob's \(size) bytes")
                    error.headers = [(RegistryHeader.contentRange, "bytes */\(size)")]
                    throw error
                }
                range = asked
                status = .partialContent
                headers[RegistryHeader.contentRange] = "bytes \(asked.lowerBound)-\(asked.upperBound - 1)/\(size)"
            }
            headers[.contentLength] = "\(range.count)"
            if call.method == .head || range.isEmpty {
                return Response(status: status, headers: headers, body: ResponseBody())
            }
            let reader = try await store.openBlob(digest, range: range)
            let logger = self.logger
            let body = ResponseBody(contentLength: range.count) { writer in
                do {
                    try await reader.read { buffer in try await writer.write(buffer) }
                    try await writer.finish(nil)
                } catch {
                    // The status is out: the client sees the connection end early.
                    logger.warning("registry blob read stopped mid-body", metadata: ["digest": "\(digest)", "error": "\(error)"])
                    throw error
                }
            }
            return Response(status: status, headers: headers, body: body)
        case .delete:
            try await store.deleteBlob(digest)
            return Self.empty(.accepted, [RegistryHeader.contentDigest: digest.description])
        default:
            throw RegistryError.methodNotAllowed(call.method)
        }
    }

    /// A single range of `Range: bytes=A-B`, `bytes=A-` or `bytes=-N` within `size`; nil when
    /// it is not satisfiable or not understood.
    static func byteRange(_ header: String, size: UInt64) -> Range<UInt64>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        if parts[0].isEmpty {
            guard let suffix = UInt64(parts[1]), suffix > 0, size > 0 else { return nil }
            return (size - min(suffix, size))..<size
        }
        guard let start = UInt64(parts[0]), start < size else { return nil }
        if parts[1].isEmpty { return start..<size }
        guard let end = UInt64(parts[1]), end >= start else { return nil }
        return start..<(min(end, size - 1) + 1)
    }

    // MARK: - Uploads

    func startUpload(_ call: RegistryRequest, _ request: Request, name: String) async throws -> Response {
        guard call.method == .post else { throw RegistryError.methodNotAllowed(call.method) }
        if let mount = call.query["mount"] {
            // Every repository shares the store's blobs: a blob the store has is mounted as is.
            let digest = try Digest(parsing: mount)
            if try await store.blobInfo(digest) != nil {
                return Self.empty(.created, [.location: "/v2/\(name)/blobs/\(digest)", RegistryHeader.contentDigest: digest.description])
            }
        }
        if let text = call.query["digest"] {
            // A monolithic upload in one POST.
            let digest = try Digest(parsing: text)
            let placed = try await store.putBlob(request.body, expected: digest, expectedSize: contentLength(request))
            return Self.empty(.created, [.location: "/v2/\(name)/blobs/\(placed.digest)", RegistryHeader.contentDigest: placed.digest.description])
        }
        let id = try await store.startUpload()
        return uploadResponse(.accepted, name: name, id: id, length: 0)
    }

    func upload(_ call: RegistryRequest, _ request: Request, name: String, id: String) async throws -> Response {
        switch call.method {
        case .get:
            let length = try await store.uploadLength(id)
            return uploadResponse(.noContent, name: name, id: id, length: length)
        case .patch:
            var offset: UInt64?
            if let header = request.headers[RegistryHeader.contentRange] {
                guard let range = Self.chunkRange(header) else {
                    throw RegistryError(status: .badRequest, code: "BLOB_UPLOAD_INVALID", "Content-Range must be START-END, not '\(header)'")
                }
                if let length = contentLength(request), length != range.count {
                    throw RegistryError(status: .badRequest, code: "SIZE_INVALID", "Content-Range \(header) does not match Content-Length \(length)")
                }
                offset = range.lowerBound
            }
            do {
                let length = try await store.appendUpload(id, request.body, at: offset)
                return uploadResponse(.accepted, name: name, id: id, length: length)
            } catch ImageStoreError.rangeInvalid(let message) {
                var error = RegistryError(status: .rangeNotSatisfiable, code: "BLOB_UPLOAD_INVALID", message)
                let length = (try? await store.uploadLength(id)) ?? 0
                error.headers = uploadHeaders(name: name, id: id, length: length)
                throw error
            }
        case .put:
            guard let text = call.query["digest"] else {
                throw RegistryError(status: .badRequest, code: "DIGEST_INVALID", "closing an upload needs ?digest= of the whole blob")
            }
            let digest = try Digest(parsing: text)
            if contentLength(request) != 0 {
                // The final chunk came with the PUT.
                var offset: UInt64?
                if let header = request.headers[RegistryHeader.contentRange], let range = Self.chunkRange(header) { offset = range.lowerBound }
                try await store.appendUpload(id, request.body, at: offset)
            }
            let placed = try await store.finishUpload(id, digest: digest)
            return Self.empty(.created, [.location: "/v2/\(name)/blobs/\(placed.digest)", RegistryHeader.contentDigest: placed.digest.description])
        case .delete:
            try await store.cancelUpload(id)
            return Self.empty(.noContent)
        default:
            throw RegistryError.methodNotAllowed(call.method)
        }
    }

    func uploadHeaders(name: String, id: String, length: UInt64) -> [(FieldName, String)] {
        // As the reference registry: `0-0` for an empty upload, else the last byte's offset.
        [(.location, "/v2/\(name)/blobs/uploads/\(id)"), (RegistryHeader.range, "0-\(length == 0 ? 0 : length - 1)"), (RegistryHeader.uploadUUID, id)]
    }

    func uploadResponse(_ status: HTTPResponse.Status, name: String, id: String, length: UInt64) -> Response {
        var headers = HTTPFields()
        for (field, value) in uploadHeaders(name: name, id: id, length: length) { headers[field] = value }
        return Self.empty(status, headers)
    }

    /// `START-END` of a chunk (inclusive, as the spec has it); nil otherwise.
    static func chunkRange(_ header: String) -> Range<UInt64>? {
        var text = header.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("bytes ") { text.removeFirst("bytes ".count) }
        let parts = text.split(separator: "-", maxSplits: 1)
        guard parts.count == 2, let start = UInt64(parts[0]), let end = UInt64(parts[1].split(separator: "/").first ?? ""), end >= start else { return nil }
        return start..<(end + 1)
    }

    func contentLength(_ request: Request) -> UInt64? {
        request.headers[.contentLength].flatMap { UInt64($0) }
    }
}
