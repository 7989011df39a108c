import Foundation
import Logging
import NIOCore
import StrataWire
import SwiftProtobuf

/// Hadoop RPC response packets: a big-endian u32 length, the varint-delimited
/// RpcResponseHeaderProto, and on success the varint-delimited response message.
public enum HadoopRPCResponse {
    public static func success(
        callId: Int32, clientId: Data, retryCount: Int32, message: any SwiftProtobuf.Message
    ) throws -> ByteBuffer {
        var header = baseHeader(callId: callId, clientId: clientId, retryCount: retryCount)
        header.status = .success
        return try packet(header: header, message: message)
    }

    public static func error(
        callId: Int32, clientId: Data, retryCount: Int32, javaClassName: String, message: String,
        detail: Hadoop_Common_RpcResponseHeaderProto.RpcErrorCodeProto
    ) -> ByteBuffer {
        var header = baseHeader(callId: callId, clientId: clientId, retryCount: retryCount)
        header.status = .error
        header.exceptionClassName = javaClassName
        header.errorMsg = message
        header.errorDetail = detail
        // A header with its required fields set always serializes.
        return try! packet(header: header, message: nil)
    }

    public static func fatal(callId: Int32, _ error: HadoopRPCFatalError) -> ByteBuffer {
        var header = baseHeader(callId: callId, clientId: Data(), retryCount: -1)
        header.status = .fatal
        header.exceptionClassName = error.javaClassName
        header.errorMsg = error.message
        header.errorDetail = error.detail
        return try! packet(header: header, message: nil)
    }

    /// The SUCCESS packet for `message`, or an ERROR one if it cannot be encoded.
    static func success(_ call: HadoopRPCCall, retryCount: Int32, _ message: any SwiftProtobuf.Message, logger: Logger) -> ByteBuffer {
        do {
            return try HadoopRPCResponse.success(callId: call.callId, clientId: call.clientId, retryCount: retryCount, message: message)
        } catch {
            logger.error("cannot encode the answer to \(call.methodName): \(error)")
            return HadoopRPCResponse.error(
                callId: call.callId, clientId: call.clientId, retryCount: retryCount,
                javaClassName: RemoteExceptionClass.rpcServer.javaClassName, message: "cannot encode the answer: \(error)",
                detail: .errorSerializingResponse)
        }
    }

    /// The ERROR packet for what a handler threw: a `RemoteException` as its Java class, a
    /// malformed request as an `RpcServerException`, anything else as an `IOException`.
    static func failure(_ call: HadoopRPCCall, retryCount: Int32, _ error: any Error) -> ByteBuffer {
        let remote: RemoteException =
            switch error {
            case let error as RemoteException: error
            case let error as WireProtocolError: RemoteException(.rpcServer, error.message)
            default: RemoteException(.io, "\(error)")
            }
        return HadoopRPCResponse.error(
            callId: call.callId, clientId: call.clientId, retryCount: retryCount, javaClassName: remote.hadoopJavaClassName,
            message: remote.message, detail: remote.hadoopErrorDetail)
    }

    static func baseHeader(callId: Int32, clientId: Data, retryCount: Int32) -> Hadoop_Common_RpcResponseHeaderProto {
        var header = Hadoop_Common_RpcResponseHeaderProto()
        header.callID = UInt32(bitPattern: callId)
        header.serverIpcVersionNum = UInt32(HadoopRPC.version)
        if !clientId.isEmpty { header.clientID = clientId }
        header.retryCount = retryCount
        return header
    }

    static func packet(header: Hadoop_Common_RpcResponseHeaderProto, message: (any SwiftProtobuf.Message)?) throws -> ByteBuffer {
        let headerBytes: [UInt8] = try header.serializedBytes()
        let messageBytes: [UInt8]? = try message?.serializedBytes()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(16 + headerBytes.count + (messageBytes?.count ?? 0))
        buffer.writeInteger(UInt32(0))  // the length, filled in below
        Varint.write(UInt64(headerBytes.count), to: &buffer)
        buffer.writeBytes(headerBytes)
        if let messageBytes {
            Varint.write(UInt64(messageBytes.count), to: &buffer)
            buffer.writeBytes(messageBytes)
        }
        buffer.setInteger(UInt32(buffer.readableBytes - 4), at: buffer.readerIndex)
        return buffer
    }
}
