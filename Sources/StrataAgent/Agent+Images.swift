import Foundation
import StrataClient
import StrataCompute
import StrataImages

extension Agent {
    /// A lease on the root filesystem of a task's image: from the agent's cache, or unpacked
    /// there from the image's layers read out of the DFS (short-circuit when this node holds
    /// a replica) as the task's user, each layer's digest checked as it is unpacked. Released
    /// when the task has ended.
    func imageRootFilesystem(_ image: TaskImage, client: DFSClient) async throws -> RootfsLease {
        var options = ImageStore.Options()
        options.root = configuration.imageStoreRoot
        let store = ImageStore(client: client, options: options, logger: logger)
        let layers = image.layers.map { ImageLayer(digest: $0.digest, mediaType: $0.mediaType) }
        do {
            return try await imageCache.acquire(layers) { layer in
                guard let digest = Digest(layer.digest) else {
                    throw LaunchError(message: "layer digest \(layer.digest) is not sha256", reason: "REASON_CONTAINER_LAUNCH_FAILED")
                }
                return store.blobChunks(digest)
            }
        } catch {
            throw LaunchError(
                message: "cannot prepare image \(image.reference) (\(image.manifestDigest)): \(error.message)",
                reason: "REASON_CONTAINER_LAUNCH_FAILED")
        }
    }
}
