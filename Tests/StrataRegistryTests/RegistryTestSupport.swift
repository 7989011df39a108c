import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StrataImages
import StrataTestKit

/// A local cluster (name node, three data nodes) with the image registry on loopback.
func withRegistry<Result>(_ body: (LocalCluster, RegistryClient) async throws -> Result) async throws -> Result {
    try await LocalCluster.withTemporary(prefix: "strata-registry-", { options in
        options.registry = true
    }) { cluster in
        try await body(cluster, RegistryClient(port: cluster.registryPort!))
    }
}

/// Raw HTTP calls to the registry: status, headers and body as they came.
struct RegistryClient {
    var port: Int

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first(name: name) }
        /// The first error code of a spec error body.
        var errorCode: String? {
            struct Body: Decodable { struct Entry: Decodable { var code: String }; var errors: [Entry] }
            return (try? JSONDecoder().decode(Body.self, from: Data(body)))?.errors.first?.code
        }
    }

    func call(_ method: HTTPMethod, _ path: String, headers: [String: String] = [:], body: [UInt8]? = nil) async throws -> Reply {
        let url = path.hasPrefix("http") ? path : "http://127.0.0.1:\(port)\(path)"
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            if headers["Content-Type"] == nil { request.headers.add(name: "Content-Type", value: "application/octet-stream") }
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 256 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
    }

    /// Pushes a blob in one POST; returns its digest.
    @discardableResult
    func pushBlob(_ name: String, _ bytes: [UInt8]) async throws -> Digest {
        let digest = Digest.of(bytes)
        let reply = try await call(.POST, "/v2/\(name)/blobs/uploads/?digest=\(digest)", body: bytes)
        guard reply.status == 201 else { throw RegistryTestFailure(message: "blob push answered \(reply.status): \(reply.text)") }
        return digest
    }

    /// Pushes an image manifest naming `config` and `layers` under `reference`; returns its bytes.
    func pushManifest(_ name: String, _ reference: String, config: [UInt8], layers: [[UInt8]]) async throws -> (bytes: [UInt8], reply: Reply) {
        let configDigest = try await pushBlob(name, config)
        var layerEntries: [String] = []
        for layer in layers {
            let digest = try await pushBlob(name, layer)
            layerEntries.append(#"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(digest)","size":\#(layer.count)}"#)
        }
        let manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":[\#(layerEntries.joined(separator: ","))]}"#
        let bytes = Array(manifest.utf8)
        let reply = try await call(.PUT, "/v2/\(name)/manifests/\(reference)", headers: ["Content-Type": "application/vnd.oci.image.manifest.v1+json"], body: bytes)
        return (bytes, reply)
    }
}

struct RegistryTestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Bytes that differ with the seed.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// An image config as JSON bytes.
func imageConfig(_ command: String) -> [UInt8] {
    Array(#"{"architecture":"amd64","os":"linux","config":{"Cmd":["\#(command)"]},"rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
}

/// Writes an OCI image layout at `directory` holding one image tagged `tag`: a gzip'd layer with
/// the static busybox of Debian's `busybox-static` as `bin/busybox` and `bin/sh` linked to it.
/// Returns the layout's blobs by digest.
@discardableResult
func makeBusyboxLayout(at directory: String, tag: String) throws -> [String: [UInt8]] {
    let fileManager = FileManager.default
    let root = directory + ".rootfs"
    try fileManager.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
    try fileManager.copyItem(atPath: "/bin/busybox", toPath: root + "/bin/busybox")
    try fileManager.createSymbolicLink(atPath: root + "/bin/sh", withDestinationPath: "busybox")
    let tarPath = directory + ".layer.tar"
    let tar = try TestExecutables.run("/bin/sh", ["-c", "tar --sort=name --owner=0 --group=0 --mtime=@0 -C '\(root)' -cf '\(tarPath)' . && gzip -n -k '\(tarPath)'"])
    guard tar.status == 0 else { throw RegistryTestFailure(message: "tar: \(tar.error)") }
    let diffId = Digest.of(Array(try Data(contentsOf: URL(fileURLWithPath: tarPath))))
    let layer = Array(try Data(contentsOf: URL(fileURLWithPath: tarPath + ".gz")))
    for path in [root, tarPath, tarPath + ".gz"] { try fileManager.removeItem(atPath: path) }
    let config = Array(#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["\#(diffId)"]}}"#.utf8)
    let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(Digest.of(config))","size":\#(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(Digest.of(layer))","size":\#(layer.count)}]}"#.utf8)
    let index = #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(Digest.of(manifest))","size":\#(manifest.count),"annotations":{"org.opencontainers.image.ref.name":"\#(tag)"}}]}"#
    try fileManager.createDirectory(atPath: directory + "/blobs/sha256", withIntermediateDirectories: true)
    var blobs: [String: [UInt8]] = [:]
    for blob in [config, layer, manifest] {
        let digest = Digest.of(blob)
        blobs[digest.description] = blob
        try Data(blob).write(to: URL(fileURLWithPath: directory + "/blobs/sha256/" + digest.hex))
    }
    try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: directory + "/oci-layout"))
    try Data(index.utf8).write(to: URL(fileURLWithPath: directory + "/index.json"))
    return blobs
}

/// Sends a request that declares `declared` body bytes, sends only `body`, and closes the
/// connection: a client that died mid-upload.
func sendTruncated(port: Int, method: String, path: String, declared: Int, body: [UInt8]) throws {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw RegistryTestFailure(message: "socket: \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw RegistryTestFailure(message: "connect: \(errno)") }
    let head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/octet-stream\r\nContent-Length: \(declared)\r\n\r\n"
    let request = Array(head.utf8) + body
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard count > 0 else { throw RegistryTestFailure(message: "send: \(errno)") }
        sent += count
    }
}

