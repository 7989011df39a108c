import StrataApps
import StrataImages

extension Launcher {
    /// Refuses apps whose container names an image the cluster's image store does not have (or
    /// one that cannot run here), with Marathon's 422 body at `/container/docker/image`, before
    /// anything is deployed. The index is read as it is on the DFS, never taken over from the
    /// registry.
    func checkImages(_ apps: [AppDefinition]) async throws {
        let named = apps.compactMap { app -> (PathId, String)? in
            guard let image = app.container?.docker?.image else { return nil }
            return (app.id, image)
        }
        guard !named.isEmpty else { return }
        try await imageStore.refreshIndexReadOnly()
        var details: [ValidationDetail] = []
        for (id, text) in named {
            var problem: String?
            do {
                let reference = try ImageReference(parsing: text)
                _ = try await imageStore.resolve(repository: reference.repository, reference: reference.reference)
            } catch let error as ImageStoreError {
                switch error {
                case .nameUnknown, .manifestUnknown, .blobUnknown:
                    problem = "image '\(text)' is not in the cluster's image store (strata image ls lists them)"
                default:
                    problem = "image '\(text)' cannot run here: \(error.message)"
                }
            }
            if let problem {
                details.append(ValidationDetail(path: "/container/docker/image", errors: [named.count > 1 ? "\(id): \(problem)" : problem]))
            }
        }
        if !details.isEmpty { throw ValidationFailure(kind: .notValid, details: details) }
    }
}

extension AppGroup {
    /// Every app of the group and of its groups, depth first.
    var allApps: [AppDefinition] { apps + groups.flatMap(\.allApps) }
}
