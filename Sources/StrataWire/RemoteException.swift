/// An error a Strata service reports to its caller, named by the HDFS exception class a Hadoop
/// user would see in the same situation (so messages and WebHDFS `RemoteException` bodies match
/// what HDFS tools expect).
public struct RemoteException: Error, CustomStringConvertible, Sendable, Equatable {
    /// The short class name, e.g. `FileNotFoundException`.
    public var exceptionClass: String
    public var message: String

    public init(_ exceptionClass: String, _ message: String) {
        self.exceptionClass = exceptionClass
        self.message = message
    }

    public var description: String { "\(exceptionClass): \(message)" }

    /// The fully qualified Java class name HDFS uses for this exception.
    public var javaClassName: String {
        Self.javaClassNames[exceptionClass] ?? "java.io.IOException"
    }

    static let javaClassNames: [String: String] = [
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
    ]

    public static func fileNotFound(_ path: String) -> RemoteException {
        RemoteException("FileNotFoundException", "File does not exist: \(path)")
    }

    public static func alreadyExists(_ path: String) -> RemoteException {
        RemoteException("FileAlreadyExistsException", "\(path) already exists")
    }

    public static func accessDenied(_ message: String) -> RemoteException {
        RemoteException("AccessControlException", "Permission denied: \(message)")
    }

    public static func invalidPath(_ path: String, _ reason: String) -> RemoteException {
        RemoteException("InvalidPathException", "Invalid path name \(path): \(reason)")
    }

    public static func illegalArgument(_ message: String) -> RemoteException {
        RemoteException("IllegalArgumentException", message)
    }

    public static func io(_ message: String) -> RemoteException {
        RemoteException("IOException", message)
    }
}
