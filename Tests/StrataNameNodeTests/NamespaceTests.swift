import StrataWire
import Testing

@testable import StrataNameNode

/// The namespace as a pure state machine: prepared edits, replay, images, permissions.
@Suite struct NamespaceTests {
    let superuser = Caller(user: "strata", groups: ["strata", "supergroup"])
    let alice = Caller(user: "alice", groups: ["alice"])

    func makeNamespace() -> Namespace {
        Namespace(settings: NamespaceSettings(superuser: "strata"), now: 1)
    }

    /// Runs a mutation and returns its edits (as the name node journals them).
    @discardableResult
    func run(_ namespace: inout Namespace, _ edits: [Edit]) -> [Edit] {
        _ = namespace.applyPrepared(edits)
        return edits
    }

    func listing(_ namespace: inout Namespace, _ path: String) throws -> [String] {
        try namespace.listing(path, startAfter: "", limit: 10_000, caller: superuser).entries.map {
            "\($0.path) \($0.kind) \($0.length) \($0.owner):\($0.group) \(String($0.permission, radix: 8)) r\($0.replication)"
        }
    }

    @Test func replayingTheJournalGivesTheSameNamespace() throws {
        var live = makeNamespace()
        var journal: [Edit] = []
        journal += run(&live, try live.prepareMkdirs("/a/b/c", permission: 0o755, createParent: true, caller: superuser, now: 2))
        journal += run(&live, try live.prepareCreate(
            "/a/b/file", permission: 0o644, overwrite: false, createParent: false, replication: 3, blockSize: 4096,
            clientName: "c1", caller: superuser, now: 3))
        let add = try live.prepareAddBlock("/a/b/file", clientName: "c1", previous: nil)
        journal += run(&live, [add])
        var last = Strata_Wire_ExtendedBlock()
        last.blockID = add.addBlock.block.blockID
        last.generationStamp = add.addBlock.block.generationStamp
        last.numBytes = 1234
        journal += run(&live, [try #require(try live.prepareComplete("/a/b/file", clientName: "c1", last: last, now: 4))])
        journal += run(&live, [try live.prepareRename("/a/b/file", to: "/a/renamed", overwrite: false, caller: superuser, now: 5)])
        journal += run(&live, [try #require(try live.prepareSetReplication("/a/renamed", replication: 2, caller: superuser))])
        journal += run(&live, [try live.prepareSetOwner("/a/b", owner: "alice", group: "staff", caller: superuser)])
        journal += run(&live, [try #require(try live.prepareDelete("/a/b/c", recursive: false, caller: superuser, now: 6))])

        var replayed = makeNamespace()
        for edit in journal {
            let bytes: [UInt8] = try edit.serializedBytes()
            try replayed.apply(try Edit(serializedBytes: bytes))
        }
        #expect(try listing(&replayed, "/a") == listing(&live, "/a"))
        #expect(try listing(&replayed, "/a") == ["/a/b directory 0 alice:staff 755 r0", "/a/renamed file 1234 strata:supergroup 644 r2"])
        #expect(replayed.nextBlockId == live.nextBlockId)
        #expect(replayed.fileCount == 1)
        #expect(replayed.directoryCount == 3)
    }

    /// A writer that missed a pipeline recovery commits its block under the old generation
    /// stamp, when closing the file or moving to the next block: refused, as HDFS does, and the
    /// block stays open. The edits also say which blocks they complete, with stamp and length.
    @Test func commitUnderAnOldGenerationStampIsRefused() throws {
        var namespace = makeNamespace()
        run(&namespace, try namespace.prepareCreate(
            "/f", permission: 0o644, overwrite: false, createParent: false, replication: 3, blockSize: 4096,
            clientName: "c", caller: superuser, now: 2))
        let add = try namespace.prepareAddBlock("/f", clientName: "c", previous: nil)
        run(&namespace, [add])
        var stale = Strata_Wire_ExtendedBlock()
        stale.blockID = add.addBlock.block.blockID
        stale.generationStamp = add.addBlock.block.generationStamp - 1
        stale.numBytes = 4096
        let refused = namespace
        #expect(throws: RemoteException.self) { try refused.prepareComplete("/f", clientName: "c", last: stale, now: 3) }
        #expect(throws: RemoteException.self) { try refused.prepareAddBlock("/f", clientName: "c", previous: stale) }
        #expect(namespace.block(stale.blockID)?.isComplete == false)

        var current = stale
        current.generationStamp += 1
        let next = try namespace.prepareAddBlock("/f", clientName: "c", previous: current)
        let completed = namespace.applyPrepared([next]).completedBlocks
        #expect(completed.map(\.blockID) == [current.blockID])
        #expect(completed.first?.generationStamp == current.generationStamp && completed.first?.numBytes == 4096)
        var last = Strata_Wire_ExtendedBlock()
        last.blockID = next.addBlock.block.blockID
        last.generationStamp = next.addBlock.block.generationStamp
        last.numBytes = 10
        let close = try #require(try namespace.prepareComplete("/f", clientName: "c", last: last, now: 4))
        #expect(namespace.applyPrepared([close]).completedBlocks.map(\.blockID) == [last.blockID])
    }

    @Test func imageRoundTripKeepsEverything() throws {
        var namespace = makeNamespace()
        run(&namespace, try namespace.prepareMkdirs("/d", permission: 0o700, createParent: true, caller: superuser, now: 2))
        for index in 0..<50 {
            run(&namespace, try namespace.prepareCreate(
                "/d/f\(index)", permission: 0o600, overwrite: false, createParent: false, replication: 1 + index % 3,
                blockSize: 8192, clientName: "c", caller: superuser, now: 3))
            run(&namespace, [try namespace.prepareAddBlock("/d/f\(index)", clientName: "c", previous: nil)])
            if index % 10 != 0 {
                // Every tenth file stays open for writing in the image.
                var last = Strata_Wire_ExtendedBlock()
                last.blockID = namespace.inode(namespace.resolve(components: ["d", "f\(index)"]).target!).blocks.last!
                last.generationStamp = try #require(namespace.block(last.blockID)).generationStamp
                last.numBytes = UInt64(index)
                run(&namespace, [try #require(try namespace.prepareComplete("/d/f\(index)", clientName: "c", last: last, now: 4))])
            }
        }
        run(&namespace, [try #require(try namespace.prepareDelete("/d/f3", recursive: false, caller: superuser, now: 5))])
        var loader = Namespace.ImageLoader(settings: namespace.settings)
        for record in namespace.image { try loader.add(record) }
        var loaded = try loader.finish()
        #expect(try listing(&loaded, "/d") == listing(&namespace, "/d"))
        #expect(loaded.writers.count == 5)
        #expect(loaded.nextBlockId == namespace.nextBlockId)
        // New inodes reuse freed slots without clashing.
        run(&loaded, try loaded.prepareMkdirs("/e", permission: 0o755, createParent: false, caller: superuser, now: 6))
        #expect(try loaded.status("/e", caller: superuser)?.kind == .directory)
        #expect(try loaded.status("/d/f4", caller: superuser)?.length == 4)
    }

    @Test func permissionsFollowHdfs() throws {
        var namespace = makeNamespace()
        run(&namespace, try namespace.prepareMkdirs("/private", permission: 0o700, createParent: true, caller: superuser, now: 2))
        run(&namespace, try namespace.prepareMkdirs("/tmp", permission: 0o1777, createParent: true, caller: superuser, now: 2))
        let denied = #expect(throws: RemoteException.self) {
            try namespace.prepareMkdirs("/private/x", permission: 0o755, createParent: false, caller: alice, now: 3)
        }
        #expect(denied?.exceptionClass == .accessControl)
        #expect(denied?.message.contains("user=alice, access=EXECUTE") == true)
        #expect(throws: RemoteException.self) { try namespace.status("/private/x", caller: alice) }
        // Sticky /tmp: alice's file cannot be deleted by bob.
        run(&namespace, try namespace.prepareCreate(
            "/tmp/alice", permission: 0o666, overwrite: false, createParent: false, replication: 1, blockSize: 4096,
            clientName: "a", caller: alice, now: 3))
        let bob = Caller(user: "bob", groups: ["bob"])
        let sticky = #expect(throws: RemoteException.self) { try namespace.prepareDelete("/tmp/alice", recursive: false, caller: bob, now: 4) }
        #expect(sticky?.exceptionClass == .accessControl)
        #expect(try namespace.prepareDelete("/tmp/alice", recursive: false, caller: alice, now: 4) != nil)
        // Only a superuser changes owners.
        let chown = #expect(throws: RemoteException.self) { try namespace.prepareSetOwner("/tmp/alice", owner: "bob", group: "", caller: alice) }
        #expect(chown?.message.contains("Non-super user cannot change owner") == true)
    }

    @Test func listingsAreInByteOrderAndPage() throws {
        var namespace = makeNamespace()
        for name in ["b", "a", "C", "é", "aa", "_"] {
            run(&namespace, try namespace.prepareMkdirs("/" + name, permission: 0o755, createParent: false, caller: superuser, now: 2))
        }
        let all = try namespace.listing("/", startAfter: "", limit: 100, caller: superuser).entries.map(\.path)
        #expect(all == ["/C", "/_", "/a", "/aa", "/b", "/é"])
        let page = try namespace.listing("/", startAfter: "a", limit: 2, caller: superuser)
        #expect(page.entries.map(\.path) == ["/aa", "/b"])
        #expect(page.remaining == 1)
    }

    @Test func nodeListHoldsFourNodesInline() {
        var list = NodeList()
        #expect(list.isEmpty)
        for node in [UInt16(7), 0, 65_534, 3] { list.append(node) }
        #expect(Array(list) == [7, 0, 65_534, 3])
        list.remove(at: 1)
        #expect(Array(list) == [7, 65_534, 3])
        list.removeAll { $0 > 8 }
        #expect(Array(list) == [7, 3])
        #expect(list.contains(3) && !list.contains(9))
    }

    @Test func blockManagerKeepsReplicasBeyondFour() {
        var manager = BlockManager()
        var generator = SystemRandomNumberGenerator()
        let nodes = (0..<6).map { index -> UInt16 in
            var info = Strata_Wire_DatanodeInfo()
            info.nodeID = "n\(index)"
            return manager.register(info, now: .zero)
        }
        var reported = Strata_Wire_ReportedBlock()
        reported.block.blockID = 42
        reported.block.numBytes = 10
        reported.storedBytes = 7
        let record = BlockRecordView(BlockRecord(inode: 1, generationStamp: 0, numBytes: 10, isComplete: true))
        for node in nodes { manager.processReportedReplica(reported, node: node, record: record) }
        #expect(manager.locations(of: 42).sorted() == nodes)
        #expect(manager.storedBytes(of: 42) == 42)
        manager.removeReplica(42, node: nodes[1])
        manager.removeReplica(42, node: nodes[5])
        #expect(manager.locations(of: 42).sorted() == [nodes[0], nodes[2], nodes[3], nodes[4]])
        // Six replicas of a block whose file wants two: four are scheduled for deletion.
        manager.processReportedReplica(reported, node: nodes[5], record: record)
        let work = manager.computeReplicationWork(now: .zero, blocks: [(42, record, 2)], using: &generator)
        #expect(work.scheduledDeletions == 3)
        #expect(manager.locations(of: 42).count == 2)
    }
}
