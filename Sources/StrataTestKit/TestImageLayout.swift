import Foundation
import Logging
import StrataClient
import StrataImages

/// A test image could not be written.
public struct TestLayoutError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Writes tar archives for tests: ustar headers, regular files, directories and symbolic links,
/// with fixed times and owners so the same entries give the same bytes (and digest).
public struct TestTarWriter {
    public init() {}

    public private(set) var bytes: [UInt8] = []

    public mutating func directory(_ name: String, mode: UInt32 = 0o755) {
        header(name: name.hasSuffix("/") ? name : name + "/", mode: mode, size: 0, type: UInt8(ascii: "5"), link: "")
    }

    public mutating func file(_ name: String, _ contents: [UInt8], mode: UInt32 = 0o644) {
        header(name: name, mode: mode, size: contents.count, type: UInt8(ascii: "0"), link: "")
        bytes += contents
        bytes += [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
    }

    public mutating func symlink(_ name: String, to target: String) {
        header(name: name, mode: 0o777, size: 0, type: UInt8(ascii: "2"), link: target)
    }

    /// An entry of any type flag, with contents (pax headers, GNU long names, unknown types).
    public mutating func entry(_ name: String, type: Character, _ contents: [UInt8] = [], link: String = "") {
        header(name: name, mode: 0o644, size: contents.count, type: type.asciiValue!, link: link)
        bytes += contents
        bytes += [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
    }

    /// Pax records for the next entry (`x`) or all that follow (`g`).
    public mutating func pax(_ records: [(String, String)], global: Bool = false) {
        var data: [UInt8] = []
        for (key, value) in records {
            let body = " \(key)=\(value)\n"
            var length = body.utf8.count + 1
            while String(length).utf8.count + body.utf8.count != length { length += 1 }
            data += Array("\(length)\(body)".utf8)
        }
        entry("PaxHeaders/x", type: global ? "g" : "x", data)
    }

    /// Two zero blocks end the archive.
    public mutating func finish() -> [UInt8] {
        bytes += [UInt8](repeating: 0, count: 1024)
        return bytes
    }

    private mutating func header(name: String, mode: UInt32, size: Int, type: UInt8, link: String) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, length: Int) {
            let utf8 = Array(text.utf8)
            precondition(utf8.count <= length, "\(text) does not fit a ustar field of \(length)")
            header.replaceSubrange(offset..<(offset + utf8.count), with: utf8)
        }
        func octal(_ value: Int, at offset: Int, length: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: length - 1 - digits.count) + digits, at: offset, length: length - 1)
        }
        put(name, at: 0, length: 100)
        octal(Int(mode), at: 100, length: 8)
        octal(0, at: 108, length: 8)
        octal(0, at: 116, length: 8)
        octal(size, at: 124, length: 12)
        octal(0, at: 136, length: 12)
        header[156] = type
        put(link, at: 157, length: 100)
        put("ustar\u{0}00", at: 257, length: 8)
        put("root", at: 265, length: 32)
        put("root", at: 297, length: 32)
        header.replaceSubrange(148..<156, with: Array("        ".utf8))
        let sum = header.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        put(String(repeating: "0", count: 6 - digits.count) + digits, at: 148, length: 6)
        header[154] = 0
        header[155] = UInt8(ascii: " ")
        bytes += header
    }
}

/// An OCI image layout written by a test.
public struct TestLayout {
    /// Sorted keys, as the store writes JSON.
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public var directory: String
    public var manifest: Digest
    public var config: Digest
    public var layers: [Digest]

    /// Every blob of the image, the manifest's included.
    public var blobs: Set<Digest> { Set([manifest, config] + layers) }

    /// The base layer every busybox test image shares: /bin/busybox (Debian's busybox-static)
    /// and a few links to it.
    public static func busyboxLayer() throws -> [UInt8] {
        guard let busybox = FileManager.default.contents(atPath: "/bin/busybox") else {
            throw TestLayoutError(message: "/bin/busybox (Debian's busybox-static) is needed")
        }
        var tar = TestTarWriter()
        tar.directory("bin")
        tar.file("bin/busybox", Array(busybox), mode: 0o755)
        for tool in ["sh", "ls", "echo", "cat"] { tar.symlink("bin/" + tool, to: "busybox") }
        tar.directory("tmp", mode: 0o1777)
        return tar.finish()
    }

    /// A layer with one file.
    public static func fileLayer(_ name: String, _ text: String) -> [UInt8] {
        var tar = TestTarWriter()
        tar.directory((name as NSString).deletingLastPathComponent)
        tar.file(name, Array(text.utf8))
        return tar.finish()
    }

