import ArgumentParser
import Foundation
import Logging
import StrataClient
import StrataImages

/// `strata image`: container images in the DFS's image store (`/system/images`).
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Container images in the cluster's file system: push, pull, list, inspect, remove.",
        discussion: """
            Images live in the DFS under /system/images: blobs stored once by their sha256 digest, and an \
            index of repositories and tags. Names are REPO:TAG (REPO alone means REPO:latest), or REPO@sha256:... \
            where a digest will do. The commands reach the name node like `strata dfs` does.
            """,
        subcommands: [
            ImagePushCommand.self, ImagePullCommand.self, ImageListCommand.self, ImageInspectCommand.self, ImageRemoveCommand.self,
            ImageGarbageCollectCommand.self,
        ]
    )
}

extension ClusterOptions {
    /// Runs `body` with the image store opened (taking its index over) and closes it afterwards.
    func withImageStore<Result>(
        configure: (inout ImageStore.Options) -> Void = { _ in }, _ body: (ImageStore) async throws -> Result
    ) async throws -> Result {
        try await withClient { client in
            var options = ImageStore.Options()
            configure(&options)
            var logger = Logger(label: "strata.images")
            logger.logLevel = .warning
            let store = ImageStore(client: client, options: options, logger: logger)
            try await store.open()
            let result = try await body(store)
            try await store.close()
            return result
        }
    }
}

/// Runs an image command's body, printing its errors as `strata image CMD: reason` (exit 1).
func runImageCommand(_ command: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch let error as ImageStoreError {
        printError("strata image \(command): \(error.message) (\(error.code))")
        throw ExitCode(1)
    } catch let error as ImageSourceError {
        printError("strata image \(command): \(error.message)")
        throw ExitCode(1)
    } catch {
        printError("strata image \(command): " + ShellError("", error, path: "/system/images").message.dropFirst(2))
        throw ExitCode(1)
    }
}

/// Parses REPO:TAG (or REPO@DIGEST) for `validate()`, as a usage error.
func parseImageReference(_ text: String, tagRequired: Bool = false) throws -> ImageReference {
    do {
        let reference = try ImageReference(parsing: text)
        if tagRequired && reference.tag == nil { throw ValidationError("'\(text)': give a tag (REPO:TAG), not a digest") }
        return reference
    } catch let error as ImageStoreError {
        throw ValidationError("'\(text)': \(error.message)")
    }
}

struct ImagePushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push", abstract: "Push an image from an OCI layout directory, an oci-archive or a docker-archive.",
        discussion: """
            SOURCE is what `skopeo copy ... oci:DIR`, `skopeo copy ... oci-archive:FILE`, `podman save` or \
            `docker save` write (a tar, not compressed). Blobs already in the store are not sent again. Prints \
            the manifest's digest.
            """)

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "An OCI image layout directory, an oci-archive or a docker-archive.")
    var source: String

    @Option(help: "The name to push as, REPO:TAG.")
    var name: String

    @Option(help: "Which image of a source holding several (its ref name in a layout, REPO:TAG in a docker-archive).")
    var ref: String?

    func validate() throws {
        _ = try parseImageReference(name, tagRequired: true)
    }

    func run() async throws {
        let target = try parseImageReference(name, tagRequired: true)
        let tag = target.tag!
        try await runImageCommand("push") {
            let image = try ImageSource.open(source, reference: ref, preferring: tag)
            let total = image.blobs.values.map(\.length).reduce(0, +)
            let bar = ProgressBar(label: "push \(target)", total: total)
            let report = try await cluster.withImageStore { store in
                try await store.push(image, repository: target.repository, tag: tag) { _, size in bar.advance(Int(size)) }
            }
            bar.finish()
            if cluster.json {
                print(try JSONOutput.encode(report))
                return
            }
            printError(
                "\(target): \(report.storedBlobs.count) blobs stored (\(humanSize(report.storedBytes))), "
                    + "\(report.existingBlobs.count) already in the store; \(report.mediaType)")
            print(report.digest)
        }
    }
}

