import Foundation
import Logging
import StrataClient
import StrataCore
import StrataTestKit
import Testing

@testable import StrataImages

/// A fresh temporary directory for a test, removed afterwards.
func withTemporaryDirectory<Result>(_ body: (String) async throws -> Result) async throws -> Result {
    let directory = NSTemporaryDirectory() + "strata-images-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

/// A cluster of a name node and three data nodes, and an opened image store over it with no
/// grace period for garbage collection.
func withImageStore<Result>(
    configure: (inout ImageStore.Options) -> Void = { _ in }, _ body: (LocalCluster, ImageStore) async throws -> Result
) async throws -> Result {
    try await LocalCluster.withTemporary(prefix: "strata-images-") { cluster in
        try await using(cluster.client()) { client in
            let store = makeStore(client, configure: configure)
            try await store.open()
            let result = try await body(cluster, store)
            try await store.close()
            return result
        }
    }
}

func makeStore(_ client: DFSClient, configure: (inout ImageStore.Options) -> Void = { _ in }) -> ImageStore {
    var options = ImageStore.Options()
    options.garbageGraceSeconds = 0
    configure(&options)
    var logger = Logger(label: "strata.images.test")
    logger.logLevel = .warning
    return ImageStore(client: client, options: options, logger: logger)
}

/// The digests of the blobs in the store's blob directory.
func storedBlobs(_ client: DFSClient) async throws -> Set<Digest> {
    Set(try await client.list("/system/images/blobs/sha256").compactMap { Digest("sha256:" + ($0.path as NSString).lastPathComponent) })
}

/// Expects `body` to throw `ImageStoreError` with `code`.
func expectStoreError(
    _ code: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("\(what): succeeded, expected \(code)", sourceLocation: sourceLocation)
    } catch let error as ImageStoreError {
        #expect(error.code == code, "\(what): \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(what): failed with \(error), expected \(code)", sourceLocation: sourceLocation)
    }
}

/// Runs a program and fails the test if it does not exit 0; returns its standard output.
@discardableResult
func run(_ program: String, _ arguments: [String]) throws -> String {
    let result = try TestExecutables.run(program, arguments)
    guard result.status == 0 else {
        throw ImageSourceError("\(program) \(arguments.joined(separator: " ")) exited \(result.status): \(result.error)")
    }
    return result.output
}
