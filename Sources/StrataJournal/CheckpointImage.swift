import StrataBlockFormat
import StrataCore

/// A checkpoint image: the name node's whole namespace as of one transaction id, as a sequence of
/// opaque records (the name node decides what a record means).
///
/// File name: `image-<txid>`, the id zero-padded to 20 digits so names sort like ids. An image is
/// written as `image-<txid>.tmp`, made durable, then renamed, so a file with the final name is
/// always complete; leftover `.tmp` files are removed when the journal opens.
///
/// Layout (all integers little-endian, CRC32C as in block files):
///
/// ```
/// header, 20 bytes
///   0  4  magic, the ASCII bytes "SNMI"
///   4  2  format version, currently 1
///   6  2  reserved, 0
///   8  8  transaction id: the image holds every edit up to and including it
///  16  4  CRC32C of bytes 0..<16
/// records, one after another
///   0  4  payload length in bytes (at most JournalLimits.maximumRecordBytes)
///   4  4  CRC32C of the payload
///   8  n  payload
/// footer, 16 bytes
///   0  8  record count
///   8  4  CRC32C of every byte of the file before this field
///  12  4  magic, the ASCII bytes "SNIE"
/// ```
///
/// The per-record CRC lets a reader hand each record on as soon as it is verified, without
/// reading a multi-gigabyte image twice; the footer's CRC and count catch a truncated file, a
/// dropped or duplicated record, and damage to the header or lengths.
enum CheckpointImage {
    static let headerMagic: [UInt8] = Array("SNMI".utf8)
    static let footerMagic: [UInt8] = Array("SNIE".utf8)
    static let formatVersion: UInt16 = 1
    static let headerSize = 20
    static let recordHeaderSize = 8
    static let footerSize = 16
    static let namePrefix = "image-"
    static let temporarySuffix = ".tmp"
    static let idDigits = 20

    /// `image-` followed by the id padded to 20 digits (UInt64.max has 20).
    static func fileName(transactionId: UInt64) -> String {
        let digits = String(transactionId)
        return namePrefix + String(repeating: "0", count: idDigits - digits.count) + digits
    }

    /// The id in a final image name, or nil for any other name (temporary files included).
    static func transactionId(fileName: String) -> UInt64? {
        guard fileName.hasPrefix(namePrefix) else { return nil }
        let digits = fileName.dropFirst(namePrefix.count)
        guard digits.count == idDigits, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return UInt64(digits)
    }

    static func isTemporary(fileName: String) -> Bool {
        fileName.hasPrefix(namePrefix) && fileName.hasSuffix(temporarySuffix)
    }

    /// Writes a complete image to `path` (created or truncated) and makes its bytes durable.
    /// The caller renames it into place and synchronizes the directory.
    static func write(
        path: String, transactionId: UInt64, records: some Sequence<[UInt8]>
    ) throws(JournalError) {
        let file: LocalFile
        do { file = try LocalFile(path: path, mode: .createOrTruncate) } catch { throw JournalError(error) }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(JournalLimits.imageBufferBytes + recordHeaderSize)
        var offset: UInt64 = 0
        var fileChecksum: UInt32 = 0
        func flush() throws(JournalError) {
            fileChecksum = CRC32C.checksum(buffer, continuing: fileChecksum)
            do { try file.write(buffer, at: offset) } catch { throw JournalError(error) }
            offset += UInt64(buffer.count)
            buffer.removeAll(keepingCapacity: true)
        }

        buffer.append(contentsOf: headerMagic)
        buffer.appendLittleEndian(formatVersion)
        buffer.appendLittleEndian(UInt16(0))
        buffer.appendLittleEndian(transactionId)
        buffer.appendLittleEndian(CRC32C.checksum(buffer))

        var count: UInt64 = 0
        for record in records {
            guard record.count <= JournalLimits.maximumRecordBytes else {
                throw JournalError(
                    .recordTooLarge,
                    "checkpoint record \(count) has \(record.count) bytes; at most \(JournalLimits.maximumRecordBytes) allowed",
                    path: path)
            }
            buffer.appendLittleEndian(UInt32(record.count))
            buffer.appendLittleEndian(CRC32C.checksum(record))
            buffer.append(contentsOf: record)
            count += 1
            if buffer.count >= JournalLimits.imageBufferBytes { try flush() }
        }
        buffer.appendLittleEndian(count)
        let checksum = CRC32C.checksum(buffer, continuing: fileChecksum)
        buffer.appendLittleEndian(checksum)
        buffer.append(contentsOf: footerMagic)
        try flush()
        do {
            try file.synchronize()
            try file.close()
        } catch {
            throw JournalError(error)
        }
    }

