import Foundation
import NIOCore
import SwiftProtobuf
import Testing

@testable import StrataHadoopWire

/// The connection state machine alone: packets in, actions out, no sockets.
struct HadoopRPCConnectionTests {
    static func delimited(_ message: some SwiftProtobuf.Message) -> [UInt8] {
        let bytes: [UInt8] = try! message.serializedBytes(partial: true)
        var buffer = ByteBuffer()
        Varint.write(UInt64(bytes.count), to: &buffer)
        return Array(buffer: buffer) + bytes
    }

    static func header(callId: Int32, kind: Hadoop_Common_RpcKindProto = .rpcProtocolBuffer) -> Hadoop_Common_RpcRequestHeaderProto {
        var header = Hadoop_Common_RpcRequestHeaderProto()
        header.rpcKind = kind
        header.rpcOp = .rpcFinalPacket
        header.callID = callId
        header.clientID = Data(repeating: 7, count: 16)
        return header
    }

    static func context(user: String) -> HadoopRPCInbound {
        var context = Hadoop_Common_IpcConnectionContextProto()
        context.userInfo.effectiveUser = user
        return .packet(ByteBuffer(bytes: delimited(header(callId: HadoopRPC.connectionContextCallId)) + delimited(context)))
    }

    static func call(_ id: Int32, method: String, body: [UInt8]) -> HadoopRPCInbound {
        var request = Hadoop_Common_RequestHeaderProto()
        request.methodName = method
        request.declaringClassProtocolName = HadoopRPC.clientProtocolName
        request.clientProtocolVersion = 1
        var length = ByteBuffer()
        Varint.write(UInt64(body.count), to: &length)
        return .packet(ByteBuffer(bytes: delimited(header(callId: id)) + delimited(request) + Array(buffer: length) + body))
    }

    static func fatalDetail(_ action: HadoopRPCConnection.Action) -> Hadoop_Common_RpcResponseHeaderProto.RpcErrorCodeProto? {
        if case .fatal(let error, _) = action { return error.detail }
        return nil
    }

    static func open(user: String = "alice") -> HadoopRPCConnection {
        var connection = HadoopRPCConnection()
        _ = connection.on(.connectionHeader(version: 9, serviceClass: 0, authProtocol: 0))
        _ = connection.on(context(user: user))
        return connection
    }

    @Test func theContextNamesTheUserOfEveryCall() {
        var connection = Self.open(user: "alice")
        #expect(connection.user == "alice")
        guard case .call(let call, _) = connection.on(Self.call(5, method: "getFileInfo", body: [0x0A, 0x01, 0x2F])) else {
            Issue.record("a call was expected")
            return
        }
        #expect(call.callId == 5)
        #expect(call.methodName == "getFileInfo")
        #expect(call.protocolName == HadoopRPC.clientProtocolName)
        #expect(call.user == "alice")
        #expect(call.clientId == Data(repeating: 7, count: 16))
        #expect(Array(buffer: call.body) == [0x0A, 0x01, 0x2F])
    }

    @Test func pingsAreIgnoredAndCloseCloses() {
        var connection = Self.open()
        let ping = HadoopRPCInbound.packet(ByteBuffer(bytes: Self.delimited(Self.header(callId: HadoopRPC.pingCallId))))
        guard case .none = connection.on(ping) else {
            Issue.record("a ping is answered with nothing")
            return
        }
        var close = Self.header(callId: 9)
        close.rpcOp = .rpcCloseConnection
        guard case .close = connection.on(.packet(ByteBuffer(bytes: Self.delimited(close)))) else {
            Issue.record("RPC_CLOSE_CONNECTION closes")
            return
        }
    }

    @Test func badHeadersAreFatal() {
        var wrongVersion = HadoopRPCConnection()
        #expect(Self.fatalDetail(wrongVersion.on(.connectionHeader(version: 7, serviceClass: 0, authProtocol: 0))) == .fatalVersionMismatch)
        var sasl = HadoopRPCConnection()
        #expect(Self.fatalDetail(sasl.on(.connectionHeader(version: 9, serviceClass: 0, authProtocol: HadoopRPC.authProtocolSASL)))
            == .fatalUnauthorized)

        var early = HadoopRPCConnection()
        _ = early.on(.connectionHeader(version: 9, serviceClass: 0, authProtocol: 0))
        #expect(Self.fatalDetail(early.on(Self.call(0, method: "getFileInfo", body: []))) == .fatalInvalidRpcHeader)

        var noUser = HadoopRPCConnection()
        _ = noUser.on(.connectionHeader(version: 9, serviceClass: 0, authProtocol: 0))
        #expect(Self.fatalDetail(noUser.on(Self.context(user: ""))) == .fatalUnauthorized)

        var writable = Self.open()
        let writableKind = HadoopRPCInbound.packet(ByteBuffer(bytes: Self.delimited(Self.header(callId: 1, kind: .rpcWritable))))
        #expect(Self.fatalDetail(writable.on(writableKind)) == .fatalUnsupportedSerialization)

        var garbage = Self.open()
        #expect(Self.fatalDetail(garbage.on(.packet(ByteBuffer(bytes: [0x05, 0xFF])))) == .fatalInvalidRpcHeader)

        var cutOff = Self.open()
        guard case .packet(var packet) = Self.call(3, method: "mkdirs", body: [1, 2, 3, 4]) else { return }
        packet = packet.getSlice(at: packet.readerIndex, length: packet.readableBytes - 2)!
        #expect(Self.fatalDetail(cutOff.on(.packet(packet))) == .fatalDeserializingRequest)
    }

    @Test func responsesAreLengthPrefixedDelimitedMessages() throws {
        var message = Hadoop_Hdfs_MkdirsResponseProto()
        message.result = true
        var packet = try HadoopRPCResponse.success(callId: 12, clientId: Data([1, 2]), retryCount: 0, message: message)
        let length = packet.readInteger(as: UInt32.self)
        #expect(length.map(Int.init) == packet.readableBytes)
        let headerBytes = try #require(Varint.readDelimited(from: &packet))
        let header = try Hadoop_Common_RpcResponseHeaderProto(serializedBytes: Array(buffer: headerBytes))
        #expect(header.callID == 12)
        #expect(header.status == .success)
        #expect(header.clientID == Data([1, 2]))
        let bodyBytes = try #require(Varint.readDelimited(from: &packet))
        let body = try Hadoop_Hdfs_MkdirsResponseProto(serializedBytes: Array(buffer: bodyBytes))
        #expect(body.result)
        #expect(packet.readableBytes == 0)

        var fatal = HadoopRPCResponse.fatal(callId: -1, HadoopRPCFatalError(.fatalInvalidRpcHeader, "bad"))
        _ = fatal.readInteger(as: UInt32.self)
        let fatalHeaderBytes = try #require(Varint.readDelimited(from: &fatal))
        let fatalHeader = try Hadoop_Common_RpcResponseHeaderProto(serializedBytes: Array(buffer: fatalHeaderBytes))
        #expect(fatalHeader.callID == UInt32.max)
        #expect(fatalHeader.status == .fatal)
        #expect(fatalHeader.exceptionClassName == "org.apache.hadoop.ipc.RpcServerException")
        #expect(fatal.readableBytes == 0)
    }
}
