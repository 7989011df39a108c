/// A container image a job's tasks run from, as the master resolved it at submission: the
/// manifest's digest (a tag that moves later does not change a running job) and what an agent
/// needs to unpack and run it without reading the image index.
public struct TaskImage: Sendable, Hashable, Codable {
    /// The image as the submitter named it (`tools/busybox:1`).
    public var reference: String
    /// `sha256:...` of the linux/amd64 manifest the reference resolved to.
    public var manifestDigest: String
    /// The layers, bottom first: blob digests and media types.
    public var layers: [Layer]
    /// The image config's working directory (empty: `/`).
    public var workingDirectory: String

    public struct Layer: Sendable, Hashable, Codable {
        public var digest: String
        public var mediaType: String
        public init(digest: String, mediaType: String) {
            self.digest = digest
            self.mediaType = mediaType
        }
    }

    public init(reference: String, manifestDigest: String, layers: [Layer], workingDirectory: String) {
        self.reference = reference
        self.manifestDigest = manifestDigest
        self.layers = layers
        self.workingDirectory = workingDirectory
    }

    /// The command a task runs, as `docker run IMAGE ARGS...` has it: the image's entrypoint
    /// followed by the given arguments, or by the image's cmd when none are given.
    public static func command(entrypoint: [String], cmd: [String], arguments: [String]) -> [String] {
        entrypoint + (arguments.isEmpty ? cmd : arguments)
    }

    /// The environment a task gets: the image's `KEY=VALUE` entries, then the job's on top.
    public static func environment(image: [String], job: [String: String]) -> [String: String] {
        var merged: [String: String] = [:]
        for entry in image {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            merged[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        return merged.merging(job) { $1 }
    }
}
