import Hummingbird
import StrataWire

/// How a failure reaches a WebHDFS client: the spec's `RemoteException` JSON body with the status
/// of its "HTTP Response Codes" table, decided by the Java class the exception would be.
enum WebHDFSError {
    /// Exceptions that are `IllegalArgumentException`s or `UnsupportedOperationException` in Java.
    static let badRequestClasses: Set<RemoteExceptionClass> = [
        .illegalArgument, .hadoopIllegalArgument, .invalidPath, .unsupportedOperation, .numberFormat,
    ]

    /// Java runtime exceptions other than the argument ones: server bugs.
    static let internalClasses: Set<RemoteExceptionClass> = [.runtime, .nullPointer, .illegalState]

    static func status(for exceptionClass: RemoteExceptionClass) -> HTTPResponse.Status {
        if badRequestClasses.contains(exceptionClass) { return .badRequest }
        if exceptionClass == .security { return .unauthorized }
        if exceptionClass == .fileNotFound { return .notFound }
        if internalClasses.contains(exceptionClass) { return .internalServerError }
        // Every other exception a Strata service names is an IOException in HDFS (among them
        // AccessControlException and FileAlreadyExistsException): 403.
        return .forbidden
    }

    /// The exception for any error: a `RemoteException` as it is, anything else as an internal
    /// error (500), with its description as the message.
    static func remoteException(for error: any Error) -> RemoteException {
        if let remote = error as? RemoteException { return remote }
        return RemoteException(.runtime, "\(error)")
    }

    static func body(_ exception: RemoteException) -> String {
        JSONValue.object([
            (
                "RemoteException",
                .object([
                    ("exception", .string(exception.exceptionClass.rawValue)),
                    ("javaClassName", .string(exception.javaClassName)),
                    ("message", .string(exception.message)),
                ])
            )
        ]).encoded()
    }
}
