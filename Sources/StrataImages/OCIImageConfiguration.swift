import Foundation

/// An image's config blob (OCI image spec, "Image Configuration"; Docker's is the same for what
/// is read here): what a container runs and on which platform, and the layers' uncompressed
/// digests. Unknown fields are ignored.
public struct OCIImageConfiguration: Codable, Hashable, Sendable {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var created: String?
    public var author: String?
    public var config: ContainerConfiguration?
    public var rootfs: RootFileSystem

    public init(architecture: String, os: String, config: ContainerConfiguration?, rootfs: RootFileSystem) {
        self.architecture = architecture
        self.os = os
        self.config = config
        self.rootfs = rootfs
    }

    public var platform: Platform { Platform(architecture: architecture, os: os, variant: variant) }

    /// How a container from the image runs.
    public struct ContainerConfiguration: Codable, Hashable, Sendable {
        public var user: String?
        /// `port/protocol` keys (`80/tcp`); the values are empty objects.
        public var exposedPorts: [String: EmptyObject]?
        public var env: [String]?
        public var entrypoint: [String]?
        public var cmd: [String]?
        public var workingDir: String?
        public var labels: [String: String]?
        public var stopSignal: String?

        enum CodingKeys: String, CodingKey {
            case user = "User"
            case exposedPorts = "ExposedPorts"
            case env = "Env"
            case entrypoint = "Entrypoint"
            case cmd = "Cmd"
            case workingDir = "WorkingDir"
            case labels = "Labels"
            case stopSignal = "StopSignal"
        }

        public init(env: [String]? = nil, entrypoint: [String]? = nil, cmd: [String]? = nil, workingDir: String? = nil, user: String? = nil) {
            self.env = env
            self.entrypoint = entrypoint
            self.cmd = cmd
            self.workingDir = workingDir
            self.user = user
        }
    }

    /// The uncompressed digests of the layers, in order.
    public struct RootFileSystem: Codable, Hashable, Sendable {
        public var type: String
        public var diffIDs: [Digest]

        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }

        public init(diffIDs: [Digest]) {
            type = "layers"
            self.diffIDs = diffIDs
        }
    }

    /// `{}`, the value of each exposed port.
    public struct EmptyObject: Codable, Hashable, Sendable {
        public init() {}
    }

    /// Decodes a config blob.
    public static func decode(_ bytes: [UInt8]) throws(ImageStoreError) -> OCIImageConfiguration {
        do {
            return try JSONDecoder().decode(OCIImageConfiguration.self, from: Data(bytes))
        } catch {
            throw .manifestInvalid("the image config is not valid: \(Manifest.reason(error))")
        }
    }
}
