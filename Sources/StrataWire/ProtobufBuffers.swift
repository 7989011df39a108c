import NIOCore
import SwiftProtobuf

extension SwiftProtobuf.Message {
    /// The message serialized into a new buffer.
    public func serializedBuffer(allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        let bytes: [UInt8] = try serializedBytes()
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    /// Decodes a message from the readable bytes of `buffer`, as a protocol error if malformed.
    public init(buffer: ByteBuffer) throws(WireProtocolError) {
        do {
            self = try buffer.withUnsafeReadableBytes { bytes in
                try Self(serializedBytes: Array(bytes))
            }
        } catch {
            throw WireProtocolError("malformed \(Self.protoMessageName): \(error)")
        }
    }
}
