import Dispatch
import StrataImages

/// Applies one image layer, streamed in chunks, onto a root filesystem directory: hashes the
/// blob's bytes with SHA-256 as they come, decompresses them as the media type says (gzip,
/// zstd or none), reads the tar and applies its entries (`LayerApplier`). Nothing holds more
/// than a chunk of the layer and one decompressed piece in memory.
///
/// The digest is known to match only at the end (`finish`): until then the directory holds
/// bytes nobody has vouched for, which is why the cache unpacks into a directory of its own and
/// removes it when anything fails. Paths are safe whatever the bytes say.
///
/// One thread at a time: `apply(_:chunks:onto:maximumBytes:)` runs it on a dispatch queue of its
/// own, off Swift's cooperative pool, since every entry is blocking file system calls.
public final class LayerUnpacker {
    public let layer: ImageLayer
    private let expectedDigest: Digest
    private var hasher = SHA256Hasher()
    /// Nil for an uncompressed tar.
    private let decompressor: (any LayerDecompressor)?
    private var tar = TarReader()
    private let applier: LayerApplier
    private let root: RootDirectory
    /// Bytes of the blob taken so far.
    var compressedBytes: UInt64 { hasher.count }
    /// Bytes of file contents written so far.
    public var writtenBytes: Int64 { applier.writtenBytes }

    /// - Parameter maximumBytes: the most file contents the layer may write; more is `.tooLarge`.
    public init(layer: ImageLayer, rootFilesystem: String, maximumBytes: Int64) throws(LayerUnpackError) {
        guard let digest = Digest(layer.digest) else {
            throw LayerUnpackError(.unsupported, "layer digest '\(layer.digest)' is not sha256:<64 lowercase hex digits>")
        }
        guard let compression = OCIMediaType.layerCompression(layer.mediaType) else {
            throw LayerUnpackError(.unsupported, "layer \(layer.digest) has media type '\(layer.mediaType)', which Strata does not unpack")
        }
        self.layer = layer
        self.expectedDigest = digest
        switch compression {
        case .uncompressed: decompressor = nil
        case .gzip: decompressor = GzipInflater()
        case .zstd: decompressor = ZstdStreamDecompressor()
        }
        root = try RootDirectory(path: rootFilesystem)
        applier = LayerApplier(root: root, layerName: layer.digest, maximumBytes: maximumBytes)
    }

    /// Takes the next bytes of the blob, as stored (compressed).
    public func consume(_ bytes: UnsafeRawBufferPointer) throws(LayerUnpackError) {
        hasher.update(bytes)
        if let decompressor {
            try decompressor.decompress(bytes) { (piece) throws(LayerUnpackError) in try self.readTar(piece) }
        } else {
            try readTar(bytes)
        }
    }

    /// Takes the next bytes of the blob, as stored (compressed).
    public func consume(_ bytes: [UInt8]) throws(LayerUnpackError) {
        let outcome = bytes.withUnsafeBytes { bytes in Result { () throws(LayerUnpackError) in try consume(bytes) } }
        try outcome.get()
    }

    private func readTar(_ bytes: UnsafeRawBufferPointer) throws(LayerUnpackError) {
        var bytes = bytes
        while true {
            let event: TarReader.Event?
            do {
                event = try tar.next(from: &bytes)
            } catch {
                throw LayerUnpackError(error)
            }
            guard let event else { return }
            try applier.apply(event)
        }
    }

    /// After the last bytes: checks that the compressed stream and the tar ended where they
    /// should and that the bytes hash to the layer's digest, and sets directories' modes and times.
    public func finish() throws(LayerUnpackError) {
        try decompressor?.finish()
        do {
            try tar.finish()
        } catch {
            throw LayerUnpackError(error)
        }
        let actual = hasher.finalize()
        guard actual == expectedDigest else {
            throw LayerUnpackError(
                .digestMismatch, "layer \(layer.digest) hashes to \(actual) (\(compressedBytes) bytes): damaged or not the layer named")
        }
        try applier.finish()
    }

    /// Applies `layer`, read from `chunks`, onto the directory `rootFilesystem`; each chunk is
    /// processed on a dispatch queue (blocking file system calls stay off the cooperative pool)
    /// before the next is read. On error the directory is left as it is, part applied: the
    /// caller removes it. Returns the bytes of file contents written.
    @discardableResult
    public static func apply(
        _ layer: ImageLayer, chunks: any AsyncSequence<[UInt8], any Error>, onto rootFilesystem: String, maximumBytes: Int64
    ) async throws(LayerUnpackError) -> Int64 {
        let queue = DispatchQueue(label: "strata.image-unpack")
        let unpacker = try await onQueue(queue) { () throws(LayerUnpackError) in
            UncheckedUnpacker(try LayerUnpacker(layer: layer, rootFilesystem: rootFilesystem, maximumBytes: maximumBytes))
        }
        var iterator = chunks.makeAsyncIterator()
        while true {
            let chunk: [UInt8]?
            do {
                chunk = try await iterator.next()
            } catch {
                throw LayerUnpackError(.io, "reading layer \(layer.digest) failed: \(error)")
            }
            guard let chunk else { break }
            if Task.isCancelled { throw LayerUnpackError(.io, "unpacking layer \(layer.digest) was cancelled") }
            try await onQueue(queue) { () throws(LayerUnpackError) in try unpacker.value.consume(chunk) }
        }
        try await onQueue(queue) { () throws(LayerUnpackError) in try unpacker.value.finish() }
        return unpacker.value.writtenBytes
    }
}

/// The unpacker crosses to its queue and back; only one job at a time touches it.
private struct UncheckedUnpacker: @unchecked Sendable {
    let value: LayerUnpacker
    init(_ value: LayerUnpacker) { self.value = value }
}

/// Runs `body` on `queue` and returns what it returns.
func onQueue<Value: Sendable>(
    _ queue: DispatchQueue, _ body: @escaping @Sendable () throws(LayerUnpackError) -> Value
) async throws(LayerUnpackError) -> Value {
    let result: Result<Value, LayerUnpackError> = await withCheckedContinuation { continuation in
        queue.async { continuation.resume(returning: Result(catching: body)) }
    }
    return try result.get()
}