struct ImagePullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull", abstract: "Write an image as an OCI image layout directory (every blob verified).",
        discussion: """
            DIR may hold a layout already: the image is added to it, named by its tag. A Docker schema 2 \
            manifest is written as the OCI manifest it converts to (its config and layers as they are).
            """)

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "The image, REPO:TAG or REPO@DIGEST.")
    var image: String

    @Argument(help: "The layout directory to write (created if needed).")
    var directory: String

    func validate() throws {
        _ = try parseImageReference(image)
    }

    func run() async throws {
        let reference = try parseImageReference(image)
        try await runImageCommand("pull") {
            let report = try await cluster.withImageStore { store in
                try await store.pull(repository: reference.repository, reference: reference.reference, to: directory)
            }
            if cluster.json {
                print(try JSONOutput.encode(report))
                return
            }
            var summary = "\(reference): \(report.blobs) blobs (\(humanSize(report.bytes))) into \(directory)"
            if let stored = report.storedDigest { summary += "; its Docker manifest \(stored) written as OCI" }
            printError(summary)
            print(report.digest)
        }
    }
}

struct ImageListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List the images: repository, tag, digest, size (the manifest's, config's and layers' bytes).")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "Only these repositories.")
    var repositories: [String] = []

    func run() async throws {
        try await runImageCommand("ls") {
            var images = try await cluster.withImageStore { store in store.listImages() }
            if !repositories.isEmpty { images = images.filter { repositories.contains($0.repository) } }
            if cluster.json {
                print(try JSONOutput.encode(images))
                return
            }
            let rows = [["REPOSITORY", "TAG", "DIGEST", "SIZE"]]
                + images.map { [$0.repository, $0.tag, $0.digest.description, humanSize($0.size)] }
            printColumns(rows)
        }
    }
}

/// Rows in left-aligned columns, two spaces apart.
func printColumns(_ rows: [[String]]) {
    guard let columns = rows.map(\.count).max() else { return }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) } }
    for row in rows {
        let cells = row.enumerated().map { column, cell in
            column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}

struct ImageInspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show an image: its manifest, what its config runs, its layers.")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "The image, REPO:TAG or REPO@DIGEST.")
    var image: String

    func validate() throws {
        _ = try parseImageReference(image)
    }

    /// What `--json` prints.
    struct Inspection: Encodable {
        var repository: String
        var reference: String
        var digest: String
        var mediaType: String
        /// For an index: its manifests' platforms and digests.
        var manifests: [Child]?
        /// The manifest run on linux/amd64 (the image's own, or an index's entry).
        var platformDigest: String?
        var platform: String?
        var config: Config?
        var layers: [Layer]?
        var size: UInt64?

        struct Child: Encodable {
            var digest: String
            var mediaType: String
            var platform: String?
        }

        struct Config: Encodable {
            var digest: String
            var env: [String]?
            var entrypoint: [String]?
            var cmd: [String]?
            var workingDir: String?
            var user: String?
            var exposedPorts: [String]?
        }

        struct Layer: Encodable {
            var digest: String
            var mediaType: String
            var size: UInt64
        }
    }

    func run() async throws {
        let reference = try parseImageReference(image)
        try await runImageCommand("inspect") {
            let inspection = try await cluster.withImageStore { store -> Inspection in
                let stored = try await store.getManifest(repository: reference.repository, reference: reference.reference)
                let manifest = try Manifest(bytes: stored.bytes, declaredMediaType: stored.mediaType)
                var inspection = Inspection(
                    repository: reference.repository, reference: reference.reference.description, digest: stored.digest.description,
                    mediaType: stored.mediaType)
                if let index = manifest.index {
                    inspection.manifests = index.manifests.map { .init(digest: $0.digest.description, mediaType: $0.mediaType, platform: $0.platform?.description) }
                }
                do {
                    let resolved = try await store.resolve(repository: reference.repository, reference: reference.reference)
                    let config = resolved.configuration.config
                    inspection.platformDigest = resolved.digest.description
                    inspection.platform = resolved.configuration.platform.description
                    inspection.config = .init(
                        digest: resolved.manifest.config.digest.description, env: config?.env, entrypoint: config?.entrypoint, cmd: config?.cmd,
                        workingDir: config?.workingDir, user: config?.user, exposedPorts: config?.exposedPorts?.keys.sorted())
                    inspection.layers = resolved.layers.map { .init(digest: $0.digest.description, mediaType: $0.mediaType, size: $0.size) }
                    inspection.size = resolved.manifest.config.size + resolved.layers.map(\.size).reduce(0, +)
                } catch ImageStoreError.manifestUnknown(let message) where manifest.index != nil {
                    // An index without a linux/amd64 image: its entries are all there is to show.
                    printError("strata image inspect: \(message)")
                }
                return inspection
            }
            if cluster.json {
                print(try JSONOutput.encode(inspection))
                return
            }
            print("Name:        \(reference)")
            print("Digest:      \(inspection.digest)")
            print("Media type:  \(inspection.mediaType)")
            for child in inspection.manifests ?? [] {
                print("Manifest:    \(child.digest)  \(child.platform ?? "(no platform)")")
            }
            if let platform = inspection.platform {
                if inspection.manifests != nil { print("Runs:        \(inspection.platformDigest ?? "")") }
                print("Platform:    \(platform)")
            }
            if let config = inspection.config {
                print("Config:      \(config.digest)")
                if let entrypoint = config.entrypoint { print("Entrypoint:  \(Self.words(entrypoint))") }
                if let cmd = config.cmd { print("Cmd:         \(Self.words(cmd))") }
                if let workingDir = config.workingDir, !workingDir.isEmpty { print("WorkingDir:  \(workingDir)") }
                if let user = config.user, !user.isEmpty { print("User:        \(user)") }
                for variable in config.env ?? [] { print("Env:         \(variable)") }
                if let ports = config.exposedPorts, !ports.isEmpty { print("Ports:       \(ports.joined(separator: " "))") }
            }
            if let layers = inspection.layers {
                print("Size:        \(humanSize(inspection.size ?? 0))")
                print("Layers:")
                for layer in layers { print("  \(layer.digest)  \(humanSize(layer.size))  \(layer.mediaType)") }
            }
        }
    }

    /// A command line as JSON shows it, so spaces inside arguments stay visible.
    static func words(_ words: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(words)) ?? Data(), as: UTF8.self)
    }
}

