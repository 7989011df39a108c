import Foundation
import NIOHTTP1
import StrataClient
import StrataTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("WebHDFS errors")
struct WebHDFSErrorTests {
    @Test("Bad requests get the spec's status and RemoteException, and the server keeps serving")
    func errorResponses() async throws {
        try await withCluster { cluster in
            try await withWebClient(cluster) { web in
                _ = try await web.twoStep(.PUT, "/webhdfs/v1/e/f?op=CREATE", body: Array("hello".utf8))
                _ = try await web.send(.PUT, "/webhdfs/v1/private?op=MKDIRS&permission=700")
                let cases: [(String, String, Int, String)] = [
                    ("GET", "/webhdfs/v1/missing?op=GETFILESTATUS", 404, "FileNotFoundException"),
                    ("GET", "/webhdfs/v1/missing?op=LISTSTATUS", 404, "FileNotFoundException"),
                    ("GET", "/webhdfs/v1/missing?op=OPEN", 404, "FileNotFoundException"),
                    ("GET", "/webhdfs/v1/e/f?op=NOSUCHOP", 400, "IllegalArgumentException"),
                    ("GET", "/webhdfs/v1/e/f", 400, "IllegalArgumentException"),
                    ("GET", "/webhdfs/v1/e/f?op=MKDIRS", 400, "IllegalArgumentException"),
                    ("PUT", "/webhdfs/v1/e/f?op=OPEN", 400, "IllegalArgumentException"),
                    ("GET", "/webhdfs/v1/e/f?op=GETACLSTATUS", 400, "UnsupportedOperationException"),
                    ("GET", "/webhdfs/v1/e/f?op=OPEN&offset=-1", 400, "IllegalArgumentException"),
                    ("GET", "/webhdfs/v1/e/f?op=OPEN&length=abc", 400, "IllegalArgumentException"),
                    ("PUT", "/webhdfs/v1/e/g?op=CREATE&permission=888", 400, "IllegalArgumentException"),
                    ("PUT", "/webhdfs/v1/e/g?op=MKDIRS&permission=77777", 400, "IllegalArgumentException"),
                    ("PUT", "/webhdfs/v1/e/g?op=CREATE&overwrite=maybe", 400, "IllegalArgumentException"),
                    ("PUT", "/webhdfs/v1/e/g?op=CREATE&replication=0", 400, "IllegalArgumentException"),
                    ("GET", "/webhdfs/v1/e/../f?op=GETFILESTATUS", 400, "InvalidPathException"),
                    ("GET", "/webhdfs/v1/e//f?op=GETFILESTATUS", 400, "InvalidPathException"),
                    ("PUT", "/webhdfs/v1/e/f?op=RENAME&destination=relative/x", 400, "IllegalArgumentException"),
                    ("PUT", "/webhdfs/v1/e/f?op=RENAME", 400, "IllegalArgumentException"),
                    ("POST", "/webhdfs/v1/e/f?op=TRUNCATE&newlength=-5", 400, "IllegalArgumentException"),
                    ("PUT", "/webhdfs/v1/e/f?op=SETOWNER", 400, "IllegalArgumentException"),
                    ("GET", "/webhdfs/v1/private?op=LISTSTATUS&user.name=alice", 403, "AccessControlException"),
                    ("PUT", "/webhdfs/v1/private/x?op=MKDIRS&user.name=alice", 403, "AccessControlException"),
                    ("PUT", "/webhdfs/v1/e/f?op=SETOWNER&owner=alice&user.name=alice", 403, "AccessControlException"),
                    ("GET", "/webhdfs/v1/e/f?op=GETFILESTATUS&user.name=alice&doas=strata", 403, "AccessControlException"),
                    ("PUT", "/webhdfs/v1/e/f?op=MKDIRS", 403, "FileAlreadyExistsException"),
                    ("GET", "/elsewhere", 404, "FileNotFoundException"),
                ]
                for (method, url, status, exception) in cases {
                    let reply = try await web.send(.init(rawValue: method), url)
                    #expect(reply.status == status, "\(method) \(url): \(reply.status) \(reply.text)")
                    #expect(reply.exception == exception, "\(method) \(url): \(reply.text)")
                    let remote = reply.json["RemoteException"] as? [String: Any]
                    #expect(remote?["javaClassName"] is String && remote?["message"] is String, "\(url): \(reply.text)")
                }

                // A malformed percent-encoding, sent as is.
                let malformed = try await rawExchange(
                    port: cluster.nameNodeHTTPPort,
                    request: Array("GET /webhdfs/v1/e/%zz?op=GETFILESTATUS&user.name=strata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
                #expect(malformed.hasPrefix("HTTP/1.1 400") && malformed.contains("InvalidPathException"), "\(malformed)")

                // An existing file without overwrite: the data node's create says so.
                let exists = try await web.twoStep(.PUT, "/webhdfs/v1/e/f?op=CREATE", body: Array("again".utf8))
                #expect(exists.status == 403 && exists.exception == "FileAlreadyExistsException")
                // Reading past the end, on the data node.
                let pastEnd = try await web.twoStep(.GET, "/webhdfs/v1/e/f?op=OPEN&offset=10")
                #expect(pastEnd.status == 403 && pastEnd.exception == "EOFException")
                // A data node asked for a name node operation.
                let onDataNode = try await web.send(.GET, "http://127.0.0.1:\(cluster.dataNodeHTTP[0].port)/webhdfs/v1/e/f?op=GETFILESTATUS")
                #expect(onDataNode.status == 400 && onDataNode.exception == "UnsupportedOperationException")

                // Still serving, and the file is unharmed.
                #expect(try await web.twoStep(.GET, "/webhdfs/v1/e/f?op=OPEN").text == "hello")
            }
        }
    }

    @Test("A body longer than its Content-Length is cut at the declared length; the rest is a bad request")
    func bodyLongerThanDeclared() async throws {
        try await withCluster { cluster in
            try await withWebClient(cluster) { web in
                let step = try await web.send(.PUT, "/webhdfs/v1/x?op=CREATE&user.name=strata&noredirect=true")
                let locationText = try #require(step.json["Location"] as? String)
                let location = try #require(URLComponents(string: locationText))
                let target = location.path + "?" + (location.percentEncodedQuery ?? "")
                let request = "PUT \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhelloEXTRA-BYTES-NOT-HTTP\r\n\r\n"
                let answer = try await rawExchange(port: location.port ?? 0, request: Array(request.utf8))
                #expect(answer.hasPrefix("HTTP/1.1 201"), "\(answer)")
                #expect(answer.contains("HTTP/1.1 400"), "\(answer)")
                #expect(try await web.twoStep(.GET, "/webhdfs/v1/x?op=OPEN").text == "hello")
                // Both servers still answer.
                #expect(try await web.send(.GET, "/webhdfs/v1/?op=GETFILESTATUS").status == 200)
                #expect(try await web.send(.GET, "http://127.0.0.1:\(location.port ?? 0)/metrics").status == 200)
            }
        }
    }

    @Test("A body shorter than its Content-Length leaves no file behind")
    func bodyShorterThanDeclared() async throws {
        try await withCluster { cluster in
            try await withWebClient(cluster) { web in
                let step = try await web.send(.PUT, "/webhdfs/v1/short?op=CREATE&user.name=strata&noredirect=true")
                let locationText = try #require(step.json["Location"] as? String)
                let location = try #require(URLComponents(string: locationText))
                let target = location.path + "?" + (location.percentEncodedQuery ?? "")
                let request = "PUT \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nonly-this"
                _ = try await rawExchange(port: location.port ?? 0, request: Array(request.utf8), closeWriteAfterSend: true)
                var gone = false
                for _ in 0..<100 where !gone {
                    gone = try await web.send(.GET, "/webhdfs/v1/short?op=GETFILESTATUS").status == 404
                    if !gone { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(gone)
            }
        }
    }
}

@Suite("WebHDFS uploads with Expect: 100-continue")
struct WebHDFSContinueTests {
    /// curl (for bodies over a megabyte) and Java clients send `Expect: 100-continue` and hold the
    /// body back until the server answers `100 Continue`, or for a second. The data node answers
    /// at once; the name node, which only redirects, answers 307 without asking for the body.
    @Test func dataNodesAskForTheBody() async throws {
        try await withCluster { cluster in
            try await withWebClient(cluster) { web in
                let nameNodeAnswer = try await expectContinueExchange(
                    port: cluster.nameNodeHTTPPort, target: "/webhdfs/v1/continued?op=CREATE&user.name=strata", body: [])
                #expect(nameNodeAnswer.interim.hasPrefix("HTTP/1.1 307"), "\(nameNodeAnswer.interim)")
                let step = try await web.send(.PUT, "/webhdfs/v1/continued?op=CREATE&user.name=strata&noredirect=true")
                let locationText = try #require(step.json["Location"] as? String)
                let location = try #require(URLComponents(string: locationText))
                let body = Array("sent after 100 Continue\n".utf8)
                let answer = try await expectContinueExchange(
                    port: location.port ?? 0, target: location.path + "?" + (location.percentEncodedQuery ?? ""), body: body)
                #expect(answer.interim.hasPrefix("HTTP/1.1 100 Continue"), "\(answer.interim)")
                #expect(answer.final.contains("HTTP/1.1 201"), "\(answer.final)")
                #expect(try await web.twoStep(.GET, "/webhdfs/v1/continued?op=OPEN").body == body)
            }
        }
    }
}

/// Sends a PUT's headers with `Expect: 100-continue`, reads what the server says within a second
/// (`interim`), then sends the body and reads the rest (`final`), on a thread of its own.
func expectContinueExchange(port: Int, target: String, body: [UInt8]) async throws -> (interim: String, final: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result {
                let descriptor = try connectedSocket(port: port)
                defer { close(descriptor) }
                let head = "PUT \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.count)\r\nExpect: 100-continue\r\n\r\n"
                _ = Array(head.utf8).withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
                // The body is held back until the server answers: a server that waits for it
                // never answers, whatever the wait. (Not one second, as curl waits: a busy
                // machine can take that long to answer at all.)
                var timeout = timeval(tv_sec: 30, tv_usec: 0)
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var buffer = [UInt8](repeating: 0, count: 65536)
                let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                let interim = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
                guard interim.hasPrefix("HTTP/1.1 100") else { return (interim, "") }
                _ = body.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
                timeout.tv_sec = 10
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let more = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                return (interim, more > 0 ? String(decoding: buffer[0..<more], as: UTF8.self) : "")
            })
        }
    }
}

func connectedSocket(port: Int) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.EIO) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(descriptor)
        throw POSIXError(.ECONNREFUSED)
    }
    return descriptor
}

