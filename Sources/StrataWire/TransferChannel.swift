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

/// Accepts transfer connections and runs `handler` for each, concurrently, until closed.
public final class TransferServer: Sendable {
    public let port: Int
    private let channel: any Channel
    private let acceptLoop: Task<Void, Never>

    public static func start(
        host: String, port: Int, group: any EventLoopGroup, logger: Logger,
        handler: @escaping @Sendable (TransferChannel) async -> Void
    ) async throws -> TransferServer {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allocator, value: TransferBuffers.allocator)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WireFrameDecoder(expecting: .transfer)))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WireFrameEncoder()))
                    return try TransferChannel(wrappingChannelSynchronously: channel)
                }
            }
        let boundPort = server.channel.localAddress?.port ?? port
        let rawChannel = server.channel
        let loop = Task {
            do {
                try await withThrowingDiscardingTaskGroup { group in
                    try await server.executeThenClose { connections in
                        for try await connection in connections {
                            group.addTask { await handler(connection) }
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
