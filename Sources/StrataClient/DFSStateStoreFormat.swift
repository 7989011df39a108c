import StrataBlockFormat

/// The files a `DFSStateStore` keeps in its directory, and how their bytes are laid out
/// (docs/formats.md, "Service state on the DFS").
///
/// One sequence number orders every file: `snapshot-N` holds the state as of the end of every
/// log numbered below N; `log-N`, `log-N+1`, ... hold the records appended after it, in order.
/// All integers are little-endian and fixed-width; CRC32C as for block files.
public enum DFSStateStoreFormat {
    /// The largest record `append` takes: a record is state changed by one event, not a bulk
    /// transfer, and replay holds a whole log in memory.
    public static let maximumRecordBytes = 16 << 20
    /// The largest snapshot `writeSnapshot` takes (replay reads it whole into memory).
    public static let maximumSnapshotBytes = 1 << 30
    /// The version written in log and snapshot headers; files of another version are refused.
    public static let version: UInt16 = 1

    static let logMagic: [UInt8] = Array("SSLG".utf8)
    static let snapshotMagic: [UInt8] = Array("SSSN".utf8)
    /// magic (4), version (2), reserved (2), sequence (8), CRC32C of bytes 0..<16 (4).
    public static let logHeaderBytes = 20
    /// payload length (4), CRC32C of the payload (4), CRC32C of bytes 0..<8 (4).
    public static let recordHeaderBytes = 12
    /// magic (4), version (2), reserved (2), sequence (8), payload length (8), CRC32C of the
    /// payload (4), CRC32C of bytes 0..<28 (4).
    public static let snapshotHeaderBytes = 32

    // MARK: - Names

    /// What a file in a state directory is, from its name.
    public enum FileName: Equatable, Sendable {
        case log(UInt64)
        case snapshot(UInt64)
        /// A snapshot being written (`snapshot-N.tmp`): never read, removed at the next open.
        case temporarySnapshot(UInt64)

        public var sequence: UInt64 {
            switch self {
            case .log(let sequence), .snapshot(let sequence), .temporarySnapshot(let sequence): sequence
            }
        }

        public var name: String {
            switch self {
            case .log(let sequence): "log-" + Self.padded(sequence)
            case .snapshot(let sequence): "snapshot-" + Self.padded(sequence)
            case .temporarySnapshot(let sequence): "snapshot-" + Self.padded(sequence) + ".tmp"
            }
        }

        /// Sequence numbers are zero-padded to 20 digits, so names sort like numbers.
        static func padded(_ sequence: UInt64) -> String {
            let digits = String(sequence)
            return String(repeating: "0", count: 20 - digits.count) + digits
        }

        /// Nil for a name the store does not write.
        public init?(_ name: String) {
            func sequence(_ digits: Substring) -> UInt64? {
                guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
                return UInt64(digits)
            }
            if name.hasPrefix("log-"), let number = sequence(name.dropFirst(4)) {
                self = .log(number)
            } else if name.hasPrefix("snapshot-"), name.hasSuffix(".tmp"), let number = sequence(name.dropFirst(9).dropLast(4)) {
                self = .temporarySnapshot(number)
            } else if name.hasPrefix("snapshot-"), let number = sequence(name.dropFirst(9)) {
                self = .snapshot(number)
            } else {
                return nil
            }
        }
    }

    // MARK: - Writing

