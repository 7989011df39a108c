import Foundation

extension ImageSource {
    struct LayoutHeader: Decodable { var imageLayoutVersion: String }

    /// The largest index.json, manifest.json or config read.
    static let maximumMetadataBytes = 16 << 20

    /// An OCI image layout (in a directory or an archive): `oci-layout`, `index.json`, and
    /// `blobs/sha256/<hex>`.
    static func openLayout(_ files: some LayoutFiles, format: Format, reference: String?, preferring: String?) throws -> ImageSource {
        let headerBytes = try files.read("oci-layout", maximumBytes: 1 << 16)
        guard let header = try? JSONDecoder().decode(LayoutHeader.self, from: Data(headerBytes)) else {
            throw ImageSourceError("\(files.location): oci-layout is not an image layout header")
        }
        guard header.imageLayoutVersion.hasPrefix("1.") else {
            throw ImageSourceError("\(files.location): image layout version \(header.imageLayoutVersion) is not supported")
        }
        let index: OCIImageIndex
        do {
            index = try JSONDecoder().decode(OCIImageIndex.self, from: Data(try files.read("index.json", maximumBytes: maximumMetadataBytes)))
        } catch let error as ImageSourceError {
            throw error
        } catch {
            throw ImageSourceError("\(files.location): index.json is not an image index: \(Manifest.reason(error))")
        }
        let names = index.manifests.map { $0.annotations?[Descriptor.refNameAnnotation] }
        let chosen = try choose(
            index.manifests, names: names, reference: reference, preferring: preferring, location: files.location)

        var source = ImageSource(format: format, manifests: [], blobs: [:])
        try source.addLayoutManifest(chosen, from: files, depth: 0)
        return source
    }

    /// Picks the one image of several by its name.
    static func choose<Item>(
        _ items: [Item], names: [String?], reference: String?, preferring: String?, location: String,
        matches: (String, String) -> Bool = { $0 == $1 }
    ) throws -> Item {
        let listed = names.compactMap { $0 }
        if let reference {
            guard let position = names.firstIndex(where: { $0.map { matches($0, reference) } ?? false }) else {
                throw ImageSourceError("\(location) has no image named \(reference) (it has: \(listed.isEmpty ? "none named" : listed.joined(separator: ", ")))")
            }
            return items[position]
        }
        guard !items.isEmpty else { throw ImageSourceError("\(location) holds no image") }
        if items.count == 1 { return items[0] }
        if let preferring, let position = names.firstIndex(where: { $0.map { matches($0, preferring) } ?? false }) {
            return items[position]
        }
        throw ImageSourceError("\(location) holds \(items.count) images; name one with --ref (it has: \(listed.joined(separator: ", ")))")
    }

    /// Adds a manifest of a layout and the blobs it names (an index's children first).
    mutating func addLayoutManifest(_ descriptor: Descriptor, from files: some LayoutFiles, depth: Int) throws {
        guard depth < 4 else { throw ImageSourceError("\(files.location): indexes nested too deep") }
        let bytes = try files.read(Self.blobName(descriptor.digest), maximumBytes: Manifest.maximumBytes)
        guard Digest.of(bytes) == descriptor.digest else {
            throw ImageSourceError("\(files.location): manifest \(descriptor.digest) does not have that digest (damaged layout)")
        }
        let manifest: Manifest
        do {
            manifest = try Manifest(bytes: bytes, declaredMediaType: descriptor.mediaType)
        } catch {
            throw ImageSourceError("\(files.location): manifest \(descriptor.digest): \(error.message)")
        }
        for child in manifest.children {
            guard files.contains(Self.blobName(child.digest)) else {
                throw ImageSourceError(
                    "\(files.location): the index names manifest \(child.digest) (\(child.platform?.description ?? "no platform")), which is not in the layout; copy the image with all its platforms (skopeo copy --all)")
            }
            try addLayoutManifest(child, from: files, depth: depth + 1)
        }
        for blob in manifest.blobs {
            guard let range = try files.range(Self.blobName(blob.digest)) else {
                throw ImageSourceError("\(files.location): blob \(blob.digest) (\(blob.mediaType)) is missing")
            }
            guard range.length == blob.size else {
                throw ImageSourceError("\(files.location): blob \(blob.digest) has \(range.length) bytes; the manifest says \(blob.size)")
            }
            blobs[blob.digest] = range
        }
        if !manifests.contains(where: { $0.digest == manifest.digest }) { manifests.append(manifest) }
    }

    static func blobName(_ digest: Digest) -> String { "blobs/sha256/" + digest.hex }
}
