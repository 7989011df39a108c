import Foundation
import NIOCore
import StrataCore

/// An image in local files, ready to push: an OCI image layout directory, an oci-archive (a tar
/// of a layout, as `skopeo copy ... oci-archive:` writes) or a docker-archive (`docker save`,
/// `podman save`). Nothing is loaded whole: blobs stay where they are, as byte ranges of files.
public struct ImageSource: Sendable {
    public enum Format: String, Sendable, Codable {
        case ociLayout = "oci-layout"
        case ociArchive = "oci-archive"
        case dockerArchive = "docker-archive"
    }

    public var format: Format
    /// The manifests to push, in order: an index's children before the index. The last is the
    /// image itself.
    public var manifests: [Manifest]
    /// Where each blob the manifests name is.
    public var blobs: [Digest: FileRange]

    /// The image's manifest (or index).
    public var top: Manifest { manifests[manifests.count - 1] }

    /// Reads the image at `path`. `reference` picks one of several images (a layout's
    /// `org.opencontainers.image.ref.name`, a docker-archive's RepoTags); without it, the only
    /// image is taken, else the one named `preferring` if there is one.
    public static func open(_ path: String, reference: String? = nil, preferring: String? = nil) throws -> ImageSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImageSourceError("\(path): no such file or directory")
        }
        if isDirectory.boolValue {
            guard FileManager.default.fileExists(atPath: path + "/oci-layout") else {
                throw ImageSourceError("\(path): not an OCI image layout (it has no oci-layout file)")
            }
            return try openLayout(DirectoryFiles(directory: path), format: .ociLayout, reference: reference, preferring: preferring)
        }
        let file = try LocalFile(path: path, mode: .readOnly)
        let magic = try file.read(count: 4, at: 0)
        if magic.starts(with: [0x1f, 0x8b]) {
            throw ImageSourceError("\(path) is gzip-compressed: decompress it first (gunzip), then push the tar")
        }
        if magic.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) {
            throw ImageSourceError("\(path) is zstd-compressed: decompress it first (zstd -d), then push the tar")
        }
        let archive: ArchiveFiles
        do {
            archive = try ArchiveFiles(path: path, file: file)
        } catch let error as TarError {
            throw ImageSourceError("\(path) is not a tar archive of an image: \(error)")
        }
        if archive.contains("oci-layout") {
            return try openLayout(archive, format: .ociArchive, reference: reference, preferring: preferring)
        }
        if archive.contains("manifest.json") {
            return try openDockerArchive(archive, reference: reference, preferring: preferring)
        }
        throw ImageSourceError("\(path) is neither an oci-archive (no oci-layout) nor a docker-archive (no manifest.json)")
    }
}

/// Why a local image could not be read.
public struct ImageSourceError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// Bytes of a local file: the whole file, or a member's data inside an archive.
public struct FileRange: Sendable, Equatable {
    public var path: String
    public var offset: UInt64
    public var length: UInt64

    public init(path: String, offset: UInt64, length: UInt64) {
        self.path = path
        self.offset = offset
        self.length = length
    }

    /// The bytes as chunks of `chunkBytes`, read as they are asked for.
    public func chunks(chunkBytes: Int = 1 << 20) -> FileChunks { FileChunks(range: self, chunkBytes: chunkBytes) }

    /// The bytes in memory, at most `maximumBytes`.
    func readAll(maximumBytes: Int) throws -> [UInt8] {
        guard length <= UInt64(maximumBytes) else {
            throw ImageSourceError("\(path): \(length) bytes at offset \(offset) is more than the \(maximumBytes) expected")
        }
        let file = try LocalFile(path: path, mode: .readOnly)
        let bytes = try file.read(count: Int(length), at: offset)
        guard bytes.count == Int(length) else { throw ImageSourceError("\(path) ends before offset \(offset + length)") }
        return bytes
    }

    /// The digest of the bytes, read in pieces.
    func digest() throws -> Digest {
        let file = try LocalFile(path: path, mode: .readOnly)
        var hasher = SHA256Hasher()
        var position = offset
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while position < offset + length {
            let want = Int(min(UInt64(buffer.count), offset + length - position))
            let got = try buffer.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: position) }
            guard got == want else { throw ImageSourceError("\(path) ends before offset \(offset + length)") }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<want])) }
            position += UInt64(want)
        }
        return hasher.finalize()
    }
}