    /// The first bytes of `log-<sequence>`, written and hsync'd when the log is created.
    public static func logHeader(sequence: UInt64) -> [UInt8] {
        var bytes = logMagic
        bytes.reserveCapacity(logHeaderBytes)
        appendLittleEndian(version, to: &bytes)
        appendLittleEndian(UInt16(0), to: &bytes)
        appendLittleEndian(sequence, to: &bytes)
        appendLittleEndian(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    /// Appends one framed record to `bytes`. The length has a checksum of its own, so a damaged
    /// length is told apart from a record cut short by a crash.
    public static func appendRecord(_ payload: [UInt8], to bytes: inout [UInt8]) {
        precondition(payload.count <= maximumRecordBytes, "record of \(payload.count) bytes is over the bound")
        let start = bytes.count
        appendLittleEndian(UInt32(payload.count), to: &bytes)
        appendLittleEndian(CRC32C.checksum(payload), to: &bytes)
        let headerChecksum = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<start + 8])) }
        appendLittleEndian(headerChecksum, to: &bytes)
        bytes.append(contentsOf: payload)
    }

    /// The whole of `snapshot-<sequence>`.
    public static func snapshotFile(sequence: UInt64, payload: [UInt8]) -> [UInt8] {
        precondition(payload.count <= maximumSnapshotBytes, "snapshot of \(payload.count) bytes is over the bound")
        var bytes = snapshotMagic
        bytes.reserveCapacity(snapshotHeaderBytes + payload.count)
        appendLittleEndian(version, to: &bytes)
        appendLittleEndian(UInt16(0), to: &bytes)
        appendLittleEndian(sequence, to: &bytes)
        appendLittleEndian(UInt64(payload.count), to: &bytes)
        appendLittleEndian(CRC32C.checksum(payload), to: &bytes)
        appendLittleEndian(CRC32C.checksum(bytes), to: &bytes)
        bytes.append(contentsOf: payload)
        return bytes
    }

    // MARK: - Reading

    /// A log's records, in order.
    public struct DecodedLog: Sendable {
        public var records: [[UInt8]]
        /// Where a record cut short by a crash mid-append starts, if the log ends in one (or in
        /// a header cut short, if the log's creation was): the bytes from here on are dropped.
        public var tornTailOffset: Int?
    }

    /// Reads a whole log. Only the end of the file may be cut short (a crash mid-append, or
    /// mid-create); anything else that does not check out is an error naming `path` and the
    /// offset.
    public static func decodeLog(_ bytes: [UInt8], path: String, sequence: UInt64) throws(DFSStateStoreError) -> DecodedLog {
        if bytes.count < logHeaderBytes {
            // The writer crashed before its header was hsync'd: nothing in this log was ever
            // acknowledged.
            return DecodedLog(records: [], tornTailOffset: bytes.isEmpty ? nil : 0)
        }
        guard Array(bytes[0..<4]) == logMagic else {
            throw .damaged(path: path, offset: 0, "bad magic (not a state log)")
        }
        let headerChecksum = readLittleEndian(UInt32.self, bytes, at: 16)
        guard checksum(bytes, 0..<16) == headerChecksum else {
            throw .damaged(path: path, offset: 0, "log header checksum mismatch")
        }
        try checkVersionAndSequence(bytes, path: path, sequence: sequence)
        var records: [[UInt8]] = []
        var offset = logHeaderBytes
        while offset < bytes.count {
            guard bytes.count - offset >= recordHeaderBytes else {
                return DecodedLog(records: records, tornTailOffset: offset)
            }
            let length = Int(readLittleEndian(UInt32.self, bytes, at: offset))
            let payloadChecksum = readLittleEndian(UInt32.self, bytes, at: offset + 4)
            guard checksum(bytes, offset..<offset + 8) == readLittleEndian(UInt32.self, bytes, at: offset + 8) else {
                throw .damaged(path: path, offset: UInt64(offset), "record header checksum mismatch")
            }
            guard length <= maximumRecordBytes else {
                throw .damaged(path: path, offset: UInt64(offset), "record length \(length) is over the bound of \(maximumRecordBytes) bytes")
            }
            let payloadStart = offset + recordHeaderBytes
            guard bytes.count - payloadStart >= length else {
                // A header that checks out with a payload cut short: the file ends mid-record.
                return DecodedLog(records: records, tornTailOffset: offset)
            }
            guard checksum(bytes, payloadStart..<payloadStart + length) == payloadChecksum else {
                throw .damaged(path: path, offset: UInt64(offset), "record payload checksum mismatch (\(length) bytes)")
            }
            records.append(Array(bytes[payloadStart..<payloadStart + length]))
            offset = payloadStart + length
        }
        return DecodedLog(records: records, tornTailOffset: nil)
    }

    /// Reads a whole snapshot. A snapshot is renamed into place only once complete, so any
    /// mismatch (a short file included) is damage, an error naming `path`.
    public static func decodeSnapshot(_ bytes: [UInt8], path: String, sequence: UInt64) throws(DFSStateStoreError) -> [UInt8] {
        guard bytes.count >= snapshotHeaderBytes else {
            throw .damaged(path: path, offset: 0, "\(bytes.count) bytes, shorter than a snapshot header")
        }
        guard Array(bytes[0..<4]) == snapshotMagic else {
            throw .damaged(path: path, offset: 0, "bad magic (not a state snapshot)")
        }
        guard checksum(bytes, 0..<28) == readLittleEndian(UInt32.self, bytes, at: 28) else {
            throw .damaged(path: path, offset: 0, "snapshot header checksum mismatch")
        }
        try checkVersionAndSequence(bytes, path: path, sequence: sequence)
        let length = readLittleEndian(UInt64.self, bytes, at: 16)
        guard length <= UInt64(maximumSnapshotBytes), UInt64(bytes.count - snapshotHeaderBytes) == length else {
            throw .damaged(
                path: path, offset: 16, "header says \(length) payload bytes, the file holds \(bytes.count - snapshotHeaderBytes)")
        }
        guard checksum(bytes, snapshotHeaderBytes..<bytes.count) == readLittleEndian(UInt32.self, bytes, at: 24) else {
            throw .damaged(path: path, offset: UInt64(snapshotHeaderBytes), "snapshot payload checksum mismatch")
        }
        return Array(bytes[snapshotHeaderBytes...])
    }

    // MARK: - Integers and checksums

    static func checksum(_ bytes: [UInt8], _ range: Range<Int>) -> UInt32 {
        bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    static func appendLittleEndian<Integer: FixedWidthInteger>(_ value: Integer, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func readLittleEndian<Integer: FixedWidthInteger>(_: Integer.Type, _ bytes: [UInt8], at offset: Int) -> Integer {
        var value = Integer.zero
        for index in 0..<MemoryLayout<Integer>.size {
            value |= Integer(bytes[offset + index]) << (8 * index)
        }
        return value
    }
}

extension DFSStateStoreFormat {
    /// Checks the version (bytes 4-5) and sequence number (bytes 8-15) a log or snapshot header
    /// holds against this format's version and the number in the file's name.
    static func checkVersionAndSequence(_ bytes: [UInt8], path: String, sequence: UInt64) throws(DFSStateStoreError) {
        let fileVersion = readLittleEndian(UInt16.self, bytes, at: 4)
        guard fileVersion == version else {
            throw .damaged(path: path, offset: 4, "unsupported format version \(fileVersion)")
        }
        let fileSequence = readLittleEndian(UInt64.self, bytes, at: 8)
        guard fileSequence == sequence else {
            throw .damaged(path: path, offset: 8, "header says sequence \(fileSequence), the name \(sequence)")
        }
    }
}
