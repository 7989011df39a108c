import Testing

@testable import StrataImages

/// The index's decisions and garbage collection's plan, without a cluster.
struct ImageStoreStateTests {
    static func digest(_ character: Character) -> Digest { Digest("sha256:" + String(repeating: character, count: 64))! }

    static func imageManifest(config: Character, layers: [Character]) throws -> Manifest {
        let descriptors = layers.map { #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(digest($0))","size":1}"# }
        let text = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(digest(config))","size":1},"layers":[\#(descriptors.joined(separator: ","))]}"#
        return try Manifest(bytes: Array(text.utf8))
    }

    static func index(_ children: [Manifest]) throws -> Manifest {
        let descriptors = children.map {
            #"{"mediaType":"\#($0.mediaType)","digest":"\#($0.digest)","size":\#($0.bytes.count),"platform":{"architecture":"amd64","os":"linux"}}"#
        }
        return try Manifest(bytes: Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(descriptors.joined(separator: ","))]}"#.utf8))
    }

    static func applying(_ state: inout ImageStoreState, _ records: [ImageStoreState.Record]) {
        for record in records { state.apply(record) }
    }

    @Test func removingATagRemovesTheManifestOnlyWhenNothingElseKeepsIt() throws {
        var state = ImageStoreState()
        let one = try Self.imageManifest(config: "1", layers: ["a", "b"])
        let two = try Self.imageManifest(config: "2", layers: ["a", "c"])
        Self.applying(&state, try state.putManifest(repository: "r", reference: .tag("one"), manifest: one, pushedMs: 0))
        Self.applying(&state, try state.putManifest(repository: "r", reference: .tag("also-one"), manifest: one, pushedMs: 0))
        Self.applying(&state, try state.putManifest(repository: "r", reference: .tag("two"), manifest: two, pushedMs: 0))
        #expect(state.referencedBlobs == Set([one.digest, two.digest] + "12abc".map(Self.digest)))

        // Another tag keeps the manifest.
        let first = try state.removeImage(repository: "r", tag: "one")
        #expect(first == [.tagDeleted(repository: "r", tag: "one")])
        Self.applying(&state, first)
        Self.applying(&state, try state.removeImage(repository: "r", tag: "also-one"))
        #expect(state.repositories["r"]?.manifests[one.digest] == nil)
        #expect(state.referencedBlobs == Set([two.digest] + "2ac".map(Self.digest)))

        Self.applying(&state, try state.removeImage(repository: "r", tag: "two"))
        #expect(state.repositories.isEmpty)
        #expect(throws: ImageStoreError.nameUnknown("no repository r")) { try state.removeImage(repository: "r", tag: "two") }
    }

    @Test func anIndexNeedsItsChildrenInTheRepositoryAndKeepsThem() throws {
        var state = ImageStoreState()
        let child = try Self.imageManifest(config: "1", layers: ["a"])
        let index = try Self.index([child])
        #expect(throws: ImageStoreError.manifestBlobUnknown(child.digest)) {
            try state.putManifest(repository: "r", reference: .tag("multi"), manifest: index, pushedMs: 0)
        }
        Self.applying(&state, try state.putManifest(repository: "r", reference: .digest(child.digest), manifest: child, pushedMs: 0))
        #expect(state.repositories["r"]?.tags.isEmpty == true)
        Self.applying(&state, try state.putManifest(repository: "r", reference: .tag("multi"), manifest: index, pushedMs: 0))
        #expect(throws: ImageStoreError.self) { try state.deleteManifest(repository: "r", digest: child.digest) }
        #expect(state.referencedBlobs.contains(Self.digest("a")))
        // Removing the index's tag takes the index and then its untagged child.
        let records = try state.removeImage(repository: "r", tag: "multi")
        #expect(records == [
            .tagDeleted(repository: "r", tag: "multi"), .manifestDeleted(repository: "r", digest: index.digest),
            .manifestDeleted(repository: "r", digest: child.digest),
        ])
        // A digest reference must be the manifest's own.
        #expect(throws: ImageStoreError.self) {
            try state.putManifest(repository: "r", reference: .digest(Self.digest("f")), manifest: child, pushedMs: 0)
        }
    }

    @Test func pagesOfNamesAreSortedAndContinueAfterTheLast() {
        let names = ["c", "a", "e", "b", "d"]
        #expect(ImageStoreState.page(names, limit: nil, after: nil) == (["a", "b", "c", "d", "e"], false))
        #expect(ImageStoreState.page(names, limit: 2, after: nil) == (["a", "b"], true))
        #expect(ImageStoreState.page(names, limit: 2, after: "b") == (["c", "d"], true))
        #expect(ImageStoreState.page(names, limit: 2, after: "d") == (["e"], false))
        #expect(ImageStoreState.page(names, limit: 0, after: nil) == ([], true))
    }

    @Test func garbageCollectionDeletesOnlyUnreferencedBlobsOlderThanTheGracePeriod() {
        let blobs = [
            GarbageCollectionPlan.Blob(digest: Self.digest("a"), size: 1, modifiedMs: 0),  // referenced, old
            GarbageCollectionPlan.Blob(digest: Self.digest("b"), size: 2, modifiedMs: 0),  // unreferenced, old
            GarbageCollectionPlan.Blob(digest: Self.digest("c"), size: 3, modifiedMs: 9_500),  // unreferenced, recent
            GarbageCollectionPlan.Blob(digest: Self.digest("d"), size: 4, modifiedMs: 9_999),  // referenced, recent
        ]
        let plan = GarbageCollectionPlan.unreferenced(
            blobs, referenced: [Self.digest("a"), Self.digest("d")], nowMs: 10_000, graceMs: 1_000)
        #expect(plan.delete.map(\.digest) == [Self.digest("b")])
        #expect(plan.keptRecent == 1)
        let noGrace = GarbageCollectionPlan.unreferenced(blobs, referenced: [Self.digest("a")], nowMs: 10_000, graceMs: 0)
        #expect(noGrace.delete.map(\.digest) == [Self.digest("b"), Self.digest("c"), Self.digest("d")])
        // Blobs an image removal released go at once, unless written again after it.
        let released = GarbageCollectionPlan.unreferenced(
            blobs, referenced: [Self.digest("a")], nowMs: 10_000, graceMs: 1_000,
            released: [Self.digest("a"), Self.digest("c"), Self.digest("d")], releasedMs: 9_600)
        #expect(released.delete.map(\.digest) == [Self.digest("b"), Self.digest("c")])
        #expect(released.keptRecent == 1)
    }

    @Test func recordsAndSnapshotsRoundTripThroughTheirEncoding() throws {
        var state = ImageStoreState()
        let manifest = try Self.imageManifest(config: "1", layers: ["a"])
        let records = try state.putManifest(repository: "a/b", reference: .tag("v1"), manifest: manifest, pushedMs: 42)
        Self.applying(&state, records)
        #expect(try records.map { try ImageStoreCoding.decode(try ImageStoreCoding.encode($0)) } == records)
        #expect(try ImageStoreCoding.decodeSnapshot(try ImageStoreCoding.encodeSnapshot(state)) == state)
    }
}
