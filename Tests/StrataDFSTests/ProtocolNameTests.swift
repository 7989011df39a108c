import Foundation
import StrataTestKit
@testable import StrataWire
import Testing

/// Method and exception class names are typed in code; the wire carries the same strings as before.
@Suite struct ProtocolNameTests {
    /// The names every Strata client and name node of an earlier build sends and expects.
    @Test func methodNamesOnTheWire() {
        let wireNames = [
            "getFileInfo", "getListing", "getContentSummary", "getBlockLocations", "getServerDefaults", "fsck",
            "getDatanodeReport", "mkdirs", "create", "addBlock", "abandonBlock", "complete", "append", "rename", "renameLegacy",
            "concat", "truncate", "delete", "setReplication", "setPermission", "setOwner", "setTimes", "renewLease", "recoverLease",
            "reportBadBlocks", "updateBlockForPipeline", "updatePipeline", "safeMode", "setAdminState", "registerDatanode",
            "sendHeartbeat", "blockReport", "blockReceivedAndDeleted", "commitBlockSynchronization",
        ]
        #expect(NameNodeMethod.allCases.map(\.rawValue) == wireNames)
        #expect(NameNodeMethod(rawValue: "getfileinfo") == nil)
    }

    /// The short and Java names each class had as strings before it was typed.
    @Test func exceptionClassNames() {
        let javaClassNames: [String: String] = [
            "FileNotFoundException": "java.io.FileNotFoundException",
            "IOException": "java.io.IOException",
            "EOFException": "java.io.EOFException",
            "BlockMissingException": "org.apache.hadoop.hdfs.BlockMissingException",
            "PathComponentTooLongException": "org.apache.hadoop.hdfs.protocol.FSLimitException$PathComponentTooLongException",
            "IllegalArgumentException": "java.lang.IllegalArgumentException",
            "UnsupportedOperationException": "java.lang.UnsupportedOperationException",
            "SecurityException": "java.lang.SecurityException",
            "FileAlreadyExistsException": "org.apache.hadoop.fs.FileAlreadyExistsException",
            "ParentNotDirectoryException": "org.apache.hadoop.fs.ParentNotDirectoryException",
            "PathIsNotEmptyDirectoryException": "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
            "PathIsNotDirectoryException": "org.apache.hadoop.fs.PathIsNotDirectoryException",
            "InvalidPathException": "org.apache.hadoop.fs.InvalidPathException",
            "AccessControlException": "org.apache.hadoop.security.AccessControlException",
            "SafeModeException": "org.apache.hadoop.hdfs.server.namenode.SafeModeException",
            "AlreadyBeingCreatedException": "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException",
            "LeaseExpiredException": "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException",
            "NotReplicatedYetException": "org.apache.hadoop.hdfs.server.namenode.NotReplicatedYetException",
            "RetriableException": "org.apache.hadoop.ipc.RetriableException",
            "RpcServerException": "org.apache.hadoop.ipc.RpcServerException",
            "RpcNoSuchMethodException": "org.apache.hadoop.ipc.RpcNoSuchMethodException",
            "DisallowedDatanodeException": "org.apache.hadoop.hdfs.server.protocol.DisallowedDatanodeException",
            "UnregisteredNodeException": "org.apache.hadoop.hdfs.protocol.UnregisteredNodeException",
            "HadoopIllegalArgumentException": "org.apache.hadoop.HadoopIllegalArgumentException",
            "RecoveryInProgressException": "org.apache.hadoop.hdfs.protocol.RecoveryInProgressException",
            "ReplicaNotFoundException": "org.apache.hadoop.hdfs.server.datanode.ReplicaNotFoundException",
            "ReplicaAlreadyExistsException": "org.apache.hadoop.hdfs.server.datanode.ReplicaAlreadyExistsException",
            "InconsistentNamespaceException": "org.apache.hadoop.hdfs.server.common.InconsistentFSStateException",
            "RuntimeException": "java.lang.RuntimeException",
            "NumberFormatException": "java.lang.NumberFormatException",
            "NullPointerException": "java.lang.NullPointerException",
            "IllegalStateException": "java.lang.IllegalStateException",
        ]
        #expect(Set(RemoteExceptionClass.known.map(\.rawValue)) == Set(javaClassNames.keys))
        #expect(RemoteExceptionClass.known.count == javaClassNames.count)
        for known in RemoteExceptionClass.known {
            let decoded = RemoteExceptionClass(rawValue: known.rawValue)
            #expect(decoded == known)
            if case .other = decoded { Issue.record("\(known.rawValue) decodes as .other") }
            #expect(known.javaClassName == javaClassNames[known.rawValue])
        }
        #expect(RemoteException(.safeMode, "busy").description == "SafeModeException: busy")
    }

    /// A class Strata does not know, as another server might send it, is kept and shown as it came.
    @Test func unknownExceptionClass() {
        let unknown = RemoteExceptionClass(rawValue: "QuotaExceededException")
        #expect(unknown == .other("QuotaExceededException"))
        #expect(unknown.rawValue == "QuotaExceededException")
        #expect(unknown.javaClassName == "java.io.IOException")
        #expect(RemoteException(unknown, "over quota").description == "QuotaExceededException: over quota")
    }

    /// A method the name node does not have is answered at once, naming it, and the connection
    /// goes on serving.
    @Test func unknownMethod() async throws {
        try await withCluster({ $0.dataNodes = 0 }) { cluster in
            let connection = try await RPCConnection.connect(host: "127.0.0.1", port: cluster.nameNodePort, group: cluster.group)
            do {
                let _: Strata_Wire_Empty = try await connection.call(
                    methodName: "getFileInfoV2", Strata_Wire_Empty(), user: "strata", timeout: .seconds(10))
                Issue.record("an unknown method succeeded")
            } catch let error as RemoteException {
                #expect(error.exceptionClass == .rpcNoSuchMethod, "\(error)")
                #expect(error.message.contains("getFileInfoV2"), "\(error)")
            }
            var request = Strata_Wire_PathRequest()
            request.path = "/"
            let root: Strata_Wire_GetFileInfoResponse = try await connection.call(.getFileInfo, request, user: "strata")
            #expect(root.hasStatus)
            await connection.close()
        }
    }
}
