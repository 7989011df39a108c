/// The media types of manifests, indexes, configs and layers the image store knows (the OCI
/// image spec's and Docker's image manifest v2 schema 2).
public enum OCIMediaType {
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let imageConfig = "application/vnd.oci.image.config.v1+json"
    public static let imageLayout = "application/vnd.oci.layout.header.v1+json"

    public static let layerTar = "application/vnd.oci.image.layer.v1.tar"
    public static let layerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let layerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let layerNondistributableTar = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let layerNondistributableTarGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let layerNondistributableTarZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerTarGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    /// An uncompressed Docker layer, as `docker save` writes them (containerd's name for it).
    public static let dockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerForeignLayerTarGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    /// Docker schema 1: not supported.
    public static let dockerManifestV1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerManifestV1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

    /// Media types of a single image's manifest.
    public static let imageManifests: Set<String> = [imageManifest, dockerManifest]
    /// Media types of an index of manifests.
    public static let indexes: Set<String> = [imageIndex, dockerManifestList]
    /// Every manifest media type the store accepts.
    public static let manifests: Set<String> = imageManifests.union(indexes)

    /// How a layer's bytes are compressed, from its media type.
    public enum Compression: String, Sendable, Equatable {
        case uncompressed, gzip, zstd
    }

    /// The compression a layer media type says, or nil for one that is not a layer type.
    public static func layerCompression(_ mediaType: String) -> Compression? {
        switch mediaType {
        case layerTar, layerNondistributableTar, dockerLayerTar: .uncompressed
        case layerTarGzip, layerNondistributableTarGzip, dockerLayerTarGzip, dockerForeignLayerTarGzip: .gzip
        case layerTarZstd, layerNondistributableTarZstd: .zstd
        default: nil
        }
    }

    /// Layers a registry does not hold (their bytes are fetched from their `urls`): a manifest
    /// naming one is accepted without the blob.
    public static func isNondistributable(_ mediaType: String) -> Bool {
        mediaType.contains(".nondistributable.") || mediaType.contains(".foreign.")
    }
}
