import CZstd

/// Streaming zstd decompression: input in chunks of any size, output in chunks of at most
/// `outputBytes`; several frames one after another are one stream, as `zstd -d` reads them.
/// libzstd's default window limit (128 MiB) bounds the memory a frame may ask for.
final class ZstdStreamDecompressor: LayerDecompressor {
    private let stream: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer
    /// libzstd's last hint: 0 once a frame is completely decoded and flushed.
    private var lastHint = 1
    private var sawInput = false

    init(outputBytes: Int = ImageLimits.decompressedChunkBytes) {
        guard let stream = ZSTD_createDStream() else { fatalError("ZSTD_createDStream failed: out of memory") }
        self.stream = stream
        output = .allocate(byteCount: outputBytes, alignment: 16)
    }

    deinit {
        ZSTD_freeDStream(stream)
        output.deallocate()
    }

    func decompress(
        _ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws(LayerUnpackError) -> Void
    ) throws(LayerUnpackError) {
        guard let base = input.baseAddress, input.count > 0 else { return }
        sawInput = true
        var source = ZSTD_inBuffer(src: base, size: input.count, pos: 0)
        while true {
            var destination = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
            let hint = ZSTD_decompressStream(stream, &destination, &source)
            if ZSTD_isError(hint) != 0 {
                throw LayerUnpackError(.corrupt, "the zstd stream is damaged: \(String(cString: ZSTD_getErrorName(hint)))")
            }
            lastHint = hint
            if destination.pos > 0 { try sink(UnsafeRawBufferPointer(rebasing: output[..<destination.pos])) }
            // Done with this input once it is all read and libzstd had no more output to give.
            if source.pos == source.size && destination.pos < destination.size { return }
        }
    }

    /// Throws unless the input ended at the end of a frame.
    func finish() throws(LayerUnpackError) {
        guard sawInput else { throw LayerUnpackError(.corrupt, "the zstd stream is empty") }
        guard lastHint == 0 else { throw LayerUnpackError(.corrupt, "the zstd stream is cut short") }
    }
}
