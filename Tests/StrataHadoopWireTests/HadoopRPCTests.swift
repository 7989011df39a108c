import Foundation
import NIOCore
import StrataClient
import StrataHadoopWire
import StrataTestKit
import StrataWire
import SwiftProtobuf
import Testing

/// Hadoop RPC on the name node's port, spoken by a client built from the protocol's definition:
/// ClientProtocol namespace calls, their errors as Java exception classes, concurrent calls and
/// pings on one connection, and bad connections that end with a FATAL answer while other
/// clients (Hadoop RPC and Strata's own) keep being served.
@Suite(.timeLimit(.minutes(2)))
struct HadoopRPCTests {
    static func withCluster(_ body: (LocalCluster) async throws -> Void) async throws {
        try await LocalCluster.withTemporary(prefix: "strata-hadoop-rpc-", { $0.dataNodes = 1 }) { cluster in
            try await cluster.waitForDataNodes(1)
            try await body(cluster)
        }
    }

    static func path<Request: SwiftProtobuf.Message>(_ type: Request.Type, _ set: (inout Request) -> Void) -> Request {
        var request = Request()
        set(&request)
        return request
    }

    @Test func namespaceCallsAnswerAsHDFSDoes() async throws {
        try await Self.withCluster { cluster in
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                var mkdirs = Hadoop_Hdfs_MkdirsRequestProto()
                mkdirs.src = "/hadoop/a/b"
                mkdirs.masked.perm = 0o750
                mkdirs.createParent = true
                #expect(try await client.call("mkdirs", mkdirs, as: Hadoop_Hdfs_MkdirsResponseProto.self).result)

                let info = try await client.call(
                    "getFileInfo", Self.path(Hadoop_Hdfs_GetFileInfoRequestProto.self) { $0.src = "/hadoop/a/b" },
                    as: Hadoop_Hdfs_GetFileInfoResponseProto.self)
                #expect(info.hasFs)
                #expect(info.fs.fileType == .isDir)
                #expect(info.fs.path.isEmpty)
                #expect(info.fs.permission.perm == 0o750)
                #expect(info.fs.owner == "strata")
                #expect(info.fs.fileID != 0)
                #expect(info.fs.modificationTime > 0)

                // The same directory through Strata's own RPC on the same port.
                let strata = cluster.client()
                let status = try #require(try await strata.status("/hadoop/a/b"))
                #expect(status.kind == .directory)
                try await strata.createEmpty("/hadoop/a/file", replication: 1)
                await strata.close()

                var listing = Hadoop_Hdfs_GetListingRequestProto()
                listing.src = "/hadoop/a"
                listing.startAfter = Data()
                listing.needLocation = false
                let listed = try await client.call("getListing", listing, as: Hadoop_Hdfs_GetListingResponseProto.self)
                #expect(listed.dirList.partialListing.map { String(decoding: $0.path, as: UTF8.self) } == ["b", "file"])
                #expect(listed.dirList.remainingEntries == 0)
                let file = listed.dirList.partialListing[1]
                #expect(file.fileType == .isFile)
                #expect(file.blockReplication == 1)
                #expect(file.blocksize > 0)
                #expect(listed.dirList.partialListing[0].childrenNum == 0)

                listing.startAfter = Data("b".utf8)
                let rest = try await client.call("getListing", listing, as: Hadoop_Hdfs_GetListingResponseProto.self)
                #expect(rest.dirList.partialListing.map { String(decoding: $0.path, as: UTF8.self) } == ["file"])

                var rename = Hadoop_Hdfs_Rename2RequestProto()
                rename.src = "/hadoop/a/file"
                rename.dst = "/hadoop/a/renamed"
                rename.overwriteDest = false
                _ = try await client.call("rename2", rename, as: Hadoop_Hdfs_Rename2ResponseProto.self)

                var replication = Hadoop_Hdfs_SetReplicationRequestProto()
                replication.src = "/hadoop/a/renamed"
                replication.replication = 2
                #expect(try await client.call("setReplication", replication, as: Hadoop_Hdfs_SetReplicationResponseProto.self).result)
                var permission = Hadoop_Hdfs_SetPermissionRequestProto()
                permission.src = "/hadoop/a/renamed"
                permission.permission.perm = 0o600
                _ = try await client.call("setPermission", permission, as: Hadoop_Hdfs_SetPermissionResponseProto.self)
                let renamed = try await client.call(
                    "getFileInfo", Self.path(Hadoop_Hdfs_GetFileInfoRequestProto.self) { $0.src = "/hadoop/a/renamed" },
                    as: Hadoop_Hdfs_GetFileInfoResponseProto.self)
                #expect(renamed.fs.blockReplication == 2)
                #expect(renamed.fs.permission.perm == 0o600)

                let summary = try await client.call(
                    "getContentSummary", Self.path(Hadoop_Hdfs_GetContentSummaryRequestProto.self) { $0.path = "/hadoop" },
                    as: Hadoop_Hdfs_GetContentSummaryResponseProto.self)
                #expect(summary.summary.fileCount == 1)
                #expect(summary.summary.directoryCount == 3)
                #expect(summary.summary.quota == UInt64(bitPattern: -1))

                let defaults = try await client.call(
                    "getServerDefaults", Hadoop_Hdfs_GetServerDefaultsRequestProto(), as: Hadoop_Hdfs_GetServerDefaultsResponseProto.self)
                #expect(defaults.serverDefaults.blockSize > 0)
                let state = try await client.call(
                    "getHAServiceState", Hadoop_Hdfs_HAServiceStateRequestProto(), as: Hadoop_Hdfs_HAServiceStateResponseProto.self)
                #expect(state.state == .active)
                _ = try await client.call("msync", Hadoop_Hdfs_MsyncRequestProto(), as: Hadoop_Hdfs_MsyncResponseProto.self)
                let report = try await client.call(
                    "getDatanodeReport", Self.path(Hadoop_Hdfs_GetDatanodeReportRequestProto.self) { $0.type = .live },
                    as: Hadoop_Hdfs_GetDatanodeReportResponseProto.self)
                #expect(report.di.count == 1)
                let stats = try await client.call(
                    "getFsStats", Hadoop_Hdfs_GetFsStatusRequestProto(), as: Hadoop_Hdfs_GetFsStatsResponseProto.self)
                #expect(stats.capacity > 0)

                let link = try await client.call(
                    "getFileLinkInfo", Self.path(Hadoop_Hdfs_GetFileLinkInfoRequestProto.self) { $0.src = "/hadoop/a/renamed" },
                    as: Hadoop_Hdfs_GetFileLinkInfoResponseProto.self)
                #expect(link.fs == renamed.fs)

                var owner = Hadoop_Hdfs_SetOwnerRequestProto()
                owner.src = "/hadoop/a/renamed"
                owner.username = "alice"
                owner.groupname = "staff"
                _ = try await client.call("setOwner", owner, as: Hadoop_Hdfs_SetOwnerResponseProto.self)
                var times = Hadoop_Hdfs_SetTimesRequestProto()
                times.src = "/hadoop/a/renamed"
                times.mtime = 1_000_000
                times.atime = UInt64(bitPattern: -1)
                _ = try await client.call("setTimes", times, as: Hadoop_Hdfs_SetTimesResponseProto.self)
                let changed = try await client.call(
                    "getFileInfo", Self.path(Hadoop_Hdfs_GetFileInfoRequestProto.self) { $0.src = "/hadoop/a/renamed" },
                    as: Hadoop_Hdfs_GetFileInfoResponseProto.self)
                #expect((changed.fs.owner, changed.fs.group) == ("alice", "staff"))
                #expect(changed.fs.modificationTime == 1_000_000)
                #expect(changed.fs.accessTime == renamed.fs.accessTime)

                // The old rename answers false rather than an error when it cannot rename.
                var legacy = Hadoop_Hdfs_RenameRequestProto()
                legacy.src = "/hadoop/missing"
                legacy.dst = "/hadoop/elsewhere"
                #expect(try await !client.call("rename", legacy, as: Hadoop_Hdfs_RenameResponseProto.self).result)
                legacy.src = "/hadoop/a/renamed"
                #expect(try await client.call("rename", legacy, as: Hadoop_Hdfs_RenameResponseProto.self).result)

                _ = try await client.call(
                    "renewLease", Self.path(Hadoop_Hdfs_RenewLeaseRequestProto.self) { $0.clientName = "DFSClient_hadoop_test" },
                    as: Hadoop_Hdfs_RenewLeaseResponseProto.self)

                var delete = Hadoop_Hdfs_DeleteRequestProto()
                delete.src = "/hadoop"
                delete.recursive = true
                #expect(try await client.call("delete", delete, as: Hadoop_Hdfs_DeleteResponseProto.self).result)
                let gone = try await client.call(
                    "getFileInfo", Self.path(Hadoop_Hdfs_GetFileInfoRequestProto.self) { $0.src = "/hadoop" },
                    as: Hadoop_Hdfs_GetFileInfoResponseProto.self)
                #expect(!gone.hasFs)
            }
        }
    }

    @Test func errorsCarryTheJavaExceptionClassesClientsBranchOn() async throws {
        try await Self.withCluster { cluster in
            let strata = cluster.client()
            try await strata.mkdirs("/owned/full", permission: 0o755)
            try await strata.createEmpty("/owned/file", replication: 1)
            await strata.close()

            func remoteError(_ body: () async throws -> Void) async -> HadoopRPCTestClient.RemoteError? {
                do {
                    try await body()
                    return nil
                } catch {
                    return error as? HadoopRPCTestClient.RemoteError
                }
            }
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                var mkdirs = Hadoop_Hdfs_MkdirsRequestProto()
                mkdirs.src = "/owned/file/below"
                mkdirs.masked.perm = 0o755
                mkdirs.createParent = true
                let parent = await remoteError { _ = try await client.call("mkdirs", mkdirs, as: Hadoop_Hdfs_MkdirsResponseProto.self) }
                #expect(parent?.className == "org.apache.hadoop.fs.ParentNotDirectoryException")

                var delete = Hadoop_Hdfs_DeleteRequestProto()
                delete.src = "/owned"
                delete.recursive = false
                let notEmpty = await remoteError { _ = try await client.call("delete", delete, as: Hadoop_Hdfs_DeleteResponseProto.self) }
                #expect(notEmpty?.className == "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException")

                var rename = Hadoop_Hdfs_Rename2RequestProto()
                rename.src = "/owned/full"
                rename.dst = "/owned/file"
                rename.overwriteDest = false
                let exists = await remoteError { _ = try await client.call("rename2", rename, as: Hadoop_Hdfs_Rename2ResponseProto.self) }
                #expect(exists?.className == "org.apache.hadoop.fs.FileAlreadyExistsException")

                var summary = Hadoop_Hdfs_GetContentSummaryRequestProto()
                summary.path = "/missing"
                let missing = await remoteError {
                    _ = try await client.call("getContentSummary", summary, as: Hadoop_Hdfs_GetContentSummaryResponseProto.self)
                }
                #expect(missing?.className == "java.io.FileNotFoundException")

                // Changes in safe mode.
                let admin = cluster.client()
                _ = try await admin.safeMode("enter")
                var inSafeMode = Hadoop_Hdfs_MkdirsRequestProto()
                inSafeMode.src = "/owned/later"
                inSafeMode.masked.perm = 0o755
                inSafeMode.createParent = true
                let safeMode = await remoteError {
                    _ = try await client.call("mkdirs", inSafeMode, as: Hadoop_Hdfs_MkdirsResponseProto.self)
                }
                #expect(safeMode?.className == "org.apache.hadoop.hdfs.server.namenode.SafeModeException")
                _ = try await admin.safeMode("leave")
                await admin.close()

                // A method ClientProtocol has but Strata does not serve yet: answered at once, and
                // the connection goes on.
                let callId = try await client.start("getStoragePolicies", Hadoop_Hdfs_GetStoragePoliciesRequestProto())
                let answer = try #require(try await client.readResponse())
                #expect(Int32(bitPattern: answer.header.callID) == callId)
                #expect(answer.header.status == .error)
                #expect(answer.header.exceptionClassName == "org.apache.hadoop.ipc.RpcNoSuchMethodException")
                #expect(answer.header.errorDetail == .errorNoSuchMethod)
                #expect(answer.header.errorMsg.contains("getStoragePolicies"))

                _ = try await client.start("getFileInfo", Hadoop_Hdfs_GetFileInfoRequestProto(), protocolName: "org.example.Nothing")
                let wrongProtocol = try #require(try await client.readResponse())
                #expect(wrongProtocol.header.exceptionClassName == "org.apache.hadoop.ipc.RpcNoSuchProtocolException")
                #expect(wrongProtocol.header.errorDetail == .errorNoSuchProtocol)

                let still = try await client.call(
                    "getFileInfo", Self.path(Hadoop_Hdfs_GetFileInfoRequestProto.self) { $0.src = "/owned" },
                    as: Hadoop_Hdfs_GetFileInfoResponseProto.self)
                #expect(still.fs.fileType == .isDir)
            }
            // Another user, from the connection context, is checked like any other caller.
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort, user: "mallory") { client in
                var mkdirs = Hadoop_Hdfs_MkdirsRequestProto()
                mkdirs.src = "/owned/mine"
                mkdirs.masked.perm = 0o755
                mkdirs.createParent = false
                let denied = await remoteError { _ = try await client.call("mkdirs", mkdirs, as: Hadoop_Hdfs_MkdirsResponseProto.self) }
                #expect(denied?.className == "org.apache.hadoop.security.AccessControlException")
                #expect(denied?.message.contains("mallory") == true)
            }
        }
    }

    @Test func concurrentCallsOnOneConnectionAndPings() async throws {
        try await Self.withCluster { cluster in
            try await HadoopRPCTestClient.with(port: cluster.nameNodePort) { client in
                // A ping, then 64 calls in one write: every call answered once, matched by id.
                var bytes = client.packet([client.delimited(client.rpcHeader(callId: HadoopRPC.pingCallId))])
                var request = Hadoop_Hdfs_GetFileInfoRequestProto()
                request.src = "/"
                for callId in 0..<64 { bytes += try client.callPacket(callId: Int32(callId), method: "getFileInfo", request) }
                try await client.send(bytes)
                var answered = Set<Int32>()
                for _ in 0..<64 {
                    let answer = try #require(try await client.readResponse())
                    #expect(answer.header.status == .success)
                    answered.insert(Int32(bitPattern: answer.header.callID))
                }
                #expect(answered == Set(0..<64))
            }
        }
    }

    /// Sends `bytes` on a new connection and returns the answers until the server closes it.
    static func answersUntilClosed(port: Int, user: String? = nil, _ bytes: [UInt8]) async throws -> [Hadoop_Common_RpcResponseHeaderProto] {
        try await HadoopRPCTestClient.with(port: port, user: user) { client in
            try await client.send(bytes)
            var answers: [Hadoop_Common_RpcResponseHeaderProto] = []
            while let answer = try await client.readResponse() { answers.append(answer.header) }
            return answers
        }
    }

    @Test func badConnectionsGetAFatalAnswerAndOthersAreStillServed() async throws {
        try await Self.withCluster { cluster in
            let port = cluster.nameNodePort
            // Another client connected throughout.
            try await HadoopRPCTestClient.with(port: port) { bystander in
                let version = try await Self.answersUntilClosed(port: port, HadoopRPC.magic + [8, 0, 0])
                #expect(version.map(\.status) == [.fatal])
                #expect(version.first?.exceptionClassName == "org.apache.hadoop.ipc.RPC$VersionMismatch")
                #expect(version.first?.errorDetail == .fatalVersionMismatch)

                let sasl = try await Self.answersUntilClosed(port: port, HadoopRPC.magic + [9, 0, HadoopRPC.authProtocolSASL])
                #expect(sasl.map(\.status) == [.fatal])
                #expect(sasl.first?.exceptionClassName == "org.apache.hadoop.security.AccessControlException")
                #expect(sasl.first?.errorDetail == .fatalUnauthorized)

                let oversized = try await Self.answersUntilClosed(port: port, HadoopRPC.magic + [9, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF])
                #expect(oversized.map(\.status) == [.fatal])
                #expect(oversized.first?.errorMsg.contains("maximum") == true)

                // A packet whose RpcRequestHeaderProto is not one (a varint length past the packet).
                let malformed = try await Self.answersUntilClosed(port: port, HadoopRPC.magic + [9, 0, 0, 0, 0, 0, 2, 0x7F, 0x01])
                #expect(malformed.map(\.status) == [.fatal])
                #expect(malformed.first?.errorDetail == .fatalInvalidRpcHeader)

                // A call before the connection context.
                var request = Hadoop_Hdfs_GetFileInfoRequestProto()
                request.src = "/"
                let early = try await Self.answersUntilClosed(
                    port: port, HadoopRPC.magic + [9, 0, 0] + (try bystander.callPacket(callId: 0, method: "getFileInfo", request)))
                #expect(early.map(\.status) == [.fatal])

                // Bytes of no protocol this port speaks: closed without an answer.
                #expect(try await Self.answersUntilClosed(port: port, Array("GET / HTTP/1.1\r\n\r\n".utf8)).isEmpty)

                let root = try await bystander.call("getFileInfo", request, as: Hadoop_Hdfs_GetFileInfoResponseProto.self)
                #expect(root.fs.fileType == .isDir)
            }
            let strata = cluster.client()
            #expect(try await strata.status("/")?.kind == .directory)
            await strata.close()
        }
    }
}
