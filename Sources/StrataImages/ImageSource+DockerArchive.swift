import Foundation

extension ImageSource {
    /// One image of a docker-archive's manifest.json.
    struct DockerArchiveImage: Decodable {
        var config: String
        var repoTags: [String]?
        var layers: [String]

        enum CodingKeys: String, CodingKey {
            case config = "Config"
            case repoTags = "RepoTags"
            case layers = "Layers"
        }
    }

    /// A `docker save` archive, made into a Docker schema 2 manifest: the config and layer files
    /// are the blobs as they are (uncompressed layers stay uncompressed), with their digests
    /// computed and media types from their first bytes.
    static func openDockerArchive(_ files: ArchiveFiles, reference: String?, preferring: String?) throws -> ImageSource {
        let images: [DockerArchiveImage]
        do {
            images = try JSONDecoder().decode([DockerArchiveImage].self, from: Data(try files.read("manifest.json", maximumBytes: maximumMetadataBytes)))
        } catch let error as ImageSourceError {
            throw error
        } catch {
            throw ImageSourceError("\(files.location): manifest.json is not a docker-archive manifest: \(Manifest.reason(error))")
        }
        // One name per image for choosing; an image with several tags matches any of them.
        let names = images.map { $0.repoTags?.joined(separator: " ") }
        let image = try choose(images, names: names, reference: reference, preferring: preferring, location: files.location) { tags, wanted in
            tags.split(separator: " ").contains { tag in tag == wanted || tag.hasSuffix(":" + wanted) || tag.hasSuffix("/" + wanted) }
        }

        var blobs: [Digest: FileRange] = [:]
        let configName = TarEntry.normalize(image.config)
        guard let configRange = try files.range(configName) else { throw ImageSourceError("\(files.location): config \(configName) is missing") }
        let configBytes = try configRange.readAll(maximumBytes: maximumMetadataBytes)
        let configuration: OCIImageConfiguration
        do {
            configuration = try OCIImageConfiguration.decode(configBytes)
        } catch {
            throw ImageSourceError("\(files.location): \(configName): \(error.message)")
        }
        let config = Descriptor(mediaType: OCIMediaType.dockerConfig, digest: Digest.of(configBytes), size: configRange.length)
        blobs[config.digest] = configRange

        var layers: [Descriptor] = []
        for name in image.layers.map(TarEntry.normalize) {
            guard let range = try files.range(name) else { throw ImageSourceError("\(files.location): layer \(name) is missing") }
            let magic = try FileRange(path: range.path, offset: range.offset, length: min(range.length, 4)).readAll(maximumBytes: 4)
            let digest = try range.digest()
            layers.append(Descriptor(mediaType: dockerLayerMediaType(magic), digest: digest, size: range.length))
            blobs[digest] = range
        }
        guard layers.count == configuration.rootfs.diffIDs.count else {
            throw ImageSourceError(
                "\(files.location): the image has \(layers.count) layers, but its config lists \(configuration.rootfs.diffIDs.count) diff_ids")
        }
        let manifest = OCIImageManifest(mediaType: OCIMediaType.dockerManifest, config: config, layers: layers)
        let bytes = Array(try JSONEncoder.canonical.encode(manifest))
        return ImageSource(format: .dockerArchive, manifests: [try Manifest(bytes: bytes, declaredMediaType: OCIMediaType.dockerManifest)], blobs: blobs)
    }

    /// A layer's media type from its first bytes: gzip, zstd, or a plain tar.
    static func dockerLayerMediaType(_ magic: [UInt8]) -> String {
        if magic.starts(with: [0x1f, 0x8b]) { return OCIMediaType.dockerLayerTarGzip }
        if magic.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return OCIMediaType.layerTarZstd }
        return OCIMediaType.dockerLayerTar
    }
}
