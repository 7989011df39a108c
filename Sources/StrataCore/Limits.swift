/// Every bound Strata enforces, in one place. Formats and protocols refer to these names rather
/// than to literals, so a reader can see what a corrupt or hostile input can cost at most.
public enum Limits {
    /// Default raw bytes covered by one block frame. An offset maps to frame `offset / size`.
    public static let defaultRawFrameSizeBytes = 256 * 1024
    /// Smallest raw frame size a block may declare. Small sizes are legal so tests can cross many
    /// frame boundaries cheaply; below this the per-frame header would dominate.
    public static let minimumRawFrameSizeBytes = 64
    /// Largest raw frame size a block may declare. A corrupt header can never make a reader
    /// allocate more than this (plus zstd's bound) for one frame.
    public static let maximumRawFrameSizeBytes = 16 * 1024 * 1024
    /// Largest raw block a block file may hold. HDFS blocks are at most a few GiB in practice;
    /// this keeps a frame count that fits comfortably in memory for the frame index.
    public static let maximumBlockSizeBytes: UInt64 = 64 * 1024 * 1024 * 1024
    /// Default zstd level for frames (level 1: fastest of the standard levels).
    public static let defaultZstdLevel: Int32 = 1
    /// A frame is stored compressed only if zstd saves at least this fraction of the raw bytes.
    public static let defaultMinimumCompressionSavings = 0.05
}
