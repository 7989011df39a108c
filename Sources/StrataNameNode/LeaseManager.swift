import StrataCore
import StrataWire

/// Writer leases and the recoveries that take files back from silent writers, as decisions on the
/// monotonic clock: every method takes `now` and says what to do; the name node (the shell) does
/// it (journals the edits, hands commands to data nodes). A wall-clock step expires no lease.
///
/// A lease is held per client name (a writer), renewed by its calls and its `renewLease`
/// heartbeat. A holder silent past the soft limit may lose its files to another writer that
/// wants one (`isPastSoftLimit`); past the hard limit the name node takes them back by itself
/// (`filesToRecover`). Taking back a file whose last block is unfinished is a recovery of that
/// block, run by a data node and bounded by `recoveryTimeoutMs`, after which it starts over.
public struct LeaseManager {
    public struct Settings: Sendable {
        /// HDFS's soft limit, 60 s.
        public var softLimitMs: Int64 = 60_000
        /// HDFS's `dfs.namenode.lease-hard-limit-sec`, 20 minutes.
        public var hardLimitMs: Int64 = 1_200_000
        /// How long a block recovery may take before it starts over.
        public var recoveryTimeoutMs: Int64 = 60_000
        public init() {}
    }

    /// A recovery in progress: the last block of a file whose writer is gone.
    struct Recovery {
        var file: UInt32
        var generationStamp: UInt64
        var deadline: MonotonicInstant
    }

    /// An open file as the periodic check sees it.
    public struct OpenFile {
        public var file: UInt32
        public var holder: String
        public var lastBlock: UInt64?

        public init(file: UInt32, holder: String, lastBlock: UInt64?) {
            self.file = file
            self.holder = holder
            self.lastBlock = lastBlock
        }
    }

    public let settings: Settings
    /// When each holder last renewed its lease.
    private(set) var renewals: [String: MonotonicInstant] = [:]
    /// Recoveries in progress, by block.
    private(set) var recoveries: [UInt64: Recovery] = [:]
    /// Recovery commands for the next heartbeat of each node, by node id.
    private var pendingCommands: [String: [Strata_Wire_DatanodeCommand.RecoverBlock]] = [:]

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The holder called: its lease runs from `now`.
    public mutating func renew(_ holder: String, now: MonotonicInstant) {
        renewals[holder] = now
    }

    /// Whether `holder` has been silent past the soft limit. A holder with no renewal on record
    /// (its lease came from the journal at start-up, and the periodic check has not seen it yet)
    /// is not.
    public func isPastSoftLimit(_ holder: String, now: MonotonicInstant) -> Bool {
        guard let renewed = renewals[holder] else { return false }
        return now.milliseconds(since: renewed) > settings.softLimitMs
    }

    /// The periodic check: files to take back, with the reason, because their holder is silent
    /// past the hard limit or because their recovery ran out of time. Leases restored from the
    /// journal start counting at their first check.
    public mutating func filesToRecover(
        _ openFiles: some Sequence<OpenFile>, recoveryHolder: String, now: MonotonicInstant
    ) -> [(file: UInt32, reason: String)] {
        var due: [(file: UInt32, reason: String)] = []
        for open in openFiles {
            if open.holder == recoveryHolder {
                if let last = open.lastBlock, isRecoveryRunning(block: last, now: now) { continue }
                due.append((open.file, "recovery timed out"))
                continue
            }
            guard let renewed = renewals[open.holder] else {
                renewals[open.holder] = now
                continue
            }
            if now.milliseconds(since: renewed) > settings.hardLimitMs {
                due.append((open.file, "hard limit expired for \(open.holder)"))
            }
        }
        return due
    }

    /// Whether a recovery of `block` is under way and not past its deadline.
    public func isRecoveryRunning(block: UInt64, now: MonotonicInstant) -> Bool {
        guard let recovery = recoveries[block] else { return false }
        return recovery.deadline > now
    }

    /// Records a (new or repeated) recovery of `block` and queues its command for the node that
    /// runs it. Returns whether an earlier attempt existed; that attempt's command, if its node
    /// never took it, is dropped.
    @discardableResult
    public mutating func startRecovery(
        _ command: Strata_Wire_DatanodeCommand.RecoverBlock, file: UInt32, on nodeId: String, now: MonotonicInstant
    ) -> Bool {
        let block = command.block.blockID
        let isRetry = recoveries[block] != nil
        if isRetry {
            for node in pendingCommands.keys { pendingCommands[node]?.removeAll { $0.block.blockID == block } }
        }
        pendingCommands[nodeId, default: []].append(command)
        recoveries[block] = Recovery(
            file: file, generationStamp: command.newGenerationStamp, deadline: now.advanced(byMilliseconds: settings.recoveryTimeoutMs))
        return isRetry
    }

    /// Whether a recovery of `block` was ever started and not yet finished.
    public func hasRecovery(block: UInt64) -> Bool { recoveries[block] != nil }

    /// Ends the recovery of `block` under `generationStamp` (its primary node reported), returning
    /// the file it was for; nil if no such recovery is in progress.
    public mutating func finishRecovery(block: UInt64, generationStamp: UInt64) -> UInt32? {
        guard let recovery = recoveries[block], recovery.generationStamp == generationStamp else { return nil }
        recoveries[block] = nil
        return recovery.file
    }

    /// The recovery commands waiting for `nodeId`, handed over once.
    public mutating func takeCommands(for nodeId: String) -> [Strata_Wire_DatanodeCommand.RecoverBlock] {
        pendingCommands.removeValue(forKey: nodeId) ?? []
    }
}
