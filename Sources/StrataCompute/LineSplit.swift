/// Where a split's lines begin and end, so that records are never cut: a split owns the lines
/// that *start* inside it, and the line that straddles its end is read to its newline from the
/// next block (as Hadoop's TextInputFormat). Pure arithmetic on bytes the reader fetched.
public enum LineSplit {
    /// The offset of the split's first line. `probe` holds the file's bytes from `offset - 1`
    /// on (at least up to the first newline at or after `offset - 1`, or to the split's end);
    /// nil when no line starts inside the split (one long line runs through it) — the probe
    /// must then cover the whole split.
    public static func firstLineStart(offset: UInt64, splitEnd: UInt64, probe: some Collection<UInt8>) -> UInt64? {
        guard offset > 0 else { return 0 }
        // probe[0] is the byte at offset - 1: a line starts at the first byte after a newline.
        var position = offset - 1
        for byte in probe {
            if byte == UInt8(ascii: "\n") {
                let start = position + 1
                return start < splitEnd ? start : nil
            }
            position += 1
            if position >= splitEnd { break }
        }
        return nil
    }

    /// How many bytes of `tail` (the file's bytes from the split's end on) belong to the split's
    /// last line: up to and including the first newline. Nil when `tail` holds no newline (read
    /// more, or the file ends: then all of it belongs). Zero when the byte before the end was a
    /// newline (`endsWithNewline`).
    public static func tailLength(endsWithNewline: Bool, tail: some Collection<UInt8>) -> Int? {
        if endsWithNewline { return 0 }
        var count = 0
        for byte in tail {
            count += 1
            if byte == UInt8(ascii: "\n") { return count }
        }
        return nil
    }
}
