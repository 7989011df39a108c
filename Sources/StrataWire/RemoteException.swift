/// An error a Strata service reports to its caller, named by the HDFS exception class a Hadoop
/// user would see in the same situation (so messages and WebHDFS `RemoteException` bodies match
/// what HDFS tools expect).
public struct RemoteException: Error, CustomStringConvertible, Sendable, Equatable {
    public var exceptionClass: RemoteExceptionClass
    public var message: String

    public init(_ exceptionClass: RemoteExceptionClass, _ message: String) {
        self.exceptionClass = exceptionClass
        self.message = message
    }

    public var description: String { "\(exceptionClass.rawValue): \(message)" }

    /// The fully qualified Java class name HDFS uses for this exception.
    public var javaClassName: String { exceptionClass.javaClassName }

    public static func fileNotFound(_ path: String) -> RemoteException {
        RemoteException(.fileNotFound, "File does not exist: \(path)")
    }

    public static func alreadyExists(_ path: String) -> RemoteException {
        RemoteException(.fileAlreadyExists, "\(path) already exists")
    }

    public static func accessDenied(_ message: String) -> RemoteException {
        RemoteException(.accessControl, "Permission denied: \(message)")
    }

    public static func invalidPath(_ path: String, _ reason: String) -> RemoteException {
        RemoteException(.invalidPath, "Invalid path name \(path): \(reason)")
    }

    public static func illegalArgument(_ message: String) -> RemoteException {
        RemoteException(.illegalArgument, message)
    }

    public static func io(_ message: String) -> RemoteException {
        RemoteException(.io, message)
    }
}