    /// Writes an OCI layout with one image of `layers` (plain tars) named `tag`.
    public static func write(
        at directory: String, tag: String, layers: [[UInt8]], cmd: [String] = ["sh"], architecture: String = "amd64"
    ) throws -> TestLayout {
        let blobs = directory + "/blobs/sha256"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        func store(_ bytes: [UInt8]) throws -> Digest {
            let digest = Digest.of(bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: blobs + "/" + digest.hex))
            return digest
        }
        var layerDescriptors: [Descriptor] = []
        for layer in layers {
            layerDescriptors.append(Descriptor(mediaType: OCIMediaType.layerTar, digest: try store(layer), size: UInt64(layer.count)))
        }
        let configuration = OCIImageConfiguration(
            architecture: architecture, os: "linux",
            config: .init(env: ["PATH=/bin"], entrypoint: nil, cmd: cmd, workingDir: "/", user: nil),
            rootfs: .init(diffIDs: layerDescriptors.map(\.digest)))
        let configBytes = Array(try TestLayout.encoder.encode(configuration))
        let config = Descriptor(mediaType: OCIMediaType.imageConfig, digest: try store(configBytes), size: UInt64(configBytes.count))
        let manifest = OCIImageManifest(mediaType: OCIMediaType.imageManifest, config: config, layers: layerDescriptors)
        let manifestBytes = Array(try TestLayout.encoder.encode(manifest))
        let manifestDigest = try store(manifestBytes)
        let index = OCIImageIndex(mediaType: OCIMediaType.imageIndex, manifests: [
            Descriptor(
                mediaType: OCIMediaType.imageManifest, digest: manifestDigest, size: UInt64(manifestBytes.count),
                annotations: [Descriptor.refNameAnnotation: tag])
        ])
        try Data(try TestLayout.encoder.encode(index)).write(to: URL(fileURLWithPath: directory + "/index.json"))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: directory + "/oci-layout"))
        return TestLayout(directory: directory, manifest: manifestDigest, config: config.digest, layers: layerDescriptors.map(\.digest))
    }
}

extension TestLayout {
    /// Writes a layout whose one entry, named `tag`, is an OCI index of an amd64 and an arm64
    /// image sharing `layers`; returns the index's digest and the two images.
    public static func writeMultiPlatform(at directory: String, tag: String, layers: [[UInt8]]) throws -> (index: Digest, amd64: TestLayout, arm64: TestLayout) {
        let amd64 = try write(at: directory, tag: tag, layers: layers, cmd: ["amd64"])
        let arm64 = try write(at: directory, tag: tag, layers: layers, cmd: ["arm64"], architecture: "arm64")
        func descriptor(_ image: TestLayout, _ architecture: String) throws -> Descriptor {
            let size = try FileManager.default.attributesOfItem(atPath: directory + "/blobs/sha256/" + image.manifest.hex)[.size] as! NSNumber
            return Descriptor(
                mediaType: OCIMediaType.imageManifest, digest: image.manifest, size: size.uint64Value,
                platform: Platform(architecture: architecture, os: "linux"))
        }
        let index = OCIImageIndex(mediaType: OCIMediaType.imageIndex, manifests: [try descriptor(arm64, "arm64"), try descriptor(amd64, "amd64")])
        let bytes = Array(try TestLayout.encoder.encode(index))
        let digest = Digest.of(bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/blobs/sha256/" + digest.hex))
        let top = OCIImageIndex(mediaType: OCIMediaType.imageIndex, manifests: [
            Descriptor(mediaType: OCIMediaType.imageIndex, digest: digest, size: UInt64(bytes.count), annotations: [Descriptor.refNameAnnotation: tag])
        ])
        try Data(try TestLayout.encoder.encode(top)).write(to: URL(fileURLWithPath: directory + "/index.json"))
        return (digest, amd64, arm64)
    }
}


extension LocalCluster {
    /// Pushes the image tagged in the OCI layout at `directory` into the cluster's image store
    /// as `repository:tag`, as `strata image push` does (opening the store itself).
    public func pushImage(from directory: String, repository: String, tag: String) async throws {
        try await using(client()) { client in
            var logger = Logger(label: "strata-test")
            logger.logLevel = .warning
            let store = ImageStore(client: client, logger: logger)
            try await store.open()
            _ = try await store.push(try ImageSource.open(directory), repository: repository, tag: tag)
            try await store.close()
        }
    }
}
