/// A streaming decompressor of a layer's blob: input in chunks of any size, output handed on in
/// pieces as it is made.
protocol LayerDecompressor: AnyObject {
    /// Decompresses `input`, handing each piece of output to `sink` (valid only during the call).
    func decompress(
        _ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws(LayerUnpackError) -> Void
    ) throws(LayerUnpackError)

    /// After the last input: throws unless the stream ended where a stream may end.
    func finish() throws(LayerUnpackError)
}