struct ImageRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a tag (and its manifest, if no other tag keeps it), then free the blobs nothing references.",
        discussion: "Blobs another image still references stay, and so do blobs being uploaded.")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "The images, REPO:TAG.")
    var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("name an image to remove, REPO:TAG") }
        for image in images { _ = try parseImageReference(image, tagRequired: true) }
    }

    struct Removal: Encodable {
        var removed: [String]
        var removedManifests: [String]
        var removedBlobs: [String]
        var freedBytes: UInt64
    }

    func run() async throws {
        let references = try images.map { try parseImageReference($0, tagRequired: true) }
        try await runImageCommand("rm") {
            let removal = try await cluster.withImageStore { store -> Removal in
                var removal = Removal(removed: [], removedManifests: [], removedBlobs: [], freedBytes: 0)
                var released = ImageStore.RemovedImage()
                for reference in references {
                    let removed = try await store.removeImage(repository: reference.repository, tag: reference.tag!)
                    removal.removed.append(reference.description)
                    removal.removedManifests += removed.manifests.map(\.description)
                    released = released.merging(removed)
                }
                let report = try await store.collectGarbage(after: released)
                removal.removedBlobs = report.removedBlobs.map(\.digest.description)
                removal.freedBytes = report.freedBytes
                return removal
            }
            if cluster.json {
                print(try JSONOutput.encode(removal))
                return
            }
            for name in removal.removed { print("Untagged: \(name)") }
            for digest in removal.removedManifests { print("Deleted manifest: \(digest)") }
            for digest in removal.removedBlobs { print("Deleted blob: \(digest)") }
            print("Freed \(humanSize(removal.freedBytes)) in \(removal.removedBlobs.count) blobs")
        }
    }
}

struct ImageGarbageCollectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Delete the blobs no image references (and uploads abandoned for a week).",
        discussion: """
            A blob written within the grace period is kept even if no manifest names it yet: a push may be \
            about to name it. Blobs being uploaded are never touched.
            """)

    @OptionGroup var cluster: ClusterOptions

    @Option(name: .customLong("grace"), help: "Seconds a new blob is kept before a manifest must name it.")
    var graceSeconds: Double = 3600

    func validate() throws {
        guard graceSeconds >= 0 else { throw ValidationError("--grace must be 0 or more seconds") }
    }

    func run() async throws {
        try await runImageCommand("gc") {
            let report = try await cluster.withImageStore(configure: { $0.garbageGraceSeconds = graceSeconds }) { store in
                try await store.collectGarbage()
            }
            if cluster.json {
                print(try JSONOutput.encode(report))
                return
            }
            for blob in report.removedBlobs { print("Deleted blob: \(blob.digest)  \(humanSize(blob.size))") }
            for upload in report.removedUploads { print("Deleted abandoned upload: \(upload)") }
            print("Freed \(humanSize(report.freedBytes)) in \(report.removedBlobs.count) blobs; \(report.keptRecent) unreferenced blobs newer than \(Int(graceSeconds)) s kept")
        }
    }
}
