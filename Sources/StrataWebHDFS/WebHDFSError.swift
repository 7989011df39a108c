import Hummingbird
import StrataWire

/// How a failure reaches a WebHDFS client: the spec's `RemoteException` JSON body with the status
/// of its "HTTP Response Codes" table, decided by the Java class the exception would be.
enum WebHDFSError {
    /// Exceptions that are `IllegalArgumentException`s or `UnsupportedOperationException` in Java.
    static let badRequestClasses: Set<String> = [
        "IllegalArgumentException", "HadoopIllegalArgumentException", "InvalidPathException", "UnsupportedOperationException",
        "NumberFormatException",
    ]

    /// Java runtime exceptions other than the argument ones: server bugs.
    static let internalClasses: Set<String> = ["RuntimeException", "NullPointerException", "IllegalStateException"]

    static func status(for exceptionClass: String) -> HTTPResponse.Status {
        if badRequestClasses.contains(exceptionClass) { return .badRequest }
        if exceptionClass == "SecurityException" { return .unauthorized }
        if exceptionClass == "FileNotFoundException" { return .notFound }
        if internalClasses.contains(exceptionClass) { return .internalServerError }
        // Every other exception a Strata service names is an IOException in HDFS (among them
        // AccessControlException and FileAlreadyExistsException): 403.
        return .forbidden
    }

    /// The exception for any error: a `RemoteException` as it is, anything else as an internal
    /// error (500), with its description as the message.
    static func remoteException(for error: any Error) -> RemoteException {
        if let remote = error as? RemoteException { return remote }
        return RemoteException("RuntimeException", "\(error)")
    }

    static func body(_ exception: RemoteException) -> String {
        let javaClassName =
            switch exception.exceptionClass {
            case "RuntimeException": "java.lang.RuntimeException"
            case "NumberFormatException": "java.lang.NumberFormatException"
            default: exception.javaClassName
            }
        return JSONValue.object([
            (
                "RemoteException",
                .object([
                    ("exception", .string(exception.exceptionClass)),
                    ("javaClassName", .string(javaClassName)),
                    ("message", .string(exception.message)),
                ])
            )
        ]).encoded()
    }
}
