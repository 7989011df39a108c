import Foundation
import StrataClient
import StrataTestKit
import Testing

/// One writer per file: the lease holder.
@Suite(.serialized) struct LeaseTests {
    @Test func secondWriterIsRefusedWhileTheFileIsOpen() async throws {
        try await withCluster { cluster in
            try await withClient(cluster) { first in
                try await withClient(cluster) { second in
                    let stream = try await first.create("/busy")
                    try await stream.write(Array("first writer\n".utf8))
                    try await stream.hflush()

                    await expectRemote(.alreadyBeingCreated, "create over an open file") {
                        _ = try await second.create("/busy")
                    }
                    await expectRemote(.alreadyBeingCreated, "create with overwrite over an open file") {
                        _ = try await second.create("/busy", overwrite: true)
                    }
                    let append = await expectRemote(.alreadyBeingCreated, "append to an open file") {
                        _ = try await second.append("/busy")
                    }
                    #expect(append?.message.contains(first.clientName) == true, "message names the holder: \(append?.message ?? "")")

                    // The first writer is undisturbed and finishes; then the file is free.
                    try await stream.write(Array("still mine\n".utf8))
                    try await stream.close()
                    expectSameBytes(try await second.readAll("/busy"), Array("first writer\nstill mine\n".utf8), "/busy")
                    let appended = try await second.append("/busy")
                    try await appended.write(Array("second writer\n".utf8))
                    await expectRemote(.alreadyBeingCreated, "the first client appends while the second holds the lease") {
                        _ = try await first.append("/busy")
                    }
                    try await appended.close()
                    expectSameBytes(
                        try await first.readAll("/busy"), Array("first writer\nstill mine\nsecond writer\n".utf8), "/busy after the append")
                    try await put(second, "/busy", Array("replaced".utf8), overwrite: true)
                    expectSameBytes(try await first.readAll("/busy"), Array("replaced".utf8), "/busy after overwrite")
                }
            }
        }
    }

    /// The lease is per client, not per user: the same user in two clients is refused too.
    @Test func leaseIsPerClientNotPerUser() async throws {
        try await withCluster { cluster in
            try await withClient(cluster, user: "strata") { first in
                try await withClient(cluster, user: "strata") { second in
                    #expect(first.clientName != second.clientName)
                    let stream = try await first.create("/mine")
                    await expectRemote(.alreadyBeingCreated, "same user, other client") {
                        _ = try await second.append("/mine")
                    }
                    try await stream.close()
                }
            }
        }
    }
}
