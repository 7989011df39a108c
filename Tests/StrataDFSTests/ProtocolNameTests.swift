import StrataWire
import Testing

/// Exception class names are typed in code; the wire carries the same strings as before.
@Suite struct ProtocolNameTests {
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
}
