import Foundation
import StrataCompute
import StrataHTTP
import StrataImages

extension Master {
    /// Resolves a job's image at submission, from the image index as it is on the DFS (read,
    /// never taken over from the registry): to the linux/amd64 manifest's digest, its layers, and
    /// the command and environment its config gives the tasks. An image that is not there, or
    /// that names nothing to run, is refused before anything starts.
    func resolveImage(_ text: String, arguments: [String], environment: [String: String]) async throws
        -> (image: TaskImage, arguments: [String], environment: [String: String])
    {
        let reference: ImageReference
        do {
            reference = try ImageReference(parsing: text)
        } catch {
            throw APIError.badRequest("the image '\(text)' is not a valid REPO:TAG or REPO@DIGEST: \(error.message)")
        }
        let store = imageStore
        let resolved: ImageStore.ResolvedImage
        do {
            try await dfs { try await store.refreshIndexReadOnly() }
            resolved = try await dfs { try await store.resolve(repository: reference.repository, reference: reference.reference) }
        } catch let error as ImageStoreError {
            switch error {
            case .nameUnknown, .manifestUnknown, .blobUnknown:
                throw APIError.notFound("no image \(text) in the image store (strata image ls lists them)")
            default:
                throw APIError.unprocessable("the image \(text) cannot run here: \(error.message)")
            }
        }
        let config = resolved.configuration.config
        let command = TaskImage.command(entrypoint: config?.entrypoint ?? [], cmd: config?.cmd ?? [], arguments: arguments)
        guard let first = command.first, !first.isEmpty else {
            throw APIError.badRequest("the image \(text) names no command (no Entrypoint or Cmd): give one after --")
        }
        let image = TaskImage(
            reference: text, manifestDigest: resolved.digest.description,
            layers: resolved.layers.map { TaskImage.Layer(digest: $0.digest.description, mediaType: $0.mediaType) },
            workingDirectory: config?.workingDir ?? "")
        return (image, command, TaskImage.environment(image: config?.env ?? [], job: environment))
    }
}
