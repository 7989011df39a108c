import CZstd

/// A reusable libzstd compression context. One per thread; frames use it through `FrameEncoder`,
/// and benchmarks use it directly as the raw-libzstd baseline.
public final class ZstdCompressor {
    public let level: Int32
    private let context: OpaquePointer

    public init(level: Int32) {
        guard let context = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx failed: out of memory") }
        self.context = context
        self.level = level
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Bytes a destination needs to compress `count` bytes whatever they are.
    public static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

    /// Compresses `source` into `destination` (at least `bound(source.count)` bytes) as one zstd
    /// frame; returns the compressed length.
    public func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        precondition(destination.count >= Self.bound(source.count), "zstd destination smaller than the bound")
        let result = ZSTD_compressCCtx(context, destination.baseAddress, destination.count, source.baseAddress, source.count, level)
        // With a destination of the bound, compression cannot fail except for memory exhaustion.
        precondition(ZSTD_isError(result) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(result)))")
        return result
    }
}

/// A reusable libzstd decompression context. One per thread.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    public init() {
        guard let context = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx failed: out of memory") }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses one zstd frame into `destination`, which bounds how much it may produce;
    /// returns the decompressed length or libzstd's error text.
    public func decompress(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) -> Result<Int, ZstdError> {
        let result = ZSTD_decompressDCtx(context, destination.baseAddress, destination.count, source.baseAddress, source.count)
        if ZSTD_isError(result) != 0 {
            return .failure(ZstdError(message: String(cString: ZSTD_getErrorName(result))))
        }
        return .success(result)
    }
}

public struct ZstdError: Error, Sendable, Equatable {
    public var message: String
}
