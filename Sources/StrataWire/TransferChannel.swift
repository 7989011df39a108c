import Logging
import NIOCore
import NIOPosix
import StrataCore

/// A block transfer connection as async streams of wire frames.
public typealias TransferChannel = NIOAsyncChannel<WireFrame, WireFrame>

public enum Transfer {
    /// Connects to a data node's transfer port.
    public static func connect(host: String, port: Int, group: any EventLoopGroup) async throws -> TransferChannel {
        do {
            return try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.allocator, value: TransferBuffers.allocator)
                .connectTimeout(.seconds(10))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WireFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WireFrameEncoder(preamble: .transfer)))
                        return try TransferChannel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw RPCConnectionError(address: "\(host):\(port)", reason: "\(error)")
        }
    }

    /// A frame holding just a transfer header.
    public static func frame(_ header: Strata_Wire_TransferHeader, body: ByteBuffer = ByteBuffer()) throws -> WireFrame {
        WireFrame(header: try header.serializedBuffer(), body: body)
    }
}

/// Another protocol served on the transfer port beside Strata's (Hadoop's DataTransferProtocol):
/// recognised by its first bytes, `configure` sets up a connection's pipeline (on its event
/// loop) and returns what serves it, which the server runs as one of its connection tasks.
public struct SharedTransferProtocol: Sendable {
    public var magic: [UInt8]
    public var configure: @Sendable (any Channel) throws -> @Sendable () async -> Void

    public init(magic: [UInt8], configure: @escaping @Sendable (any Channel) throws -> @Sendable () async -> Void) {
        self.magic = magic
        self.configure = configure
    }
}

/// Accepts transfer connections and runs `handler` for each, concurrently, until closed. With
/// `sharedProtocols`, a connection's first bytes say whether it speaks Strata's protocol (`STDT`)
/// or one of them; a connection of none is closed.
public final class TransferServer: Sendable {
    public let port: Int
    private let channel: any Channel
    private let acceptLoop: Task<Void, Never>

    /// What serves one accepted connection.
    typealias Serve = @Sendable () async -> Void

    /// How long a connection on a shared port may take to send the bytes naming its protocol.
    static let firstBytesTimeoutSeconds: Int64 = 30

    public static func start(
        host: String, port: Int, group: any EventLoopGroup, logger: Logger, sharedProtocols: [SharedTransferProtocol] = [],
        handler: @escaping @Sendable (TransferChannel) async -> Void
    ) async throws -> TransferServer {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allocator, value: TransferBuffers.allocator)
            .bind(host: host, port: port) { channel -> EventLoopFuture<Serve> in
                let strata: @Sendable (any Channel) throws -> Serve = { channel in
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WireFrameDecoder(expecting: .transfer)))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WireFrameEncoder()))
                    let connection = try TransferChannel(wrappingChannelSynchronously: channel)
                    return { await handler(connection) }
                }
                if sharedProtocols.isEmpty {
                    return channel.eventLoop.makeCompletedFuture { try strata(channel) }
                }
                // The connection is served once its first bytes name its protocol; one that
                // names none (or closes first) is dropped. (The initializer cannot wait for those
                // bytes itself: an accepted channel starts reading only once it has returned.)
                let chosen = channel.eventLoop.makePromise(of: Serve.self)
                let protocols = [SharedTransferProtocol(magic: WirePreamble.transfer.magic, configure: strata)] + sharedProtocols
                let sniffed = protocols.map { shared in
                    SharedPortProtocol(magic: shared.magic) { channel in chosen.succeed(try shared.configure(channel)) }
                }
                // A connection that says nothing is closed after a while rather than held open.
                let silence = channel.eventLoop.scheduleTask(in: .seconds(Self.firstBytesTimeoutSeconds)) { channel.close(promise: nil) }
                chosen.futureResult.whenComplete { _ in silence.cancel() }
                do {
                    try channel.pipeline.syncOperations.addHandler(
                        PortProtocolSniffer(protocols: sniffed, logger: logger) {
                            chosen.fail(WireProtocolError("connection closed before it named a protocol of this port"))
                        })
                } catch {
                    chosen.fail(error)
                }
                return channel.eventLoop.makeSucceededFuture({
                    let serve = await withTaskCancellationHandler {
                        try? await chosen.futureResult.get()
                    } onCancel: {
                        channel.close(promise: nil)
                    }
                    await serve?()
                })
            }
        let boundPort = server.channel.localAddress?.port ?? port
        let rawChannel = server.channel
        let loop = Task {
            do {
                try await withThrowingDiscardingTaskGroup { group in
                    try await server.executeThenClose { connections in
                        for try await serve in connections {
                            group.addTask { await serve() }
                        }
                    }
                }
            } catch {
                logger.debug("transfer server stopped: \(error)")
            }
        }
        return TransferServer(port: boundPort, channel: rawChannel, acceptLoop: loop)
    }

    private init(port: Int, channel: any Channel, acceptLoop: Task<Void, Never>) {
        self.port = port
        self.channel = channel
        self.acceptLoop = acceptLoop
    }

    /// Stops accepting, cancels the connections being served and waits for them to end (at
    /// most 5 s): a handler still opening a connection elsewhere must not outlive its event loops.
    public func close() async {
        try? await channel.close()
        acceptLoop.cancel()
        let loop = acceptLoop
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await loop.value }
            group.addTask { try? await Task.sleep(for: .seconds(5)) }
            await group.next()
            group.cancelAll()
        }
    }
}