/// Sends raw bytes on a new connection and reads until the server closes it (or 5 s pass), on a
/// thread of its own: blocking a thread of the concurrency pool could starve the servers.
func rawExchange(port: Int, request: [UInt8], closeWriteAfterSend: Bool = false) async throws -> String {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try blockingExchange(port: port, request: request, closeWriteAfterSend: closeWriteAfterSend) })
        }
    }
}

func blockingExchange(port: Int, request: [UInt8], closeWriteAfterSend: Bool) throws -> String {
    let descriptor = try connectedSocket(port: port)
    defer { close(descriptor) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
    if closeWriteAfterSend { shutdown(descriptor, Int32(SHUT_WR)) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        received += buffer[0..<count]
    }
    return String(decoding: received, as: UTF8.self)
}

@Suite("WebHDFS and writer leases")
struct WebHDFSLeaseTests {
    /// APPEND to a file whose writer went away: within the soft limit the file is still the
    /// writer's (AlreadyBeingCreatedException), past it the call starts the file's recovery and
    /// is told to try again (RecoveryInProgressException, 403 as an IOException), then succeeds.
    @Test func appendToAnAbandonedFile() async throws {
        let clock = ManualClock()
        try await withCluster({
            $0.leaseSoftLimitMs = 1_000
            $0.rawFrameSizeBytes = 4096
            $0.nameNodeClock = clock
        }) { cluster in
            var configuration = DFSClientConfiguration(user: "strata")
            configuration.nameNodePort = cluster.nameNodePort
            configuration.leaseRenewalSeconds = 0.2
            let writer = DFSClient(configuration: configuration, group: cluster.group)
            do {
                let stream = try await writer.create("/abandoned.log")
                try await stream.write(Array("first line\n".utf8))
                try await stream.hflush()
            }
            await writer.close()
            try await withWebClient(cluster) { web in
                let early = try await web.twoStep(.POST, "/webhdfs/v1/abandoned.log?op=APPEND", body: Array("x".utf8))
                #expect(early.status == 403 && early.exception == "AlreadyBeingCreatedException", "\(early.status) \(early.text)")
                // Past the soft limit on the name node's clock.
                clock.advance(milliseconds: 1_001)
                let recovering = try await web.twoStep(.POST, "/webhdfs/v1/abandoned.log?op=APPEND", body: Array("x".utf8))
                #expect(recovering.status == 403 && recovering.exception == "RecoveryInProgressException", "\(recovering.status) \(recovering.text)")
                let remote = recovering.json["RemoteException"] as? [String: Any]
                #expect(remote?["javaClassName"] as? String == "org.apache.hadoop.hdfs.protocol.RecoveryInProgressException")
                var appended = false
                let deadline = Date().addingTimeInterval(60)
                while !appended && Date() < deadline {
                    let reply = try await web.twoStep(.POST, "/webhdfs/v1/abandoned.log?op=APPEND", body: Array("second line\n".utf8))
                    appended = reply.status == 200
                    if !appended { try await Task.sleep(for: .milliseconds(200)) }
                }
                #expect(appended)
                let content = try await web.twoStep(.GET, "/webhdfs/v1/abandoned.log?op=OPEN")
                #expect(content.text == "first line\nsecond line\n", "\(content.text)")
            }
        }
    }
}

