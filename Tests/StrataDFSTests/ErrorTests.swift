import Foundation
import StrataClient
import StrataTestKit
import StrataWire
import Testing

/// Failures reach the caller as the HDFS exception class a Hadoop user would see.
@Suite(.serialized) struct ErrorTests {
    @Test func missingFiles() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let missing = try await client.status("/nothing")
                #expect(missing == nil)
                #expect(try await client.status("/no/such/dir/file") == nil)
                await expectRemote(.fileNotFound, "read of a missing file") {
                    _ = try await client.readAll("/nothing")
                }
                await expectRemote(.fileNotFound, "list of a missing directory") {
                    _ = try await client.list("/nothing")
                }
                await expectRemote(.fileNotFound, "append to a missing file") {
                    _ = try await client.append("/nothing")
                }
                await expectRemote(.fileNotFound, "content summary of a missing path") {
                    _ = try await client.contentSummary("/nothing")
                }
                await expectRemote(.fileNotFound, "read of a directory") {
                    try await client.mkdirs("/dir")
                    _ = try await client.readAll("/dir")
                }
                #expect(try await client.delete("/nothing", recursive: true) == false)
            }
        }
    }

    @Test func createAndMkdirConflicts() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                try await put(client, "/file", Array("first".utf8))
                await expectRemote(.fileAlreadyExists, "create over an existing file") {
                    _ = try await client.create("/file")
                }
                expectSameBytes(try await client.readAll("/file"), Array("first".utf8), "file after refused create")
                try await client.mkdirs("/dir")
                await expectRemote(.fileAlreadyExists, "create over a directory, even with overwrite") {
                    _ = try await client.create("/dir", overwrite: true)
                }
                await expectRemote(.fileAlreadyExists, "mkdirs over a file") {
                    try await client.mkdirs("/file")
                }
                // mkdirs of an existing directory succeeds.
                try await client.mkdirs("/dir")
                await expectRemote(.fileNotFound, "mkdirs without createParent under a missing parent") {
                    try await client.mkdirs("/missing/child", createParent: false)
                }
                #expect(try await client.status("/missing") == nil, "a refused mkdirs made nothing")
                try await client.mkdirs("/dir/child", createParent: false)
                await expectRemote(.fileNotFound, "create without createParent under a missing parent") {
                    _ = try await client.create("/missing/file", createParent: false)
                }
                await expectRemote(.parentNotDirectory, "create under a file") {
                    _ = try await client.create("/file/child")
                }
                await expectRemote(.parentNotDirectory, "create deeper under a file") {
                    _ = try await client.create("/file/a/b")
                }
                await expectRemote(.parentNotDirectory, "mkdirs under a file") {
                    try await client.mkdirs("/file/sub")
                }
            }
        }
    }

    @Test func deleteNonEmptyDirectory() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                try await put(client, "/full/a", [1, 2, 3])
                await expectRemote(.pathIsNotEmptyDirectory, "non-recursive delete of a non-empty directory") {
                    try await client.delete("/full", recursive: false)
                }
                #expect(try await client.status("/full/a") != nil)
                try await client.mkdirs("/empty")
                #expect(try await client.delete("/empty", recursive: false))
                #expect(try await client.delete("/full", recursive: true))
                #expect(try await client.status("/full") == nil)
                #expect(try await client.status("/full/a") == nil)
                await expectRemote(.io, "delete of the root") {
                    try await client.delete("/", recursive: true)
                }
            }
        }
    }

    @Test func invalidPaths() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                let longName = String(repeating: "n", count: 300)
                let cases: [(String, RemoteExceptionClass)] = [
                    ("/a/../b", .invalidPath), ("/a/./b", .invalidPath), ("/a//b", .invalidPath),
                    ("a/b", .invalidPath), ("", .invalidPath), ("/a:b", .invalidPath),
                    ("/dir/" + longName, .pathComponentTooLong),
                ]
                for (path, exceptionClass) in cases {
                    await expectRemote(exceptionClass, "create \(path.prefix(20))") { _ = try await client.create(path) }
                    await expectRemote(exceptionClass, "mkdirs \(path.prefix(20))") { try await client.mkdirs(path) }
                    await expectRemote(exceptionClass, "status \(path.prefix(20))") { _ = try await client.status(path) }
                    await expectRemote(exceptionClass, "rename to \(path.prefix(20))") {
                        try await client.mkdirs("/source")
                        try await client.rename("/source", to: path)
                    }
                }
                // A 255-byte name is the longest allowed.
                let longest = "/" + String(repeating: "m", count: 255)
                try await put(client, longest, [42])
                #expect(try await client.status(longest)?.length == 1)
                let listing = try await client.list("/")
                #expect(Set(listing.map(\.path)) == [longest, "/source"], "refused calls made nothing")
            }
        }
    }

    /// HDFS permissions: alice may not write into the superuser's 755 directories, change their
    /// mode or owner, or read a 600 file of someone else; she may in her own directory.
    @Test func permissionDenied() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { admin in
                try await withClient(cluster, user: "alice") { alice in
                    try await withClient(cluster, user: "bob") { bob in
                        try await admin.mkdirs("/shared", permission: 0o755)
                        try await put(admin, "/shared/public", Array("everyone".utf8), permission: 0o644)
                        try await put(admin, "/shared/secret", Array("root only".utf8), permission: 0o600)
                        #expect(try await admin.status("/shared")?.owner == "strata")

                        let denied = await expectRemote(.accessControl, "alice creates in /shared (755, strata)") {
                            _ = try await alice.create("/shared/mine")
                        }
                        #expect(denied?.message.contains("alice") == true, "message names the user: \(denied?.message ?? "")")
                        await expectRemote(.accessControl, "alice creates in / (755, strata)") {
                            _ = try await alice.create("/top")
                        }
                        await expectRemote(.accessControl, "alice makes a directory in /shared") {
                            try await alice.mkdirs("/shared/dir")
                        }
                        await expectRemote(.accessControl, "alice deletes from /shared") {
                            try await alice.delete("/shared/public", recursive: false)
                        }
                        await expectRemote(.accessControl, "alice overwrites /shared/public (644)") {
                            _ = try await alice.create("/shared/public", overwrite: true)
                        }
                        await expectRemote(.accessControl, "alice appends to /shared/public (644)") {
                            _ = try await alice.append("/shared/public")
                        }
                        await expectRemote(.accessControl, "alice renames out of /shared") {
                            try await alice.rename("/shared/public", to: "/shared/moved")
                        }
                        await expectRemote(.accessControl, "chmod by a non-owner") {
                            try await alice.setPermission("/shared", permission: 0o777)
                        }
                        await expectRemote(.accessControl, "chown by a non-superuser") {
                            try await alice.setOwner("/shared/public", owner: "alice", group: "")
                        }
                        await expectRemote(.accessControl, "alice sets replication of a file she cannot write") {
                            try await alice.setReplication("/shared/public", replication: 1)
                        }
                        await expectRemote(.accessControl, "alice reads a 600 file of strata") {
                            _ = try await alice.readAll("/shared/secret")
                        }
                        await expectRemote(.accessControl, "alice asks where the blocks of a 600 file are") {
                            _ = try await alice.blockLocations("/shared/secret")
                        }
                        // What she may do: read a 644 file, and anything in a directory she owns.
                        expectSameBytes(try await alice.readAll("/shared/public"), Array("everyone".utf8), "alice reads a 644 file")
                        try await admin.mkdirs("/user/alice")
                        try await admin.setOwner("/user/alice", owner: "alice", group: "alice")
                        try await put(alice, "/user/alice/notes", Array("mine".utf8), permission: 0o600)
                        let status = try #require(try await alice.status("/user/alice/notes"))
                        #expect(status.owner == "alice")
                        #expect(status.permission == 0o600)
                        try await alice.setPermission("/user/alice", permission: 0o700)
                        await expectRemote(.accessControl, "bob reads alice's 600 file") {
                            _ = try await bob.readAll("/user/alice/notes")
                        }
                        await expectRemote(.accessControl, "bob lists alice's 700 directory") {
                            _ = try await bob.list("/user/alice")
                        }
                        await expectRemote(.accessControl, "bob chowns alice's file to himself") {
                            try await bob.setOwner("/user/alice/notes", owner: "bob", group: "")
                        }
                        // The superuser reads anything.
                        expectSameBytes(try await admin.readAll("/user/alice/notes"), Array("mine".utf8), "superuser reads alice's file")
                        // Nothing alice was refused happened.
                        #expect(try await admin.status("/shared/mine") == nil)
                        #expect(try await admin.status("/shared")?.permission == 0o755)
                        #expect(try await admin.status("/shared/public")?.owner == "strata")
                        #expect(try await admin.status("/shared/public")?.replication == 3)
                    }
                }
            }
        }
    }

    @Test func renameCases() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { client in
                try await put(client, "/a", Array("a".utf8))
                try await put(client, "/b", Array("b".utf8))
                await expectRemote(.fileAlreadyExists, "rename onto an existing file without overwrite") {
                    try await client.rename("/a", to: "/b")
                }
                expectSameBytes(try await client.readAll("/b"), Array("b".utf8), "destination untouched")
                try await client.mkdirs("/dir/sub")
                await expectRemote(.io, "rename a directory into its own subdirectory") {
                    try await client.rename("/dir", to: "/dir/sub/dir")
                }
                await expectRemote(.fileNotFound, "rename of a missing source") {
                    try await client.rename("/missing", to: "/c")
                }
                await expectRemote(.fileNotFound, "rename into a missing directory") {
                    try await client.rename("/a", to: "/nowhere/a")
                }
                await expectRemote(.parentNotDirectory, "rename under a file") {
                    try await client.rename("/a", to: "/b/a")
                }
                await expectRemote(.io, "rename a file onto a directory with overwrite") {
                    try await client.rename("/a", to: "/dir", overwrite: true)
                }
                // What works: a move into a directory, and a replacing rename.
                try await client.rename("/a", to: "/dir/sub/a")
                #expect(try await client.status("/a") == nil)
                expectSameBytes(try await client.readAll("/dir/sub/a"), Array("a".utf8), "moved file")
                try await client.rename("/dir/sub/a", to: "/b", overwrite: true)
                expectSameBytes(try await client.readAll("/b"), Array("a".utf8), "replaced file")
                try await client.rename("/dir", to: "/moved")
                #expect(try await client.status("/moved/sub")?.kind == .directory)
            }
        }
    }
}
