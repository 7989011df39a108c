import Foundation

extension ImageStore {
    /// Deletes a blob that no manifest names (the registry's blob DELETE). A blob a manifest of
    /// any repository still names is refused with `unsupported` (it would break that image;
    /// delete the manifest, and garbage collection frees the blob); one not in the store is
    /// `blobUnknown`.
    public func deleteBlob(_ digest: Digest) async throws {
        try await gate.withLock { () async throws in
            if let user = index.repositories.first(where: { $0.value.manifests.values.contains { $0.blobs.contains(digest) } }) {
                throw ImageStoreError.unsupported("blob \(digest) is named by a manifest of \(user.key): delete the manifest instead")
            }
            guard try await client.delete(blobPath(digest), recursive: false) else { throw ImageStoreError.blobUnknown(digest) }
        }
    }
}
