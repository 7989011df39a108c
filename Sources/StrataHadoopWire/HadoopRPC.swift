import Foundation
import NIOCore
import StrataWire
import SwiftProtobuf

/// Constants of Hadoop's RPC protocol (hadoop-common `org.apache.hadoop.ipc.Server` and
/// `RpcConstants`) as Strata serves it, and its bounds.
public enum HadoopRPC {
    /// The first 4 bytes of a Hadoop RPC connection.
    public static let magic: [UInt8] = Array("hrpc".utf8)
    /// The connection header's version byte Hadoop 2 and 3 clients send.
    public static let version: UInt8 = 9
    /// Auth protocol byte of the connection header: none (SIMPLE authentication, no SASL).
    public static let authProtocolNone: UInt8 = 0
    /// Auth protocol byte for SASL (Kerberos, tokens), as the signed byte -33.
    public static let authProtocolSASL: UInt8 = 0xDF
    /// Bytes of the connection header: magic, version, service class, auth protocol.
    public static let connectionHeaderBytes = 7

    /// Call ids with a meaning of their own (`RpcConstants`).
    public static let connectionContextCallId: Int32 = -3
    public static let pingCallId: Int32 = -4
    public static let saslCallId: Int32 = -33
    /// The call id of a fatal answer about the connection rather than one call.
    public static let connectionFailureCallId: Int32 = -1

    /// The protocol the name node serves to clients.
    public static let clientProtocolName = "org.apache.hadoop.hdfs.protocol.ClientProtocol"

    /// Largest request packet accepted (Hadoop's `ipc.maximum.data.length` is 128 MiB; the
    /// namespace calls served here are a few KiB).
    public static let maximumPacketBytes = 64 * 1024 * 1024
    /// Most calls of one connection being answered at a time; more wait in the socket.
    public static let maximumInFlightCallsPerConnection = 1024
}

/// One call as the Hadoop RPC server receives it.
public struct HadoopRPCCall: Sendable {
    public var callId: Int32
    public var methodName: String
    /// `declaringClassProtocolName`, e.g. `org.apache.hadoop.hdfs.protocol.ClientProtocol`.
    public var protocolName: String
    /// The user of the connection (`IpcConnectionContextProto.userInfo.effectiveUser`).
    public var user: String
    public var clientId: Data
    /// The request message's bytes.
    public var body: ByteBuffer
    public var remoteAddress: SocketAddress?

    public init(
        callId: Int32, methodName: String, protocolName: String, user: String, clientId: Data = Data(), body: ByteBuffer,
        remoteAddress: SocketAddress? = nil
    ) {
        self.callId = callId
        self.methodName = methodName
        self.protocolName = protocolName
        self.user = user
        self.clientId = clientId
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// The request message; a malformed one is an `RpcServerException` for this call.
    public func request<Request: SwiftProtobuf.Message>(_ type: Request.Type = Request.self) throws(RemoteException) -> Request {
        do {
            return try Request(bufferBytes: body)
        } catch {
            throw RemoteException(.rpcServer, "malformed \(Request.protoMessageName) for \(methodName): \(error)")
        }
    }
}

/// Answers a call with its response message, or throws: a `RemoteException` reaches the client
/// as its Java exception class, anything else as a `java.io.IOException`.
public typealias HadoopRPCHandler = @Sendable (HadoopRPCCall) async throws -> any SwiftProtobuf.Message

/// Answers a call at once on the event loop that received it, or returns nil to have it run as a
/// task by the `HadoopRPCHandler`. For calls that only take a short lock.
public typealias HadoopRPCInlineHandler = @Sendable (HadoopRPCCall) throws -> (any SwiftProtobuf.Message)?

/// An error that ends a Hadoop RPC connection: answered with a FATAL response, then closed.
public struct HadoopRPCFatalError: Error, CustomStringConvertible, Sendable {
    public var javaClassName: String
    public var message: String
    public var detail: Hadoop_Common_RpcResponseHeaderProto.RpcErrorCodeProto

    public init(_ detail: Hadoop_Common_RpcResponseHeaderProto.RpcErrorCodeProto, _ message: String,
                javaClassName: String = "org.apache.hadoop.ipc.RpcServerException") {
        self.detail = detail
        self.message = message
        self.javaClassName = javaClassName
    }

    public var description: String { "\(javaClassName): \(message)" }
}

extension RemoteException {
    /// The Java class a Hadoop client sees: the class's Java name, or a fully qualified name
    /// Strata does not list (`.other("org.apache.hadoop.ipc.RpcNoSuchProtocolException")`) as it is.
    public var hadoopJavaClassName: String {
        if case .other(let name) = exceptionClass, name.contains(".") { return name }
        return javaClassName
    }

    /// The `errorDetail` of an ERROR response for this exception.
    public var hadoopErrorDetail: Hadoop_Common_RpcResponseHeaderProto.RpcErrorCodeProto {
        switch exceptionClass {
        case .rpcNoSuchMethod: .errorNoSuchMethod
        case .rpcServer: .errorRpcServer
        case .other("org.apache.hadoop.ipc.RpcNoSuchProtocolException"): .errorNoSuchProtocol
        default: .errorApplication
        }
    }
}

extension SwiftProtobuf.Message {
    /// Decodes a message from the readable bytes of `buffer`, tolerating missing required
    /// fields (proto2) as Hadoop's own server does for fields it gives defaults.
    init(bufferBytes buffer: ByteBuffer) throws {
        self = try buffer.withUnsafeReadableBytes { bytes in
            try Self(serializedBytes: Array(bytes), partial: true)
        }
    }
}

/// Protobuf varints, for the varint-delimited messages of a Hadoop RPC packet.
enum Varint {
    /// Reads one varint from `buffer`; nil (and nothing consumed) if it is cut off or longer
    /// than 10 bytes.
    static func read(from buffer: inout ByteBuffer) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var index = buffer.readerIndex
        while shift < 64 {
            guard let byte = buffer.getInteger(at: index, as: UInt8.self) else { return nil }
            value |= UInt64(byte & 0x7F) << shift
            index += 1
            if byte & 0x80 == 0 {
                buffer.moveReaderIndex(to: index)
                return value
            }
            shift += 7
        }
        return nil
    }

    static func write(_ value: UInt64, to buffer: inout ByteBuffer) {
        var value = value
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(value))
    }

    /// The next varint-delimited message's bytes, or nil if the buffer does not hold them all.
    static func readDelimited(from buffer: inout ByteBuffer) -> ByteBuffer? {
        let start = buffer.readerIndex
        guard let length = read(from: &buffer), length <= UInt64(buffer.readableBytes),
            let slice = buffer.readSlice(length: Int(length))
        else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        return slice
    }
}
