/// The bounds the journal enforces, in one place. (They sit here rather than in `StrataCore.Limits`
/// because only the name node's journal uses them.)
public enum JournalLimits {
    /// Largest edit record, and largest record in a checkpoint image, in bytes. One namespace edit
    /// (a path, its attributes and a few block ids) is far smaller; the bound keeps a damaged length
    /// field in an image from making a reader allocate without limit.
    public static let maximumRecordBytes = 16 * 1024 * 1024
    /// Records submitted but not yet committed (queued plus the batch being committed), at most.
    /// A submitter beyond this waits for the writer: back-pressure instead of unbounded memory.
    public static let maximumQueuedRecords = 100_000
    /// Bytes of records submitted but not yet committed, at most.
    public static let maximumQueuedBytes = 256 * 1024 * 1024
    /// Edits deleted per transaction when a checkpoint drops the edits it covers, so the write-ahead
    /// log stays small and the writer thread's commits are delayed only briefly.
    static let deletionChunkRecords: UInt64 = 20_000
    /// Bytes an image writer or reader buffers between system calls.
    static let imageBufferBytes = 1024 * 1024
    /// Milliseconds a connection waits on a lock held by another connection before failing.
    static let busyTimeoutMilliseconds: Int32 = 10_000
    /// Bytes SQLite leaves in the write-ahead log file after a checkpoint of the log (a big batch
    /// would otherwise leave a big file behind).
    static let walSizeLimitBytes = 64 * 1024 * 1024
}