    /// Verifies the image at `path` while streaming its records to `body`, and returns its
    /// transaction id. Each record reaches `body` only after its own checksum matched; damage
    /// anywhere (including a truncated file) throws a `.corruptImage` error naming the file.
    static func read(path: String, expectedTransactionId: UInt64, _ body: ([UInt8]) throws -> Void) throws -> UInt64 {
        func corrupt(_ detail: String) -> JournalError { JournalError(.corruptImage, detail, path: path) }
        let file: LocalFile
        let size: UInt64
        do {
            file = try LocalFile(path: path, mode: .readOnly)
            size = try file.size()
        } catch {
            throw JournalError(error)
        }
        guard size >= UInt64(headerSize + footerSize) else {
            throw corrupt("truncated: \(size) bytes is less than a header and footer")
        }
        let header: [UInt8]
        let footer: [UInt8]
        do {
            header = try file.read(count: headerSize, at: 0)
            footer = try file.read(count: footerSize, at: size - UInt64(footerSize))
        } catch {
            throw JournalError(error)
        }
        guard Array(header[0..<4]) == headerMagic else { throw corrupt("bad magic in header") }
        let storedHeaderChecksum = header.loadLittleEndian(at: 16, as: UInt32.self)
        guard CRC32C.checksum(Array(header[0..<16])) == storedHeaderChecksum else {
            throw corrupt("header checksum mismatch")
        }
        let version = header.loadLittleEndian(at: 4, as: UInt16.self)
        guard version == formatVersion else {
            throw JournalError(
                .unsupportedVersion, "image format version \(version); this build reads version \(formatVersion)", path: path)
        }
        let transactionId = header.loadLittleEndian(at: 8, as: UInt64.self)
        guard transactionId == expectedTransactionId else {
            throw corrupt("header names transaction \(transactionId) but the file name says \(expectedTransactionId)")
        }
        guard Array(footer[12..<16]) == footerMagic else {
            throw corrupt("bad magic in footer (file truncated or overwritten)")
        }
        let expectedCount = footer.loadLittleEndian(at: 0, as: UInt64.self)
        let storedFileChecksum = footer.loadLittleEndian(at: 8, as: UInt32.self)

        var reader = BufferedReader(file: file, start: UInt64(headerSize), end: size - UInt64(footerSize))
        var fileChecksum = CRC32C.checksum(header)
        var count: UInt64 = 0
        while reader.remaining > 0 {
            let recordOffset = reader.position
            guard reader.remaining >= UInt64(recordHeaderSize) else {
                throw corrupt("record \(count) at byte \(recordOffset): truncated record header")
            }
            let recordHeader = try reader.read(recordHeaderSize)
            let length = recordHeader.loadLittleEndian(at: 0, as: UInt32.self)
            let recordChecksum = recordHeader.loadLittleEndian(at: 4, as: UInt32.self)
            guard length <= JournalLimits.maximumRecordBytes else {
                throw corrupt(
                    "record \(count) at byte \(recordOffset): length \(length) over the "
                        + "\(JournalLimits.maximumRecordBytes)-byte bound")
            }
            guard UInt64(length) <= reader.remaining else {
                throw corrupt("record \(count) at byte \(recordOffset): length \(length) runs past the footer")
            }
            let payload = try reader.read(Int(length))
            guard CRC32C.checksum(payload) == recordChecksum else {
                throw corrupt("record \(count) at byte \(recordOffset): checksum mismatch")
            }
            fileChecksum = CRC32C.checksum(recordHeader, continuing: fileChecksum)
            fileChecksum = CRC32C.checksum(payload, continuing: fileChecksum)
            try body(payload)
            count += 1
        }
        fileChecksum = CRC32C.checksum(Array(footer[0..<8]), continuing: fileChecksum)
        guard fileChecksum == storedFileChecksum else { throw corrupt("file checksum mismatch") }
        guard count == expectedCount else { throw corrupt("footer says \(expectedCount) records but \(count) were found") }
        return transactionId
    }
}

/// Sequential reads of a byte range through a fixed buffer, so an image of millions of small
/// records costs a few large `pread`s rather than two per record.
private struct BufferedReader {
    let file: LocalFile
    let end: UInt64
    /// File offset of the next byte `read` returns.
    private(set) var position: UInt64
    private var buffer: [UInt8] = []
    private var bufferIndex = 0

    init(file: LocalFile, start: UInt64, end: UInt64) {
        self.file = file
        self.position = start
        self.end = end
    }

    var remaining: UInt64 { end - position }

    /// Reads exactly `count` bytes; the caller has checked they lie before `end`.
    mutating func read(_ count: Int) throws(JournalError) -> [UInt8] {
        precondition(UInt64(count) <= remaining)
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            if bufferIndex == buffer.count {
                // Everything buffered has been handed out, so the next byte is at `position`.
                let want = Int(min(UInt64(JournalLimits.imageBufferBytes), remaining))
                do { buffer = try file.read(count: want, at: position) } catch { throw JournalError(error) }
                bufferIndex = 0
                guard buffer.count == want else {
                    throw JournalError(.corruptImage, "file shrank while being read", path: file.path)
                }
            }
            let take = min(count - result.count, buffer.count - bufferIndex)
            result.append(contentsOf: buffer[bufferIndex..<bufferIndex + take])
            bufferIndex += take
            position += UInt64(take)
        }
        return result
    }
}

extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    func loadLittleEndian<T: FixedWidthInteger>(at offset: Int, as type: T.Type) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count)
        return withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
