/// The HDFS exception class of a `RemoteException`: what a Hadoop user would see in the same
/// situation. The raw value is the short class name the wire and WebHDFS carry
/// (`FileNotFoundException`); `javaClassName` is the fully qualified Java name.
///
/// A name received from the wire that Strata does not know is kept as `.other(name)`, so it is
/// still shown and sent on as it came. Build values from names with `init(rawValue:)`, which
/// gives the named case for every known name: `.other` never holds a name listed in `known`.
public enum RemoteExceptionClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    case fileNotFound
    case io
    case eof
    case blockMissing
    case pathComponentTooLong
    case illegalArgument
    case unsupportedOperation
    case security
    case fileAlreadyExists
    case parentNotDirectory
    case pathIsNotEmptyDirectory
    case pathIsNotDirectory
    case invalidPath
    case accessControl
    case safeMode
    case alreadyBeingCreated
    case leaseExpired
    case notReplicatedYet
    case retriable
    case rpcServer
    case rpcNoSuchMethod
    case disallowedDatanode
    case unregisteredNode
    case hadoopIllegalArgument
    case recoveryInProgress
    case replicaNotFound
    case replicaAlreadyExists
    case inconsistentNamespace
    /// Java runtime exceptions: WebHDFS answers with these for server bugs and malformed numbers.
    case runtime
    case numberFormat
    case nullPointer
    case illegalState
    /// A class Strata does not name itself, by its short name as received.
    case other(String)

    /// Every named case (all but `.other`), for decoding names from the wire.
    public static let known: [RemoteExceptionClass] = [
        .fileNotFound, .io, .eof, .blockMissing, .pathComponentTooLong, .illegalArgument, .unsupportedOperation, .security,
        .fileAlreadyExists, .parentNotDirectory, .pathIsNotEmptyDirectory, .pathIsNotDirectory, .invalidPath, .accessControl,
        .safeMode, .alreadyBeingCreated, .leaseExpired, .notReplicatedYet, .retriable, .rpcServer, .rpcNoSuchMethod,
        .disallowedDatanode, .unregisteredNode, .hadoopIllegalArgument, .recoveryInProgress, .replicaNotFound,
        .replicaAlreadyExists, .inconsistentNamespace, .runtime, .numberFormat, .nullPointer, .illegalState,
    ]

    private static let byName: [String: RemoteExceptionClass] = Dictionary(
        uniqueKeysWithValues: known.map { ($0.rawValue, $0) })

    /// The class with this short name; `.other(name)` when Strata does not know it.
    public init(rawValue: String) {
        self = Self.byName[rawValue] ?? .other(rawValue)
    }

    /// The short class name, e.g. `FileNotFoundException`.
    public var rawValue: String { names.short }

    /// The fully qualified Java class name HDFS uses; `java.io.IOException` for a class Strata
    /// does not know (every remote error is an `IOException` to an HDFS client).
    public var javaClassName: String { names.java }

    public var description: String { rawValue }

    private var names: (short: String, java: String) {
        switch self {
        case .fileNotFound: ("FileNotFoundException", "java.io.FileNotFoundException")
        case .io: ("IOException", "java.io.IOException")
        case .eof: ("EOFException", "java.io.EOFException")
        case .blockMissing: ("BlockMissingException", "org.apache.hadoop.hdfs.BlockMissingException")
        case .pathComponentTooLong:
            ("PathComponentTooLongException", "org.apache.hadoop.hdfs.protocol.FSLimitException$PathComponentTooLongException")
        case .illegalArgument: ("IllegalArgumentException", "java.lang.IllegalArgumentException")
        case .unsupportedOperation: ("UnsupportedOperationException", "java.lang.UnsupportedOperationException")
        case .security: ("SecurityException", "java.lang.SecurityException")
        case .fileAlreadyExists: ("FileAlreadyExistsException", "org.apache.hadoop.fs.FileAlreadyExistsException")
        case .parentNotDirectory: ("ParentNotDirectoryException", "org.apache.hadoop.fs.ParentNotDirectoryException")
        case .pathIsNotEmptyDirectory: ("PathIsNotEmptyDirectoryException", "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException")
        case .pathIsNotDirectory: ("PathIsNotDirectoryException", "org.apache.hadoop.fs.PathIsNotDirectoryException")
        case .invalidPath: ("InvalidPathException", "org.apache.hadoop.fs.InvalidPathException")
        case .accessControl: ("AccessControlException", "org.apache.hadoop.security.AccessControlException")
        case .safeMode: ("SafeModeException", "org.apache.hadoop.hdfs.server.namenode.SafeModeException")
        case .alreadyBeingCreated: ("AlreadyBeingCreatedException", "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException")
        case .leaseExpired: ("LeaseExpiredException", "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException")
        case .notReplicatedYet: ("NotReplicatedYetException", "org.apache.hadoop.hdfs.server.namenode.NotReplicatedYetException")
        case .retriable: ("RetriableException", "org.apache.hadoop.ipc.RetriableException")
        case .rpcServer: ("RpcServerException", "org.apache.hadoop.ipc.RpcServerException")
        case .rpcNoSuchMethod: ("RpcNoSuchMethodException", "org.apache.hadoop.ipc.RpcNoSuchMethodException")
        case .disallowedDatanode: ("DisallowedDatanodeException", "org.apache.hadoop.hdfs.server.protocol.DisallowedDatanodeException")
        case .unregisteredNode: ("UnregisteredNodeException", "org.apache.hadoop.hdfs.protocol.UnregisteredNodeException")
        case .hadoopIllegalArgument: ("HadoopIllegalArgumentException", "org.apache.hadoop.HadoopIllegalArgumentException")
        case .recoveryInProgress: ("RecoveryInProgressException", "org.apache.hadoop.hdfs.protocol.RecoveryInProgressException")
        case .replicaNotFound: ("ReplicaNotFoundException", "org.apache.hadoop.hdfs.server.datanode.ReplicaNotFoundException")
        case .replicaAlreadyExists:
            ("ReplicaAlreadyExistsException", "org.apache.hadoop.hdfs.server.datanode.ReplicaAlreadyExistsException")
        case .inconsistentNamespace: ("InconsistentNamespaceException", "org.apache.hadoop.hdfs.server.common.InconsistentFSStateException")
        case .runtime: ("RuntimeException", "java.lang.RuntimeException")
        case .numberFormat: ("NumberFormatException", "java.lang.NumberFormatException")
        case .nullPointer: ("NullPointerException", "java.lang.NullPointerException")
        case .illegalState: ("IllegalStateException", "java.lang.IllegalStateException")
        case .other(let name): (name, "java.io.IOException")
        }
    }
}
