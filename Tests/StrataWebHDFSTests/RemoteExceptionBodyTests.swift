@testable import StrataWebHDFS
import StrataWire
import Testing

/// WebHDFS error bodies carry each class's short and Java names exactly as HDFS clients parse them.
@Suite struct RemoteExceptionBodyTests {
    @Test func bodiesAndStatuses() {
        let cases: [(RemoteException, String, Int)] = [
            (
                RemoteException(.fileNotFound, "File does not exist: /a"),
                #"{"RemoteException":{"exception":"FileNotFoundException","javaClassName":"java.io.FileNotFoundException","message":"File does not exist: /a"}}"#,
                404
            ),
            (
                RemoteException(.recoveryInProgress, "recovering"),
                #"{"RemoteException":{"exception":"RecoveryInProgressException","javaClassName":"org.apache.hadoop.hdfs.protocol.RecoveryInProgressException","message":"recovering"}}"#,
                403
            ),
            (
                RemoteException(.runtime, "bug"),
                #"{"RemoteException":{"exception":"RuntimeException","javaClassName":"java.lang.RuntimeException","message":"bug"}}"#,
                500
            ),
            (
                RemoteException(.numberFormat, "x"),
                #"{"RemoteException":{"exception":"NumberFormatException","javaClassName":"java.lang.NumberFormatException","message":"x"}}"#,
                400
            ),
            (
                RemoteException(.security, "no"),
                #"{"RemoteException":{"exception":"SecurityException","javaClassName":"java.lang.SecurityException","message":"no"}}"#,
                401
            ),
            (
                RemoteException(RemoteExceptionClass(rawValue: "QuotaExceededException"), "full"),
                #"{"RemoteException":{"exception":"QuotaExceededException","javaClassName":"java.io.IOException","message":"full"}}"#,
                403
            ),
        ]
        for (exception, body, status) in cases {
            #expect(WebHDFSError.body(exception) == body)
            #expect(Int(WebHDFSError.status(for: exception.exceptionClass).code) == status, "\(exception)")
        }
        #expect(WebHDFSError.remoteException(for: CancellationError()).exceptionClass == .runtime)
    }
}
