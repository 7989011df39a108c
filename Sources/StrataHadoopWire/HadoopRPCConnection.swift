import Foundation
import NIOCore

/// The server side of one Hadoop RPC connection as a state machine: the connection header, the
/// connection context (who the user is), then calls. No I/O: the handler performs the actions.
public struct HadoopRPCConnection: Sendable {
    enum State: Sendable {
        case awaitingConnectionHeader
        case awaitingContext
        case serving(user: String)
        case closed
    }

    public enum Action: Sendable {
        /// Nothing to answer (the header or context accepted, a ping).
        case none
        case call(HadoopRPCCall, retryCount: Int32)
        /// Answer FATAL with this error (for `callId`), then close.
        case fatal(HadoopRPCFatalError, callId: Int32)
        /// The client asked to close the connection.
        case close
    }

    private var state = State.awaitingConnectionHeader
    private let remoteAddress: SocketAddress?

    public init(remoteAddress: SocketAddress? = nil) {
        self.remoteAddress = remoteAddress
    }

    /// The connection's user once its context arrived.
    public var user: String? {
        if case .serving(let user) = state { return user }
        return nil
    }

    public mutating func on(_ inbound: HadoopRPCInbound) -> Action {
        switch inbound {
        case .connectionHeader(let version, _, let authProtocol): onConnectionHeader(version: version, authProtocol: authProtocol)
        case .packet(let packet): onPacket(packet)
        }
    }

    mutating func onConnectionHeader(version: UInt8, authProtocol: UInt8) -> Action {
        guard case .awaitingConnectionHeader = state else {
            return fail(HadoopRPCFatalError(.fatalInvalidRpcHeader, "a second connection header"))
        }
        guard version == HadoopRPC.version else {
            return fail(HadoopRPCFatalError(
                .fatalVersionMismatch, "Server IPC version \(HadoopRPC.version) cannot communicate with client version \(version)",
                javaClassName: "org.apache.hadoop.ipc.RPC$VersionMismatch"))
        }
        guard authProtocol == HadoopRPC.authProtocolNone else {
            let name = authProtocol == HadoopRPC.authProtocolSASL ? "SASL" : "auth protocol \(Int8(bitPattern: authProtocol))"
            return fail(HadoopRPCFatalError(
                .fatalUnauthorized, "\(name) is not served: this name node accepts SIMPLE authentication only (auth protocol 0)",
                javaClassName: "org.apache.hadoop.security.AccessControlException"))
        }
        state = .awaitingContext
        return .none
    }

    mutating func onPacket(_ packet: ByteBuffer) -> Action {
        var packet = packet
        switch state {
        case .awaitingConnectionHeader, .closed:
            return fail(HadoopRPCFatalError(.fatalInvalidRpcHeader, "a packet before the connection header"))
        case .awaitingContext, .serving:
            break
        }
        guard let headerBytes = Varint.readDelimited(from: &packet),
            let header = try? Hadoop_Common_RpcRequestHeaderProto(bufferBytes: headerBytes)
        else {
            return fail(HadoopRPCFatalError(.fatalInvalidRpcHeader, "malformed RpcRequestHeaderProto"))
        }
        if header.rpcOp == .rpcCloseConnection {
            state = .closed
            return .close
        }
        if header.callID == HadoopRPC.pingCallId { return .none }
        guard header.rpcKind == .rpcProtocolBuffer else {
            return fail(HadoopRPCFatalError(
                .fatalUnsupportedSerialization, "unsupported RPC kind \(header.rpcKind): only RPC_PROTOCOL_BUFFER is served"),
                callId: header.callID)
        }
        switch header.callID {
        case HadoopRPC.connectionContextCallId:
            guard case .awaitingContext = state else {
                return fail(HadoopRPCFatalError(.fatalInvalidRpcHeader, "a second connection context"), callId: header.callID)
            }
            guard let contextBytes = Varint.readDelimited(from: &packet),
                let context = try? Hadoop_Common_IpcConnectionContextProto(bufferBytes: contextBytes)
            else {
                return fail(HadoopRPCFatalError(.fatalDeserializingRequest, "malformed IpcConnectionContextProto"), callId: header.callID)
            }
            let user = context.userInfo.effectiveUser
            guard !user.isEmpty else {
                return fail(HadoopRPCFatalError(
                    .fatalUnauthorized, "the connection context names no user (userInfo.effectiveUser)",
                    javaClassName: "org.apache.hadoop.security.AccessControlException"), callId: header.callID)
            }
            state = .serving(user: user)
            return .none
        case HadoopRPC.saslCallId:
            return fail(HadoopRPCFatalError(
                .fatalUnauthorized, "SASL is not served: this name node accepts SIMPLE authentication only",
                javaClassName: "org.apache.hadoop.security.AccessControlException"), callId: header.callID)
        case ..<0:
            return fail(HadoopRPCFatalError(.fatalInvalidRpcHeader, "unknown call id \(header.callID)"), callId: header.callID)
        default:
            break
        }
        guard case .serving(let user) = state else {
            return fail(HadoopRPCFatalError(.fatalInvalidRpcHeader, "a call before the connection context"), callId: header.callID)
        }
        guard let requestHeaderBytes = Varint.readDelimited(from: &packet),
            let requestHeader = try? Hadoop_Common_RequestHeaderProto(bufferBytes: requestHeaderBytes)
        else {
            return fail(HadoopRPCFatalError(.fatalDeserializingRequest, "malformed RequestHeaderProto"), callId: header.callID)
        }
        // A request message is varint-delimited; an empty one may be left out altogether.
        let body = packet.readableBytes == 0 ? ByteBuffer() : Varint.readDelimited(from: &packet)
        guard let body else {
            return fail(HadoopRPCFatalError(
                .fatalDeserializingRequest, "request of \(requestHeader.methodName) cut off"), callId: header.callID)
        }
        let call = HadoopRPCCall(
            callId: header.callID, methodName: requestHeader.methodName, protocolName: requestHeader.declaringClassProtocolName,
            user: user, clientId: header.clientID, body: body, remoteAddress: remoteAddress)
        return .call(call, retryCount: header.retryCount)
    }

    private mutating func fail(_ error: HadoopRPCFatalError, callId: Int32 = HadoopRPC.connectionFailureCallId) -> Action {
        state = .closed
        return .fatal(error, callId: callId)
    }
}
