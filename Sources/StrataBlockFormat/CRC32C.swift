import CISAL

/// CRC32C (Castagnoli), the checksum HDFS and iSCSI use, computed with ISA-L.
///
/// ISA-L's `crc32_iscsi` neither inverts its input nor its output, so the standard value is
/// `crc32_iscsi(bytes, count, 0xFFFFFFFF) ^ 0xFFFFFFFF`. The check value for the ASCII bytes
/// `123456789` is `0xE3069283`.
public enum CRC32C {
    /// The CRC32C of `bytes`, continuing from `previous` (the CRC of the bytes before them).
    @inline(__always)
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        var state = ~previous
        guard var base = bytes.baseAddress else { return previous }
        var remaining = bytes.count
        // crc32_iscsi takes an Int32 length: feed very large buffers in pieces.
        let piece = 1 << 30
        while remaining > 0 {
            let length = min(remaining, piece)
            state = crc32_iscsi(UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self)), Int32(length), state)
            base += length
            remaining -= length
        }
        return ~state
    }

    public static func checksum(_ bytes: [UInt8], continuing previous: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: previous) }
    }
}
