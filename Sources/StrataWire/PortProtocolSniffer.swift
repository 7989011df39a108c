import Logging
import NIOCore

/// A protocol served on a port it shares with others, recognised by the first 4 bytes a client
/// sends.
public struct SharedPortProtocol: Sendable {
    /// The first 4 bytes of a connection of this protocol (they stay in the stream: the
    /// protocol's own decoder reads them again).
    public var magic: [UInt8]
    /// Adds the protocol's handlers to the end of a connection's pipeline; called on the
    /// connection's event loop.
    public var configure: @Sendable (any Channel) throws -> Void

    public init(magic: [UInt8], configure: @escaping @Sendable (any Channel) throws -> Void) {
        precondition(magic.count == PortProtocolSniffer.magicBytes, "a shared-port magic is 4 bytes")
        self.magic = magic
        self.configure = configure
    }
}

/// Waits for a connection's first 4 bytes, hands the connection to the protocol they name, and
/// steps out of the pipeline, passing on what it read. Bytes of no known protocol close the
/// connection.
final class PortProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let magicBytes = 4

    private let protocols: [SharedPortProtocol]
    private let logger: Logger
    private var received: ByteBuffer?
    private var chosen = false

    init(protocols: [SharedPortProtocol], logger: Logger) {
        self.protocols = protocols
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if chosen {
            // Data that arrived while the handler was being removed.
            context.fireChannelRead(wrapInboundOut(bytes))
            return
        }
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        guard let magic = received!.getBytes(at: received!.readerIndex, length: Self.magicBytes) else { return }
        guard let chosenProtocol = protocols.first(where: { $0.magic == magic }) else {
            logger.debug("closing a connection from \(String(describing: context.remoteAddress)) that speaks no protocol of this port")
            context.close(promise: nil)
            return
        }
        do {
            try chosenProtocol.configure(context.channel)
        } catch {
            logger.warning("cannot set up a connection from \(String(describing: context.remoteAddress)): \(error)")
            context.close(promise: nil)
            return
        }
        chosen = true
        let buffered = received!
        received = nil
        context.fireChannelRead(wrapInboundOut(buffered))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if chosen { context.fireChannelReadComplete() }
    }
}
