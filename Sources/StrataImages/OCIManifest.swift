import Foundation

/// An image manifest: a config and layers (OCI `application/vnd.oci.image.manifest.v1+json`, or
/// Docker schema 2 `application/vnd.docker.distribution.manifest.v2+json`, which has the same
/// shape).
public struct OCIImageManifest: Codable, Hashable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String, config: Descriptor, layers: [Descriptor], annotations: [String: String]? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}

/// An index of manifests, usually one per platform (OCI `application/vnd.oci.image.index.v1+json`,
/// or a Docker manifest list `application/vnd.docker.distribution.manifest.list.v2+json`). Also
/// the shape of an OCI image layout's `index.json`.
public struct OCIImageIndex: Codable, Hashable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String?, manifests: [Descriptor], annotations: [String: String]? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }
}

/// A manifest or index as it was pushed: its exact bytes (its digest is over them, so they are
/// stored and served as they are, never re-encoded), its media type and what it says.
public struct Manifest: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        case image(OCIImageManifest)
        case index(OCIImageIndex)
    }

    public let bytes: [UInt8]
    public let digest: Digest
    public let mediaType: String
    public let content: Content

    /// The largest manifest the store takes (the distribution spec suggests registries accept
    /// at least 4 MiB).
    public static let maximumBytes = 4 << 20

    /// Parses `bytes` as a manifest. `declaredMediaType` is what the pusher said it is (an HTTP
    /// Content-Type), if anything: it must agree with the manifest's own `mediaType` field when
    /// both are given. With neither, the fields decide (`manifests`: an OCI index; `config`: an
    /// OCI image manifest). Unknown fields are accepted.
    public init(bytes: [UInt8], declaredMediaType: String? = nil) throws(ImageStoreError) {
        guard bytes.count <= Self.maximumBytes else {
            throw .sizeInvalid("a manifest of \(bytes.count) bytes is over the limit of \(Self.maximumBytes)")
        }
        let data = Data(bytes)
        let probe: Probe
        do {
            probe = try JSONDecoder().decode(Probe.self, from: data)
        } catch {
            throw .manifestInvalid("the manifest is not a JSON object with a schemaVersion: \(Self.reason(error))")
        }
        let declared = declaredMediaType.flatMap(Self.essence)
        if probe.schemaVersion == 1 || declared == OCIMediaType.dockerManifestV1 || declared == OCIMediaType.dockerManifestV1Signed {
            throw .unsupported("Docker schema 1 manifests are not supported")
        }
        guard probe.schemaVersion == 2 else {
            throw .manifestInvalid("schemaVersion \(probe.schemaVersion) is not supported: expected 2")
        }
        if let own = probe.mediaType, let declared, OCIMediaType.manifests.contains(declared), own != declared {
            throw .manifestInvalid("the manifest says its media type is \(own), but it was sent as \(declared)")
        }
        let mediaType: String
        if let own = probe.mediaType {
            mediaType = own
        } else if let declared, OCIMediaType.manifests.contains(declared) {
            mediaType = declared
        } else if probe.manifests != nil {
            mediaType = OCIMediaType.imageIndex
        } else {
            mediaType = OCIMediaType.imageManifest
        }
        guard OCIMediaType.manifests.contains(mediaType) else {
            throw .manifestInvalid("media type \(mediaType) is not a manifest or index the store knows")
        }
        do {
            if OCIMediaType.indexes.contains(mediaType) {
                content = .index(try JSONDecoder().decode(OCIImageIndex.self, from: data))
            } else {
                content = .image(try JSONDecoder().decode(OCIImageManifest.self, from: data))
            }
        } catch {
            throw .manifestInvalid("not a valid \(mediaType): \(Self.reason(error))")
        }
        self.bytes = bytes
        self.mediaType = mediaType
        self.digest = Digest.of(bytes)
    }

    /// The blobs this manifest needs in the store: an image manifest's config and layers (not
    /// the nondistributable ones, which registries do not hold); none for an index.
    public var blobs: [Descriptor] {
        guard case .image(let manifest) = content else { return [] }
        return ([manifest.config] + manifest.layers).filter { !OCIMediaType.isNondistributable($0.mediaType) }
    }

    /// The manifests an index names; none for an image manifest.
    public var children: [Descriptor] {
        guard case .index(let index) = content else { return [] }
        return index.manifests
    }

    /// The image manifest, if this is one.
    public var image: OCIImageManifest? {
        if case .image(let manifest) = content { return manifest }
        return nil
    }

    /// The index, if this is one.
    public var index: OCIImageIndex? {
        if case .index(let index) = content { return index }
        return nil
    }

    /// Just enough of a manifest to tell which kind it is.
    private struct Probe: Decodable {
        var schemaVersion: Int
        var mediaType: String?
        var manifests: [IgnoredValue]?
    }

    private struct IgnoredValue: Decodable {}

    /// A media type without parameters (`application/json; charset=utf-8` -> `application/json`).
    static func essence(_ mediaType: String) -> String? {
        let essence = mediaType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return essence?.isEmpty == false ? essence : nil
    }

    static func reason(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?:
            return "missing \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?, .dataCorrupted(let context)?:
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

extension JSONEncoder {
    /// How the store writes JSON it makes itself (manifests converted from a docker-archive, a
    /// layout's index.json): sorted keys, no escaped slashes, so the same input gives the same bytes.
    static var canonical: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
