import StrataWire
import Testing

@testable import StrataNameNode

/// The walk fsck and the content summary make of a subtree, a chunk of inodes at a time: the
/// chunk size changes nothing on a namespace that does not change, and changes between chunks
/// are survived.
@Suite struct SubtreeWalkTests {
    let helpers = NamespaceTests()
    var superuser: Caller { helpers.superuser }

    /// Directories /a, /a/b, /a/b/c, /a/d, /e, /e/f, /e/f/g; closed files with one or two blocks,
    /// empty files and one file open for writing.
    func makeNamespace() throws -> Namespace {
        var namespace = helpers.makeNamespace()
        for directory in ["/a/b/c", "/a/d", "/e/f/g"] {
            helpers.run(&namespace, try namespace.prepareMkdirs(directory, permission: 0o755, createParent: true, caller: superuser, now: 2))
        }
        let files: [(path: String, blocks: [UInt64], close: Bool)] = [
            ("/a/one", [1_000], true), ("/a/b/two", [4_096, 10], true), ("/a/b/c/three", [7], true),
            ("/a/b/c/empty", [], true), ("/e/f/g/open", [4_096, 300], false), ("/top", [5], true), ("/e/empty", [], true),
        ]
        for file in files {
            helpers.run(&namespace, try namespace.prepareCreate(
                file.path, permission: 0o644, overwrite: false, createParent: false, replication: 2, blockSize: 4096,
                clientName: "c", caller: superuser, now: 3))
            var previous: Strata_Wire_ExtendedBlock?
            for length in file.blocks {
                let add = try namespace.prepareAddBlock(file.path, clientName: "c", previous: previous)
                helpers.run(&namespace, [add])
                var block = Strata_Wire_ExtendedBlock()
                block.blockID = add.addBlock.block.blockID
                block.generationStamp = add.addBlock.block.generationStamp
                block.numBytes = length
                previous = block
            }
            if file.close {
                helpers.run(&namespace, [try #require(try namespace.prepareComplete(file.path, clientName: "c", last: previous, now: 4))])
            }
        }
        return namespace
    }

    /// The paths a walk visits, `limit` inodes per chunk, with `between` run between chunks.
    func walk(
        _ namespace: inout Namespace, _ path: String, limit: Int, between: (inout Namespace, Int) throws -> Void = { _, _ in }
    ) throws -> [String] {
        var walk = try namespace.beginWalk(path, caller: superuser)
        var visited: [String] = []
        var chunks = 0
        while try namespace.continueWalk(&walk, limit: limit, visit: { visited.append($0.path) }) {
            chunks += 1
            try between(&namespace, chunks)
        }
        #expect(walk.isFinished)
        return visited
    }

    @Test func everyInodeIsVisitedOnceWhateverTheChunkSize() throws {
        var namespace = try makeNamespace()
        let whole = try walk(&namespace, "/", limit: .max)
        #expect(whole.count == 8 + 7)
        #expect(Set(whole).count == whole.count)
        for limit in [1, 2, 5] {
            let chunked = try walk(&namespace, "/", limit: limit)
            #expect(chunked.count == whole.count)
            #expect(Set(chunked) == Set(whole))
        }
        #expect(try walk(&namespace, "/a/b/two", limit: 1) == ["/a/b/two"])
        #expect(try Set(walk(&namespace, "/a/b", limit: 1)) == ["/a/b", "/a/b/two", "/a/b/c", "/a/b/c/three", "/a/b/c/empty"])
        #expect(throws: RemoteException.self) { try namespace.beginWalk("/nothing", caller: superuser) }
    }

    @Test func aContentSummaryInChunksOfOneIsTheSame() throws {
        let namespace = try makeNamespace()
        let storedBytes = { (id: UInt64) in id % 7 }
        for path in ["/", "/a", "/e", "/a/b/two"] {
            let whole = try namespace.contentSummary(path, caller: superuser, storedBytes: storedBytes)
            var walk = try namespace.beginWalk(path, caller: superuser)
            var chunked = Strata_Wire_ContentSummary()
            chunked.quota = -1
            chunked.spaceQuota = -1
            var chunks = 0
            while try namespace.addToContentSummary(&chunked, walk: &walk, limit: 1, caller: superuser, storedBytes: storedBytes) {
                chunks += 1
            }
            #expect(chunked == whole, "\(path)")
            // One inode per chunk; a walk of a directory needs one more call to see it is done.
            #expect(chunks == (whole.directoryCount == 0 ? 0 : Int(whole.fileCount + whole.directoryCount)))
        }
        let root = try namespace.contentSummary("/", caller: superuser, storedBytes: storedBytes)
        #expect(root.directoryCount == 8)
        #expect(root.fileCount == 7)
        // The open file's last block counts for nothing until it is complete.
        #expect(root.length == 1_000 + 4_106 + 7 + 4_096 + 5)
        #expect(root.spaceConsumed == 2 * root.length)
    }

    /// A directory the caller may not read anywhere in the subtree refuses the summary, as before.
    @Test func aContentSummaryNeedsEveryDirectoryReadable() throws {
        var namespace = try makeNamespace()
        helpers.run(&namespace, [try namespace.prepareSetPermission("/a/b/c", permission: 0o700, caller: superuser)])
        #expect(throws: RemoteException.self) {
            try namespace.contentSummary("/a", caller: helpers.alice) { _ in 0 }
        }
        #expect(try namespace.contentSummary("/e", caller: helpers.alice) { _ in 0 }.fileCount == 2)
    }

    /// Between chunks, a directory not yet walked is removed and another renamed: the walk goes
    /// on with what is left and finishes.
    @Test func changesBetweenChunksAreSurvived() throws {
        var namespace = try makeNamespace()
        let visited = try walk(&namespace, "/", limit: 1) { namespace, chunk in
            guard chunk == 2 else { return }
            let caller = superuser
            if let edit = try namespace.prepareDelete("/a/b", recursive: true, caller: caller, now: 5) { helpers.run(&namespace, [edit]) }
            helpers.run(&namespace, [try namespace.prepareRename("/e/f", to: "/moved", overwrite: false, caller: caller, now: 5)])
        }
        #expect(Set(visited).count == visited.count)
        #expect(!visited.contains("/a/b/two") && !visited.contains("/a/b/c/three"))
        #expect(visited.contains("/top") && visited.contains("/e/empty"))
        #expect(!visited.contains { $0.hasPrefix("/e/f") || $0.hasPrefix("/moved") })
    }
}
