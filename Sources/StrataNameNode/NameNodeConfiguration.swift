import StrataCore
import StrataJournal

/// How a name node runs.
public struct NameNodeConfiguration: Sendable {
    /// Where the journal and checkpoint images live.
    public var directory: String
    public var host: String = "127.0.0.1"
    /// The RPC port (HDFS `dfs.namenode.rpc-address`, default 8020).
    public var rpcPort: Int = 8020
    public var superuser: String
    public var supergroup: String = "supergroup"
    public var permissionsEnabled = true
    public var defaultBlockSize: UInt64 = Limits.defaultBlockSizeBytes
    public var defaultReplication: Int = Limits.defaultReplication
    public var rawFrameSize: Int = Limits.defaultRawFrameSizeBytes
    public var umask: UInt16 = 0o022
    public var blockManager = BlockManager.Settings()
    /// Edits waiting for the journal's disk, at most: past it, changes wait (suspended, holding
    /// no lock) for room.
    public var journalMaximumQueuedRecords = JournalLimits.maximumQueuedRecords
    /// Write a checkpoint image after this many edits (HDFS `dfs.namenode.checkpoint.txns`).
    public var checkpointEveryEdits: UInt64 = 200_000
    /// When start-up safe mode ends (HDFS `dfs.namenode.safemode.threshold-pct` and
    /// `dfs.namenode.safemode.extension`).
    public var safeMode = SafeMode.Settings()
    /// Writer lease limits (HDFS soft limit 60 s, `dfs.namenode.lease-hard-limit-sec` 20 minutes)
    /// and how long a lease recovery may take before it starts over with another node.
    public var leases = LeaseManager.Settings()
    /// How often the monitor checks heartbeats, safe mode and replication.
    public var monitorIntervalMs: Int64 = 500
    /// How long `complete` and `addBlock` wait for the finished replica of the block the writer
    /// just ended (its data node reports it right after the last packet) before answering
    /// false or NotReplicatedYetException, on which clients call again.
    public var finishedReplicaWaitMs: Int64 = 20_000
    /// Block ids a scan (replication, the safe-mode count, forgetting a dead node's replicas, the
    /// sweep of a full block report), or replicas of a full block report, covered per hold of the
    /// name node's lock: it lets go between chunks, so no scan of every block stalls the RPC handlers.
    public var scanChunkBlockIds = 1024
    /// Files and directories a walk of a subtree (fsck, content summary) covers per hold of the
    /// name node's lock (HDFS `dfs.content-summary.limit`).
    public var subtreeChunkInodes = 5000
    /// Blocks of a deleted subtree dropped from the block map per hold of the lock (HDFS
    /// `dfs.namenode.block.deletion.increment`, 1000): a delete of a large tree answers once the
    /// namespace edit is durable and its blocks leave the map, and their replicas are
    /// invalidated, a chunk at a time after that.
    public var blockDeletionIncrement = 1000

    public init(directory: String, superuser: String) {
        self.directory = directory
        self.superuser = superuser
    }
}

extension NameNodeConfiguration {
    var namespaceSettings: NamespaceSettings {
        NamespaceSettings(superuser: superuser, supergroup: supergroup, permissionsEnabled: permissionsEnabled)
    }
}
