/// What a manifest or index says about the content it points to (OCI image spec, "Content
/// Descriptors"). Fields the store does not know are ignored when decoding.
public struct Descriptor: Codable, Hashable, Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: UInt64
    public var annotations: [String: String]?
    public var platform: Platform?
    public var urls: [String]?
    public var artifactType: String?

    public init(
        mediaType: String, digest: Digest, size: UInt64, annotations: [String: String]? = nil, platform: Platform? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }

    /// The annotation with the tag an OCI image layout gives a manifest.
    public static let refNameAnnotation = "org.opencontainers.image.ref.name"
}

/// The machine an image runs on.
public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }

    /// What agents run: Linux on x86-64.
    public static let linuxAMD64 = Platform(architecture: "amd64", os: "linux")

    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }
}
