import Foundation
import Hummingbird
import NIOCore
import StrataHTTP
import StrataImages

extension Registry {
    func manifest(_ call: RegistryRequest, _ request: Request, name: String, reference text: String) async throws -> Response {
        let reference = try ManifestReference(parsing: text)
        switch call.method {
        case .head:
            let (digest, entry) = try knownManifest(name, reference)
            return Response(status: .ok, headers: manifestHeaders(digest: digest, mediaType: entry.mediaType, size: entry.size), body: ResponseBody())
        case .get:
            _ = try knownManifest(name, reference)
            let stored = try await store.getManifest(repository: name, reference: reference)
            return Response(
                status: .ok, headers: manifestHeaders(digest: stored.digest, mediaType: stored.mediaType, size: UInt64(stored.bytes.count)),
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: stored.bytes)))
        case .put:
            if let length = contentLength(request), length > UInt64(Manifest.maximumBytes) {
                throw RegistryError(status: .contentTooLarge, code: "SIZE_INVALID", "a manifest of \(length) bytes is over the limit of \(Manifest.maximumBytes)")
            }
            var bytes: [UInt8] = []
            for try await buffer in request.body {
                bytes += buffer.readableBytesView
                if bytes.count > Manifest.maximumBytes {
                    throw RegistryError(status: .contentTooLarge, code: "SIZE_INVALID", "a manifest is limited to \(Manifest.maximumBytes) bytes")
                }
            }
            // The media type without parameters (`; charset=...`), which the spec says to ignore.
            let mediaType = request.headers[.contentType].map(Self.withoutParameters)
            let digest = try await store.putManifest(repository: name, reference: reference, bytes: bytes, mediaType: mediaType)
            var headers: HTTPFields = [.location: "/v2/\(name)/manifests/\(digest)", RegistryHeader.contentDigest: digest.description]
            if let parsed = try? Manifest(bytes: bytes, declaredMediaType: mediaType), let subject = parsed.referrer.subject {
                headers[RegistryHeader.ociSubject] = subject.digest.description
            }
            return Self.empty(.created, headers)
        case .delete:
            switch reference {
            case .tag(let tag): try await store.deleteTag(repository: name, tag: tag)
            case .digest(let digest): try await store.deleteManifest(repository: name, digest: digest)
            }
            return Self.empty(.accepted)
        default:
            throw RegistryError.methodNotAllowed(call.method)
        }
    }

    /// The index's entry for a manifest; a repository the registry does not have is
    /// NAME_UNKNOWN, a tag or digest it does not have MANIFEST_UNKNOWN.
    func knownManifest(_ name: String, _ reference: ManifestReference) throws -> (Digest, ImageStoreState.ManifestEntry) {
        try store.manifestEntry(repository: name, reference: reference)
    }

    static func withoutParameters(_ contentType: String) -> String {
        let type = contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? contentType
        return type.trimmingCharacters(in: .whitespaces)
    }

    func manifestHeaders(digest: Digest, mediaType: String, size: UInt64) -> HTTPFields {
        [
            .contentType: mediaType, .contentLength: "\(size)", RegistryHeader.contentDigest: digest.description,
            .eTag: "\"\(digest)\"",
        ]
    }

    /// The referrers API: an image index of the repository's manifests whose `subject` is
    /// `digest`, each described by its artifact type and annotations.
    func referrers(_ call: RegistryRequest, name: String, digest text: String) async throws -> Response {
        let digest = try Digest(parsing: text)
        let filter = call.query["artifactType"].flatMap { $0.isEmpty ? nil : $0 }
        var descriptors: [Descriptor] = []
        let entries = (try? store.index.repository(name).manifests) ?? [:]
        for (candidate, entry) in entries.sorted(by: { $0.key < $1.key }) {
            guard let stored = try? await store.getManifest(repository: name, reference: .digest(candidate)),
                  let manifest = try? Manifest(bytes: stored.bytes, declaredMediaType: stored.mediaType),
                  manifest.referrer.subject?.digest == digest else { continue }
            let referrer = manifest.referrer
            if let filter, referrer.artifactType != filter { continue }
            var descriptor = Descriptor(mediaType: entry.mediaType, digest: candidate, size: entry.size, annotations: referrer.annotations)
            descriptor.artifactType = referrer.artifactType
            descriptors.append(descriptor)
        }
        let index = OCIImageIndex(mediaType: OCIMediaType.imageIndex, manifests: descriptors)
        var response = Response(
            status: .ok, headers: [.contentType: OCIMediaType.imageIndex],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONAPI.encoder().encode(index))))
        if filter != nil { response.headers[RegistryHeader.filtersApplied] = "artifactType" }
        return response
    }
}

extension Manifest {
    /// What the referrers API says of a manifest: the manifest it refers to, its artifact type
    /// (an image manifest without one takes its config's media type, as the spec says) and its
    /// annotations.
    var referrer: (subject: Descriptor?, artifactType: String?, annotations: [String: String]?) {
        switch content {
        case .image(let image): (image.subject, image.artifactType ?? image.config.mediaType, image.annotations)
        case .index(let index): (index.subject, index.artifactType, index.annotations)
        }
    }
}
