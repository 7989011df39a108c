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

extension Limits {
    /// Largest wire frame (header and body) a Strata connection accepts. Block transfer packets
    /// are the largest messages: a few frames of at most `maximumRawFrameSizeBytes` each.
    public static let maximumWireFrameBytes = 96 * 1024 * 1024
    /// Largest header inside a wire frame.
    public static let maximumWireHeaderBytes = 1024 * 1024
    /// Longest path the name node accepts, in UTF-8 bytes (HDFS: 8000 characters).
    public static let maximumPathBytes = 8000
    /// Longest single path component, in UTF-8 bytes (HDFS `dfs.namenode.fs-limits.max-component-length`).
    public static let maximumNameBytes = 255
    /// Deepest directory nesting (HDFS `dfs.namenode.fs-limits.max-directory-items` is separate).
    public static let maximumPathDepth = 1000
    /// Calls a client may have waiting for answers on one connection.
    public static let maximumInFlightCallsPerConnection = 1024
    /// Entries one listing call returns at most (HDFS `dfs.ls.limit`).
    public static let listingBatchSize = 1000
    /// Default block size (HDFS `dfs.blocksize`).
    public static let defaultBlockSizeBytes: UInt64 = 128 * 1024 * 1024
    /// Smallest block size a file may have (HDFS `dfs.namenode.fs-limits.min-block-size` is 1 MiB;
    /// Strata allows smaller so tests can use many blocks).
    public static let minimumBlockSizeBytes: UInt64 = 1024
    /// Default replication (HDFS `dfs.replication`).
    public static let defaultReplication = 3
    /// Highest replication a file may ask for (HDFS `dfs.replication.max`).
    public static let maximumReplication = 512
    /// Raw bytes a block transfer packet carries at most (several frames). Large packets keep the
    /// per-packet work (task switches, acknowledgements) small next to the bytes moved.
    public static let packetRawBytes = 4 * 1024 * 1024

    /// Frames of `rawFrameSize` raw bytes in one packet.
    public static func packetFrames(rawFrameSize: Int) -> Int {
        max(1, packetRawBytes / rawFrameSize)
    }
    /// Packets a writer may have sent but not yet had acknowledged.
    public static let maximumUnacknowledgedPackets = 16
    /// Bytes of packets a writer may have sent but not yet had acknowledged: a writer keeps them
    /// to resend after a pipeline failure, so this bounds its memory (four incompressible 4 MiB
    /// packets, or sixteen of compressed logs).
    public static let maximumUnacknowledgedBytes = 8 * 1024 * 1024
    /// Attempts a writer makes to rebuild a failed pipeline before it gives up on the write.
    public static let maximumPipelineRecoveries = 5
}
