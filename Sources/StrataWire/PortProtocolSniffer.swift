import Logging
import NIOCore

/// A protocol served on a port it shares with others, recognised by the first bytes a client
/// sends: Strata's RPC and transfer preambles (`STRT`, `STDT`), Hadoop RPC's `hrpc`, or a
/// Hadoop data transfer's version (its first byte, 0, as the version is a big-endian 16-bit
/// number below 256).
public struct SharedPortProtocol: Sendable {
    /// The first bytes of a connection of this protocol, 1 to `PortProtocolSniffer.maximumMagicBytes`
    /// of them (they stay in the stream: the protocol's own decoder reads them again).
    public var magic: [UInt8]
    /// Adds the protocol's handlers to the end of a connection's pipeline; called on the
    /// connection's event loop.
    public var configure: @Sendable (any Channel) throws -> Void

    public init(magic: [UInt8], configure: @escaping @Sendable (any Channel) throws -> Void) {
        precondition(
            !magic.isEmpty && magic.count <= PortProtocolSniffer.maximumMagicBytes,
            "a shared-port magic is 1 to \(PortProtocolSniffer.maximumMagicBytes) bytes")
        self.magic = magic
        self.configure = configure
    }
}

/// Waits for enough of a connection's first bytes to tell which protocol it speaks, hands the
/// connection to that protocol, and steps out of the pipeline, passing on what it read. Bytes of
/// no known protocol close the connection.
///
/// Magics may differ in length; none may be a prefix of another (the choice would depend on how
/// the bytes arrived).
final class PortProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let maximumMagicBytes = 8

    private let protocols: [SharedPortProtocol]
    private let logger: Logger
    private let onUnknown: (@Sendable () -> Void)?
    private var received: ByteBuffer?
    private var chosen = false
    private var reportedUnknown = false

    /// `onUnknown`: called once (on the event loop) when a connection is closed for speaking no
    /// protocol of this port, or closes before it said which.
    init(protocols: [SharedPortProtocol], logger: Logger, onUnknown: (@Sendable () -> Void)? = nil) {
        for (index, first) in protocols.enumerated() {
            for second in protocols[(index + 1)...] {
                let shorter = min(first.magic.count, second.magic.count)
                precondition(first.magic.prefix(shorter) != second.magic.prefix(shorter), "shared-port magics overlap")
            }
        }
        self.protocols = protocols
        self.logger = logger
        self.onUnknown = onUnknown
    }

    /// What the bytes so far say: a protocol, not yet known, or none.
    enum Verdict: Equatable {
        case chosen(Int)
        case needMoreBytes
        case unknown
    }

    static func verdict(_ bytes: [UInt8], magics: [[UInt8]]) -> Verdict {
        var possible = false
        for (index, magic) in magics.enumerated() {
            if bytes.count >= magic.count {
                if Array(bytes.prefix(magic.count)) == magic { return .chosen(index) }
            } else if Array(magic.prefix(bytes.count)) == bytes {
                possible = true
            }
        }
        return possible ? .needMoreBytes : .unknown
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
        let available = min(received!.readableBytes, Self.maximumMagicBytes)
        let first = received!.getBytes(at: received!.readerIndex, length: available) ?? []
        let chosenProtocol: SharedPortProtocol
        switch Self.verdict(first, magics: protocols.map(\.magic)) {
        case .needMoreBytes:
            return
        case .unknown:
            logger.debug("closing a connection from \(String(describing: context.remoteAddress)) that speaks no protocol of this port")
            reportUnknown()
            context.close(promise: nil)
            return
        case .chosen(let index):
            chosenProtocol = protocols[index]
        }
        do {
            try chosenProtocol.configure(context.channel)
        } catch {
            logger.warning("cannot set up a connection from \(String(describing: context.remoteAddress)): \(error)")
            reportUnknown()
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

    func channelInactive(context: ChannelHandlerContext) {
        if !chosen { reportUnknown() }
        context.fireChannelInactive()
    }

    private func reportUnknown() {
        guard !reportedUnknown else { return }
        reportedUnknown = true
        onUnknown?()
    }
}
