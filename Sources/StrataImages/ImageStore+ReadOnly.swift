import Foundation

extension ImageStore {
    /// Reads the index as it is on the DFS without taking over its log: for processes that only
    /// look images up (the master resolving a job's image to its digest and layers). Under the
    /// gate, so a change this store is making is never lost from memory.
    /// Blobs need no index: they are read by digest.
    public func refreshIndexReadOnly() async throws {
        try await gate.withLock {
            let (snapshot, records) = try await log.readCurrent()
            var replayed = ImageStoreState()
            if let snapshot { replayed = try ImageStoreCoding.decodeSnapshot(snapshot) }
            for bytes in records { replayed.apply(try ImageStoreCoding.decode(bytes)) }
            state.withLock { $0 = replayed }
        }
    }
}