/// A file range read as an async sequence of buffers, one `pread` per chunk.
public struct FileChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let range: FileRange
    let chunkBytes: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let range: FileRange
        let chunkBytes: Int
        var file: LocalFile?
        var position: UInt64

        public mutating func next() async throws -> ByteBuffer? {
            let end = range.offset + range.length
            guard position < end else { return nil }
            if file == nil { file = try LocalFile(path: range.path, mode: .readOnly) }
            let want = Int(Swift.min(UInt64(chunkBytes), end - position))
            var buffer = ByteBufferAllocator().buffer(capacity: want)
            let got = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { pointer in
                try file!.read(into: UnsafeMutableRawBufferPointer(rebasing: pointer[0..<want]), at: position)
            }
            guard got == want else { throw ImageSourceError("\(range.path) ends before offset \(end)") }
            position += UInt64(want)
            return buffer
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(range: range, chunkBytes: chunkBytes, file: nil, position: range.offset)
    }
}

/// Files of an image layout, by their path inside it.
protocol LayoutFiles {
    func contains(_ name: String) -> Bool
    /// Where a file's bytes are, or nil if it is not there.
    func range(_ name: String) throws -> FileRange?
    var location: String { get }
}

extension LayoutFiles {
    func read(_ name: String, maximumBytes: Int) throws -> [UInt8] {
        guard let range = try range(name) else { throw ImageSourceError("\(location): \(name) is missing") }
        return try range.readAll(maximumBytes: maximumBytes)
    }
}

/// A layout in a directory.
struct DirectoryFiles: LayoutFiles {
    let directory: String
    var location: String { directory }

    func contains(_ name: String) -> Bool { FileManager.default.fileExists(atPath: directory + "/" + name) }

    func range(_ name: String) throws -> FileRange? {
        let path = directory + "/" + name
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            attributes[.type] as? FileAttributeType == .typeRegular, let size = attributes[.size] as? NSNumber
        else { return nil }
        return FileRange(path: path, offset: 0, length: size.uint64Value)
    }
}

/// The regular files of a tar archive, found in one pass over its headers: the contents
/// between them are skipped (seeked past), not read.
struct ArchiveFiles: LayoutFiles {
    let path: String
    var members: [String: FileRange] = [:]
    var location: String { path }

    /// Bytes read at a time: a header and, when the member is small, the next ones too.
    static let readBytes = 64 << 10

    init(path: String, file: LocalFile) throws {
        self.path = path
        var reader = TarReader()
        var links: [(name: String, target: String)] = []
        var position: UInt64 = 0
        while !reader.reachedEndMarker {
            let skipped = reader.bytesToSkip
            reader.skip(skipped)
            position += skipped
            let chunk = try file.read(count: Self.readBytes, at: position)
            if chunk.isEmpty { break }
            position += UInt64(chunk.count)
            try chunk.withUnsafeBytes { chunk in
                var bytes = chunk
                while let event = try reader.next(from: &bytes) {
                    guard case .entry(let entry) = event else { continue }
                    reader.skipContents()
                    switch entry.kind {
                    case .regular:
                        members[entry.normalizedPath] = FileRange(path: path, offset: entry.dataOffset, length: UInt64(entry.size))
                    case .hardLink:
                        links.append((entry.normalizedPath, TarEntry.normalize(entry.linkTarget)))
                    case .symbolicLink:
                        // docker save links identical layers to one another (relative to the link's directory).
                        let base = (entry.normalizedPath as NSString).deletingLastPathComponent
                        let target = ((base as NSString).appendingPathComponent(entry.linkTarget) as NSString).standardizingPath
                        links.append((entry.normalizedPath, TarEntry.normalize(target)))
                    default:
                        break
                    }
                }
            }
        }
        try reader.finish()
        for link in links { if let target = members[link.target] { members[link.name] = target } }
    }

    func contains(_ name: String) -> Bool { members[name] != nil }
    func range(_ name: String) throws -> FileRange? { members[name] }
}
