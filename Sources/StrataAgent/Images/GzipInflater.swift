import CZlib

/// Streaming gzip decompression with zlib: input in chunks of any size, output in chunks of at
/// most `outputBytes`. Several gzip members one after another (what `pigz` and concatenated
/// `gzip` output make) are one stream, as gunzip reads them.
final class GzipInflater: LayerDecompressor {
    /// zlib keeps a pointer back to its `z_stream`, so it lives at a fixed address.
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableRawBufferPointer
    /// The last member ended and no byte of another has been read.
    private var atMemberEnd = false
    private var sawInput = false

    init(outputBytes: Int = ImageLimits.decompressedChunkBytes) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        output = .allocate(byteCount: outputBytes, alignment: 16)
        // 15 + 32: the largest window, and a gzip or zlib header detected from the stream.
        let status = strata_inflateInit2(stream, 15 + 32)
        precondition(status == Z_OK, "inflateInit2 failed (\(status)): out of memory")
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        output.deallocate()
    }

    func decompress(
        _ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws(LayerUnpackError) -> Void
    ) throws(LayerUnpackError) {
        guard let base = input.baseAddress, input.count > 0 else { return }
        sawInput = true
        stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        defer {
            stream.pointee.next_in = nil
            stream.pointee.avail_in = 0
        }
        while true {
            if atMemberEnd {
                guard stream.pointee.avail_in > 0 else { return }
                // Another member follows.
                inflateReset(stream)
                atMemberEnd = false
            }
            stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(output.count)
            let status = inflate(stream, Z_NO_FLUSH)
            let produced = output.count - Int(stream.pointee.avail_out)
            if produced > 0 { try sink(UnsafeRawBufferPointer(rebasing: output[..<produced])) }
            switch status {
            case Z_STREAM_END:
                atMemberEnd = true
            case Z_OK:
                // More input needed, unless the output filled up (more may be waiting in zlib).
                if stream.pointee.avail_in == 0 && produced < output.count { return }
            case Z_BUF_ERROR where stream.pointee.avail_in == 0:
                return
            default:
                let detail = stream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw LayerUnpackError(.corrupt, "the gzip stream is damaged: \(detail)")
            }
        }
    }

    /// Throws unless the input ended at the end of a gzip member.
    func finish() throws(LayerUnpackError) {
        guard sawInput else { throw LayerUnpackError(.corrupt, "the gzip stream is empty") }
        guard atMemberEnd else { throw LayerUnpackError(.corrupt, "the gzip stream is cut short") }
    }
}
