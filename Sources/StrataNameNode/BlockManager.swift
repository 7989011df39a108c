import StrataCore
import StrataWire

/// The data nodes the name node knows, where each block's replicas are, and the work that
/// keeps every block at its replication: placement of new blocks, copies for under-replicated
/// blocks, deletions for excess and deleted ones. Pure logic: time comes in as `now` (an
/// instant on the name node clock's monotonic time line, so a wall-clock step changes no node's
/// liveness and no copy's deadline), randomness from the caller's generator, and the work comes
/// out as commands the name node hands to data nodes in heartbeat answers.
public struct BlockManager {
    public struct Settings: Sendable {
        /// A node that has not sent a heartbeat for this long is dead.
        public var heartbeatTimeoutMs: Int64 = 30_000
        public var heartbeatIntervalMs: Int64 = 3_000
        public var blockReportIntervalMs: Int64 = 60_000
        /// How long a scheduled copy may take before it is scheduled again elsewhere.
        public var pendingReplicationTimeoutMs: Int64 = 60_000
        /// Copies one node may have in flight as their source (HDFS
        /// `dfs.namenode.replication.max-streams`): a scheduled copy counts until every target has
        /// reported its replica or the copy times out.
        public var maximumTransfersPerNode = 4
        /// Deletions handed to one node per heartbeat (HDFS `dfs.block.invalidate.limit`).
        public var maximumInvalidationsPerHeartbeat = 1000
        public init() {}
    }

    /// What an administrator has made of a node (HDFS's admin states).
    public enum AdminState: String, Sendable {
        case normal
        /// Its replicas are being copied to other nodes. It takes no new replicas, still serves
        /// reads and may be the source of copies; its replicas do not count toward replication.
        case decommissioning
        /// No block needs its replicas any more: it may be switched off.
        case decommissioned
    }

    public struct Node {
        public var info: Strata_Wire_DatanodeInfo
        public var lastHeartbeat: MonotonicInstant
        public var isAlive: Bool
        public var blockCount = 0
        public internal(set) var adminState = AdminState.normal
        /// Blocks that still need this decommissioning node's replica, as of the last replication pass.
        public internal(set) var blocksToDecommission = 0
        /// A full block report came since the node last registered. Until then the name node does
        /// not know every replica it holds, so its decommissioning cannot finish.
        var blockReportReceived = false
        /// The volume state last announced for this node (`takeVolumeStateChanges`).
        var volumeFailureAnnounced = false
        var pendingInvalidations: [Strata_Wire_ExtendedBlock] = []
        /// The blocks of `pendingInvalidations`, each with how many times it is queued: a full
        /// report does not bring back a replica the node is yet to delete.
        var scheduledDeletions: [UInt64: Int] = [:]
        /// The number of the last full block report that began for this node (`beginBlockReport`).
        var latestBlockReport: UInt64 = 0
        var pendingTransfers: [Strata_Wire_DatanodeCommand.Transfer] = []
        var requestBlockReport = false
    }

    /// Where a block's replicas are. Replicas of one block hold the same frames, so they take the
    /// same bytes on disk: one stored size per block.
    struct Replicas {
        /// The first four nodes; any more are in `extraReplicaNodes`.
        var nodes = NodeList()
        var storedBytes: UInt64 = 0
    }

    /// A node's report of its replica of a block being written.
    struct WrittenReplica: Equatable {
        var node: UInt16
        var generationStamp: UInt64
        var numBytes: UInt64
        var isFinalized: Bool

        /// Finished under `generationStamp` at `numBytes`: a replica a block may be closed on.
        func isFinished(generationStamp: UInt64, numBytes: UInt64) -> Bool {
            isFinalized && self.generationStamp == generationStamp && self.numBytes == numBytes
        }
    }

    /// A copy scheduled from `source`: it counts against the source's in-flight limit until every
    /// target has reported the replica or the deadline passes.
    struct PendingCopy {
        var source: UInt16
        var targets: [UInt16]
        var deadline: MonotonicInstant
    }

    public let settings: Settings
    public private(set) var nodes: [Node] = []
    var nodeIndex: [String: UInt16] = [:]
    var replicas: [UInt64: Replicas] = [:]
    /// Nodes beyond the first four holding a block (rare: replication above four).
    var extraReplicaNodes: [UInt64: [UInt16]] = [:]
    /// Nodes whose replica of a block is known to be damaged (rare, so kept apart).
    var corrupt: [UInt64: [UInt16]] = [:]
    /// Copies in flight, per block (usually one; more when a block lacks several replicas).
    var pendingReplications: [UInt64: [PendingCopy]] = [:]
    /// What each node last reported of its replica of a block still being written (HDFS keeps
    /// the same for a block under construction). Such a block's replicas are its locations while
    /// it is written, finished or not; it may be closed only once one is finished under its
    /// current stamp and at the length the writer reached, and then only those stay locations
    /// (`completeBlock`). Dropped when the block completes or goes.
    var writtenReplicas: [UInt64: [WrittenReplica]] = [:]
    /// Ids of the nodes an administrator asked to decommission, registered or not: a node in it
    /// that registers (again) starts decommissioning. (HDFS's exclude file.)
    public private(set) var decommissionRequests: Set<String> = []
    /// Full block reports being processed a chunk at a time, by node.
    var blockReportsInProgress: [UInt16: BlockReportProgress] = [:]
    var nextBlockReportNumber: UInt64 = 1
    /// Dead nodes whose replicas are being forgotten a chunk of block ids at a time
    /// (`forgetDeadReplicas`), by node. Until a node's sweep ends, only the replicas it reported
    /// since it died count (`isLiveReplica`).
    var deadNodeSweeps: [UInt16: DeadNodeSweep] = [:]

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    // MARK: - Nodes

    /// Registers a node (or a node coming back): it is alive from now on.
    public mutating func register(_ info: Strata_Wire_DatanodeInfo, now: MonotonicInstant) -> UInt16 {
        if let index = nodeIndex[info.nodeID] {
            nodes[Int(index)].info = info
            nodes[Int(index)].lastHeartbeat = now
            nodes[Int(index)].isAlive = true
            nodes[Int(index)].blockReportReceived = false
            // A report begun before the node registered again says nothing reliable about what it
            // holds now: it is abandoned, and the node reports again.
            blockReportsInProgress[index] = nil
            // A decommissioned node that comes back may bring replicas: it is checked again (as
            // HDFS does for a node still in its exclude list), and is decommissioned again once no
            // block needs it.
            if nodes[Int(index)].adminState == .decommissioned { nodes[Int(index)].adminState = .decommissioning }
            return index
        }
        let index = UInt16(nodes.count)
        nodes.append(Node(info: info, lastHeartbeat: now, isAlive: true))
        nodeIndex[info.nodeID] = index
        if decommissionRequests.contains(info.nodeID) { nodes[Int(index)].adminState = .decommissioning }
        return index
    }

    public func index(ofNode nodeId: String) -> UInt16? { nodeIndex[nodeId] }

    /// Records a heartbeat and returns the node's work; nil for a node that must register again.
    public mutating func heartbeat(_ request: Strata_Wire_HeartbeatRequest, now: MonotonicInstant) -> Strata_Wire_DatanodeCommand? {
        guard let index = nodeIndex[request.nodeID], nodes[Int(index)].isAlive else { return nil }
        var node = nodes[Int(index)]
        node.lastHeartbeat = now
        node.info.capacity = request.capacity
        node.info.dfsUsed = request.dfsUsed
        node.info.remaining = request.remaining
        node.info.volumeFailed = request.volumeFailed
        node.info.volumeFailure = request.volumeFailure
        var command = Strata_Wire_DatanodeCommand()
        let invalidations = min(node.pendingInvalidations.count, settings.maximumInvalidationsPerHeartbeat)
        command.invalidate = Array(node.pendingInvalidations.prefix(invalidations))
        node.pendingInvalidations.removeFirst(invalidations)
        for block in command.invalidate {
            let queued = node.scheduledDeletions[block.blockID, default: 1] - 1
            node.scheduledDeletions[block.blockID] = queued > 0 ? queued : nil
        }
        command.transfers = node.pendingTransfers
        node.pendingTransfers = []
        command.reportBlocks = node.requestBlockReport
        node.requestBlockReport = false
        nodes[Int(index)] = node
        return command
    }

    /// Marks nodes silent for longer than the timeout as dead, so their blocks become
    /// under-replicated at once, and starts forgetting their replicas: `forgetDeadReplicas` does
    /// that a chunk of block ids at a time, and until then a dead node's replicas are neither
    /// locations nor counted (`isLiveReplica`). Returns the nodes that died.
    public mutating func checkHeartbeats(now: MonotonicInstant) -> [String] {
        var died: [UInt16] = []
        for index in nodes.indices where nodes[index].isAlive && now.milliseconds(since: nodes[index].lastHeartbeat) > settings.heartbeatTimeoutMs {
            nodes[index].isAlive = false
            nodes[index].pendingInvalidations = []
            nodes[index].scheduledDeletions = [:]
            nodes[index].pendingTransfers = []
            nodes[index].blockReportReceived = false
            blockReportsInProgress[UInt16(index)] = nil
            deadNodeSweeps[UInt16(index)] = DeadNodeSweep(next: Namespace.firstBlockId)
            died.append(UInt16(index))
        }
        guard !died.isEmpty else { return [] }
        let dead = Set(died)
        // Copies from a dead node will not happen, and a dead target will not report: schedule
        // them again at once rather than wait for their timeout.
        for (id, copies) in pendingReplications where copies.contains(where: { dead.contains($0.source) || $0.targets.contains(where: dead.contains) }) {
            var kept: [PendingCopy] = []
            for var copy in copies where !dead.contains(copy.source) {
                copy.targets.removeAll(where: dead.contains)
                if !copy.targets.isEmpty { kept.append(copy) }
            }
            pendingReplications[id] = kept.isEmpty ? nil : kept
        }
        return died.map { nodes[Int($0)].info.nodeID }
    }

    /// A dead node's replicas being forgotten: block ids from `next` on are still to be swept;
    /// `kept` holds the blocks the node reported since it died, which stay.
    struct DeadNodeSweep {
        var next: UInt64
        var kept: Set<UInt64> = []
    }

    /// Whether any dead node's replicas are still to be forgotten.
    public var hasDeadReplicasToForget: Bool { !deadNodeSweeps.isEmpty }

    /// Forgets the replicas of a dead node in the next `chunkIds` block ids of its sweep (ids lie
    /// in `Namespace.firstBlockId..<end`); returns whether any sweep goes on. The name node calls
    /// it once per hold of its lock. A node that registered again before its sweep ended keeps
    /// the replicas it reported since it died.
    public mutating func forgetDeadReplicas(chunkIds: Int, below end: UInt64) -> Bool {
        guard let node = deadNodeSweeps.keys.min(), let sweep = deadNodeSweeps[node] else { return false }
        let stop = max(sweep.next, min(sweep.next + UInt64(max(1, chunkIds)), end))
        for id in sweep.next..<stop where !sweep.kept.contains(id) {
            if let entry = replicas[id], replicaNodes(id, entry).contains(node) { removeReplica(id, node: node) }
        }
        if stop >= end {
            deadNodeSweeps[node] = nil
        } else {
            deadNodeSweeps[node]!.next = stop
        }
        return !deadNodeSweeps.isEmpty
    }

    /// Whether a node's replica of a block counts (as a location, toward replication, in fsck):
    /// its node is alive, and the replica is not one it held before it died that is still to be
    /// forgotten.
    func isLiveReplica(_ node: UInt16, of blockId: UInt64) -> Bool {
        guard nodes[Int(node)].isAlive else { return false }
        guard !deadNodeSweeps.isEmpty, let sweep = deadNodeSweeps[node] else { return true }
        return sweep.kept.contains(blockId)
    }

    public var liveNodeCount: Int { nodes.filter(\.isAlive).count }
    public var deadNodeCount: Int { nodes.count - liveNodeCount }

    public func nodeInfo(_ index: UInt16) -> Strata_Wire_DatanodeInfo {
        var info = nodes[Int(index)].info
        info.blockCount = UInt64(nodes[Int(index)].blockCount)
        info.state = nodes[Int(index)].isAlive ? "live" : "dead"
        info.adminState = nodes[Int(index)].adminState.rawValue
        info.blocksToDecommission = nodes[Int(index)].adminState == .decommissioning ? UInt64(nodes[Int(index)].blocksToDecommission) : 0
        return info
    }

    /// Whether a node's replicas count toward replication and it takes new ones: alive, not
    /// (being) decommissioned, its volume working.
    public func isInService(_ index: UInt16) -> Bool {
        let node = nodes[Int(index)]
        return node.isAlive && node.adminState == .normal && !node.info.volumeFailed
    }

    /// Copies each node has in flight as their source (scheduled, not yet arrived nor timed out).
    public func copiesInFlight() -> [Int] {
        var counts = [Int](repeating: 0, count: nodes.count)
        for copies in pendingReplications.values {
            for copy in copies { counts[Int(copy.source)] += 1 }
        }
        return counts
    }

    /// Nodes a block's scheduled copies are going to.
    func pendingTargets(_ blockId: UInt64) -> [UInt16] {
        guard let copies = pendingReplications[blockId] else { return [] }
        return copies.flatMap(\.targets)
    }

    // MARK: - Administration

    /// How an administrator's name for a node resolved.
    public enum NodeLookup: Equatable {
        case found(UInt16)
        case unknown
        /// Several nodes answer to the name (their `host:port` addresses).
        case ambiguous([String])
    }

    /// Finds a node by its id, by `host:transfer-port`, or by host alone when only one node
    /// runs there. A host is its address or its host name.
    public func resolveNode(_ name: String) -> NodeLookup {
        if let index = nodeIndex[name] { return .found(index) }
        func address(_ node: Node) -> String { "\(node.info.ipAddress):\(node.info.transferPort)" }
        func hostMatches(_ node: Node, _ host: Substring) -> Bool { node.info.ipAddress == host || node.info.hostname == host }
        var matches: [UInt16]
        if let colon = name.lastIndex(of: ":"), let port = UInt32(name[name.index(after: colon)...]) {
            let host = name[..<colon]
            matches = nodes.indices.filter { hostMatches(nodes[$0], host) && nodes[$0].info.transferPort == port }.map { UInt16($0) }
        } else {
            matches = nodes.indices.filter { hostMatches(nodes[$0], Substring(name)) }.map { UInt16($0) }
        }
        // A node that registered again under a new id leaves its old, dead entry behind: the
        // live one is meant.
        if matches.count > 1 {
            let live = matches.filter { nodes[Int($0)].isAlive }
            if live.count == 1 { matches = live }
        }
        switch matches.count {
        case 0: return .unknown
        case 1: return .found(matches[0])
        default: return .ambiguous(matches.map { address(nodes[Int($0)]) })
        }
    }

    /// Starts decommissioning a node: it takes no new replicas and its blocks get copies on
    /// other nodes; the replication monitor marks it decommissioned once no block needs it. A
    /// dead node is decommissioned at once (its replicas are already being replaced). Nothing
    /// changes for a node already decommissioning or decommissioned.
    public mutating func startDecommission(_ index: UInt16) {
        decommissionRequests.insert(nodes[Int(index)].info.nodeID)
        guard nodes[Int(index)].adminState == .normal else { return }
        if nodes[Int(index)].isAlive {
            nodes[Int(index)].adminState = .decommissioning
            // Until the next pass counts them, every replica it holds may be needed.
            nodes[Int(index)].blocksToDecommission = nodes[Int(index)].blockCount
        } else {
            nodes[Int(index)].adminState = .decommissioned
        }
    }

    /// Returns a node to normal service. Blocks that now have more replicas in service than
    /// their replication lose the excess in the next replication pass.
    public mutating func stopDecommission(_ index: UInt16) {
        decommissionRequests.remove(nodes[Int(index)].info.nodeID)
        nodes[Int(index)].adminState = .normal
        nodes[Int(index)].blocksToDecommission = 0
    }

    /// Restores the administrator's decommission requests (kept by the name node across
    /// restarts): registered nodes among them start decommissioning, the others when they register.
    public mutating func restoreDecommissionRequests(_ nodeIds: Set<String>) {
        for nodeId in nodeIds {
            if let index = nodeIndex[nodeId] { startDecommission(index) } else { decommissionRequests.insert(nodeId) }
        }
    }

    /// Nodes whose volume failed or recovered since the last call (for the name node's log;
    /// either change alters where replicas may go, so replication is worth recomputing).
    public mutating func takeVolumeStateChanges() -> [(nodeId: String, failed: Bool, reason: String)] {
        var changes: [(nodeId: String, failed: Bool, reason: String)] = []
        for index in nodes.indices where nodes[index].info.volumeFailed != nodes[index].volumeFailureAnnounced {
            nodes[index].volumeFailureAnnounced = nodes[index].info.volumeFailed
            changes.append((nodes[index].info.nodeID, nodes[index].info.volumeFailed, nodes[index].info.volumeFailure))
        }
        return changes
    }

    // MARK: - Placement

    /// Picks up to `count` distinct nodes for new replicas: the writer's own node first when it
    /// is a data node that can take the block, then the least loaded of the others (ties broken
    /// at random). Only nodes in service with room for `requiredBytes` (a block's size, as HDFS
    /// asks) qualify: not decommissioning or decommissioned, not with a failed volume, not full.
    /// A node that reports no capacity at all (its disk could not be measured) is not judged full.
    public func chooseTargets(
        count: Int, writer: UInt16?, excluding: Set<UInt16>, requiredBytes: UInt64, using generator: inout some RandomNumberGenerator
    ) -> [UInt16] {
        var candidates = nodes.indices.map { UInt16($0) }.filter { index in
            let node = nodes[Int(index)]
            return isInService(index) && !excluding.contains(index) && (node.info.remaining >= requiredBytes || node.info.capacity == 0)
        }
        var chosen: [UInt16] = []
        if let writer, let position = candidates.firstIndex(of: writer) {
            chosen.append(writer)
            candidates.remove(at: position)
        }
        candidates.shuffle(using: &generator)
        candidates.sort { nodes[Int($0)].blockCount < nodes[Int($1)].blockCount }
        chosen.append(contentsOf: candidates.prefix(max(0, count - chosen.count)))
        return Array(chosen.prefix(count))
    }

    // MARK: - Replicas

    /// Nodes holding a good replica of a block, live ones only: nodes in service first (`reader`
    /// first among them), then decommissioning and decommissioned nodes and nodes with a failed
    /// volume, which still serve reads but are used last (as HDFS sorts them).
    public func locations(of blockId: UInt64, reader: UInt16? = nil) -> [UInt16] {
        guard let entry = replicas[blockId] else { return [] }
        let damaged = corrupt[blockId] ?? []
        let good = replicaNodes(blockId, entry).filter { isLiveReplica($0, of: blockId) && !damaged.contains($0) }
        var inService = good.filter(isInService)
        if let reader, let position = inService.firstIndex(of: reader) {
            inService.remove(at: position)
            inService.insert(reader, at: 0)
        }
        return inService + good.filter { !isInService($0) }
    }

    public func isCorrupt(_ blockId: UInt64) -> Bool {
        guard let entry = replicas[blockId] else { return false }
        guard let damaged = corrupt[blockId], !damaged.isEmpty else { return false }
        return replicaNodes(blockId, entry).allSatisfy { damaged.contains($0) || !isLiveReplica($0, of: blockId) }
    }

    /// Bytes the block takes on disk over all its live replicas.
    public func storedBytes(of blockId: UInt64) -> UInt64 {
        guard let entry = replicas[blockId] else { return 0 }
        return entry.storedBytes * UInt64(replicaNodes(blockId, entry).filter { isLiveReplica($0, of: blockId) }.count)
    }

    /// Every node holding a replica of a block, the inline four and any extra ones.
    func replicaNodes(_ blockId: UInt64, _ entry: Replicas) -> [UInt16] {
        var holding = Array(entry.nodes)
        if holding.count == NodeList.capacity, let extra = extraReplicaNodes[blockId] { holding += extra }
        return holding
    }

    /// Replaces the nodes holding a block (which must be in `replicas`).
    mutating func setReplicaNodes(_ blockId: UInt64, _ holding: [UInt16]) {
        replicas[blockId]!.nodes = NodeList(holding.prefix(NodeList.capacity))
        extraReplicaNodes[blockId] = holding.count > NodeList.capacity ? Array(holding.dropFirst(NodeList.capacity)) : nil
    }

    /// Records that `node` holds a replica of a block the namespace knows (checks done by the caller).
    mutating func addReplica(_ blockId: UInt64, node: UInt16, storedBytes: UInt64) {
        var entry = replicas[blockId] ?? Replicas()
        if storedBytes > 0 { entry.storedBytes = storedBytes }
        replicas[blockId] = entry
        var holding = replicaNodes(blockId, entry)
        if !holding.contains(node) {
            holding.append(node)
            setReplicaNodes(blockId, holding)
            nodes[Int(node)].blockCount += 1
        }
        if !blockReportsInProgress.isEmpty, blockReportsInProgress[node] != nil {
            blockReportsInProgress[node]!.present.insert(blockId)
            blockReportsInProgress[node]!.removed.remove(blockId)
        }
        if !deadNodeSweeps.isEmpty, deadNodeSweeps[node] != nil { deadNodeSweeps[node]!.kept.insert(blockId) }
        if var copies = pendingReplications[blockId] {
            // A copy is done (and frees its source's slot) once every target has its replica.
            for position in copies.indices { copies[position].targets.removeAll { $0 == node } }
            copies.removeAll { $0.targets.isEmpty }
            pendingReplications[blockId] = copies.isEmpty ? nil : copies
        }
    }

    mutating func removeReplica(_ blockId: UInt64, node: UInt16) {
        guard let entry = replicas[blockId] else { return }
        var holding = replicaNodes(blockId, entry)
        guard let position = holding.firstIndex(of: node) else { return }
        holding.remove(at: position)
        setReplicaNodes(blockId, holding)
        if writtenReplicas[blockId] != nil { writtenReplicas[blockId]!.removeAll { $0.node == node } }
        if var damaged = corrupt[blockId] {
            damaged.removeAll { $0 == node }
            corrupt[blockId] = damaged.isEmpty ? nil : damaged
        }
        nodes[Int(node)].blockCount -= 1
    }

    /// Schedules deletion of a replica on its node.
    mutating func invalidate(_ block: Strata_Wire_ExtendedBlock, on node: UInt16) {
        nodes[Int(node)].pendingInvalidations.append(block)
        nodes[Int(node)].scheduledDeletions[block.blockID, default: 0] += 1
        noteDeleted(block.blockID, on: node)
    }

    /// A node's replica is deleted or to be deleted: a chunk of its full report in progress that
    /// lists it (the report was made before) does not bring it back.
    mutating func noteDeleted(_ blockId: UInt64, on node: UInt16) {
        guard !blockReportsInProgress.isEmpty, blockReportsInProgress[node] != nil else { return }
        blockReportsInProgress[node]!.removed.insert(blockId)
        blockReportsInProgress[node]!.present.remove(blockId)
    }

    /// A block was removed from the namespace: every replica is to be deleted.
    public mutating func blockRemoved(_ blockId: UInt64) {
        writtenReplicas[blockId] = nil
        guard let entry = replicas[blockId] else { return }
        let holding = replicaNodes(blockId, entry)
        replicas[blockId] = nil
        extraReplicaNodes[blockId] = nil
        pendingReplications[blockId] = nil
        corrupt[blockId] = nil
        var block = Strata_Wire_ExtendedBlock()
        block.blockID = blockId
        for node in holding {
            nodes[Int(node)].blockCount -= 1
            if nodes[Int(node)].isAlive { invalidate(block, on: node) }
        }
    }

    /// A replica was found damaged (by a reader or the node's scanner). It stops being served;
    /// once a good copy exists elsewhere the replication monitor deletes it.
    public mutating func markCorrupt(_ blockId: UInt64, nodeId: String) {
        guard let node = nodeIndex[nodeId], let entry = replicas[blockId], replicaNodes(blockId, entry).contains(node) else { return }
        var damaged = corrupt[blockId] ?? []
        if !damaged.contains(node) { damaged.append(node) }
        corrupt[blockId] = damaged
    }

    /// Reconciles one reported replica with the namespace's record of its block. Returns false
    /// when the replica is not wanted (deleted file, old generation, wrong length) and was
    /// scheduled for deletion.
    @discardableResult
    public mutating func processReportedReplica(
        _ reported: Strata_Wire_ReportedBlock, node: UInt16, record: BlockRecordView?
    ) -> Bool {
        let block = reported.block
        guard let record else {
            invalidate(block, on: node)
            removeReplica(block.blockID, node: node)
            return false
        }
        let stale = block.generationStamp < record.oldestValidStamp
        let wrongLength = record.isComplete && reported.state == .finalized && block.numBytes != record.numBytes
        // A replica still unfinished while its block is complete was left behind by a write that
        // went on without this node (pipeline recovery): it is stale however long it is.
        let leftBehind = record.isComplete && reported.state == .beingWritten
        if stale || wrongLength || leftBehind {
            invalidate(block, on: node)
            removeReplica(block.blockID, node: node)
            return false
        }
        if !record.isComplete {
            var written = writtenReplicas[block.blockID] ?? []
            written.removeAll { $0.node == node }
            written.append(
                WrittenReplica(
                    node: node, generationStamp: block.generationStamp, numBytes: block.numBytes, isFinalized: reported.state == .finalized))
            writtenReplicas[block.blockID] = written
        }
        addReplica(block.blockID, node: node, storedBytes: reported.storedBytes)
        return true
    }

    /// Whether a block being written has a replica its writer may close it on: finished, under
    /// the block's current generation stamp and at the writer's length, on a live node, not
    /// damaged. (A replica still being written, e.g. one a restarted node reported, does not count:
    /// it may hold fewer bytes than the writer sent, or none.)
    public func hasFinishedReplica(_ blockId: UInt64, generationStamp: UInt64, numBytes: UInt64) -> Bool {
        guard let entry = replicas[blockId] else { return false }
        let holding = replicaNodes(blockId, entry)
        let damaged = corrupt[blockId] ?? []
        return (writtenReplicas[blockId] ?? []).contains {
            $0.isFinished(generationStamp: generationStamp, numBytes: numBytes) && holding.contains($0.node)
                && isLiveReplica($0.node, of: blockId) && !damaged.contains($0.node)
        }
    }

    /// A block being written is complete at `generationStamp` and `numBytes`: its locations are
    /// now the replicas reported finished at both; the others (still being written, or of an
    /// older stamp) stop being locations. A node whose report of its finished replica is still
    /// to come adds it then.
    public mutating func completeBlock(_ blockId: UInt64, generationStamp: UInt64, numBytes: UInt64) {
        let written = writtenReplicas.removeValue(forKey: blockId) ?? []
        guard let entry = replicas[blockId] else { return }
        for node in replicaNodes(blockId, entry)
        where !written.contains(where: { $0.node == node && $0.isFinished(generationStamp: generationStamp, numBytes: numBytes) }) {
            removeReplica(blockId, node: node)
        }
    }

    /// An incremental report: replicas the node received are reconciled as in a full report,
    /// those it deleted are forgotten (and stay so for its full report in progress, if any).
    public mutating func processIncrementalReport(
        received: [Strata_Wire_ReportedBlock], deleted: [Strata_Wire_ExtendedBlock], node: UInt16,
        record: (UInt64) -> BlockRecordView?
    ) {
        for replica in received {
            processReportedReplica(replica, node: node, record: record(replica.block.blockID))
        }
        for block in deleted {
            noteDeleted(block.blockID, on: node)
            removeReplica(block.blockID, node: node)
        }
    }

    // MARK: - Full block reports

    /// One full block report of a node, processed a chunk at a time (`beginBlockReport`).
    public struct BlockReportTicket: Sendable, Equatable {
        public let node: UInt16
        let number: UInt64
    }

    /// What became of a full report, as its next step finds it.
    public enum BlockReportStatus: Sendable, Equatable {
        /// It is the node's report in progress: the step was done.
        case current
        /// A later full report of the same node began: that one does the work, this one stops.
        case replaced
        /// The node died or registered again since the report began: the report says nothing
        /// reliable about what the node holds now, and stops (the node reports again once it is
        /// registered).
        case abandoned
    }

    /// What the name node learnt of a node's replicas since its full report in progress began.
    /// The report tells what the node held when it was made; these tell what happened since, so
    /// that a chunk processed later neither undoes an incremental report nor brings back a
    /// replica deleted meanwhile. A block is in at most one of the two sets.
    struct BlockReportProgress {
        let number: UInt64
        /// Blocks the node holds by the report's chunks so far or by reports since it began: the
        /// sweep keeps them, and a later chunk's older news of them is ignored.
        var present: Set<UInt64> = []
        /// Blocks whose replica on the node was deleted or scheduled for deletion since the
        /// report began: a later chunk does not add them back.
        var removed: Set<UInt64> = []
    }

    /// Starts a full report of `node`: `processBlockReportChunk` with every reported replica,
    /// `sweepBlockReportChunk` with every block id, then `finishBlockReport`. The name node takes
    /// its lock once per chunk; incremental reports, deletions and replication work of the same
    /// node may come between chunks. A later full report of the node replaces this one.
    public mutating func beginBlockReport(node: UInt16) -> BlockReportTicket {
        let number = nextBlockReportNumber
        nextBlockReportNumber += 1
        nodes[Int(node)].latestBlockReport = number
        blockReportsInProgress[node] = BlockReportProgress(number: number)
        return BlockReportTicket(node: node, number: number)
    }

    public func status(of ticket: BlockReportTicket) -> BlockReportStatus {
        if blockReportsInProgress[ticket.node]?.number == ticket.number { return .current }
        return nodes[Int(ticket.node)].latestBlockReport > ticket.number ? .replaced : .abandoned
    }

    /// Reconciles some reported replicas of a full report. Replicas scheduled for deletion stay
    /// gone, even if the node reports them before it has deleted them (HDFS ignores them the
    /// same way); so do those deleted since the report began, and those reported again since
    /// (that news is newer than the report's).
    @discardableResult
    public mutating func processBlockReportChunk(
        _ reported: some Sequence<Strata_Wire_ReportedBlock>, of ticket: BlockReportTicket,
        record: (UInt64) -> BlockRecordView?
    ) -> BlockReportStatus {
        let status = status(of: ticket)
        guard status == .current else { return status }
        let node = ticket.node
        for replica in reported {
            let id = replica.block.blockID
            if nodes[Int(node)].scheduledDeletions[id] != nil { continue }
            let progress = blockReportsInProgress[node]!
            if progress.removed.contains(id) || progress.present.contains(id) { continue }
            // A replica kept is noted present (`addReplica`), one refused deleted (`invalidate`).
            processReportedReplica(replica, node: node, record: record(id))
        }
        return .current
    }

    /// Forgets the node's replicas of the blocks among `ids` that its report did not list and
    /// that it did not report since. Called once every reported replica was processed, with
    /// every block id in turn.
    @discardableResult
    public mutating func sweepBlockReportChunk(_ ids: some Sequence<UInt64>, of ticket: BlockReportTicket) -> BlockReportStatus {
        let status = status(of: ticket)
        guard status == .current else { return status }
        let node = ticket.node
        for id in ids {
            guard let entry = replicas[id], replicaNodes(id, entry).contains(node),
                !blockReportsInProgress[node]!.present.contains(id)
            else { continue }
            removeReplica(id, node: node)
        }
        return .current
    }

    /// Ends a full report once swept: the name node now knows every replica the node holds.
    @discardableResult
    public mutating func finishBlockReport(_ ticket: BlockReportTicket) -> BlockReportStatus {
        let status = status(of: ticket)
        guard status == .current else { return status }
        blockReportsInProgress[ticket.node] = nil
        nodes[Int(ticket.node)].blockReportReceived = true
        // Every replica the node is known to hold now it reported or received since the report
        // began, after it last registered: none of those its death left to forget remains.
        deadNodeSweeps[ticket.node] = nil
        return .current
    }

    /// A full block report at once: every reported replica is reconciled, and replicas the name
    /// node thought the node had but it did not report are forgotten. (The name node goes a
    /// chunk at a time instead: `beginBlockReport`.)
    public mutating func processBlockReport(
        _ reported: [Strata_Wire_ReportedBlock], node: UInt16, record: (UInt64) -> BlockRecordView?
    ) {
        let ticket = beginBlockReport(node: node)
        processBlockReportChunk(reported, of: ticket, record: record)
        sweepBlockReportChunk(Array(replicas.keys), of: ticket)
        finishBlockReport(ticket)
    }

    // MARK: - Replication monitor

    /// A replication pass under way: what scanning the blocks so far has found. A pass scans the
    /// blocks a chunk at a time (`scanForReplication`), so the name node never holds its lock for
    /// a scan of every block, and acts on what it found at the end (`finishReplicationPass`).
    public struct ReplicationPass {
        var underReplicated: [(id: UInt64, record: BlockRecordView, sources: [UInt16], inService: Int, missing: Int)] = []
        var deletions = 0
        /// Blocks that still need each decommissioning node's replica, by node index.
        var neededFrom: [Int]
        /// Blocks scanned so far.
        public internal(set) var scannedBlocks = 0
    }

    /// One pass over every block: schedules copies for blocks with fewer good replicas in service
    /// than their replication (those with the fewest first: none left but on decommissioning
    /// nodes, then one), deletions for excess and corrupt replicas, and finishes the
    /// decommissioning of nodes no block needs any more. `blocks` yields (block id, record,
    /// replication) for every block of the namespace.
    ///
    /// A node is the source of at most `maximumTransfersPerNode` copies in flight: a scheduled
    /// copy counts until its replicas arrive or it times out (then it is scheduled again).
    ///
    /// The same as `beginReplicationPass`, one `scanForReplication` of every block and
    /// `finishReplicationPass`, which the name node calls with the blocks in chunks.
    public mutating func computeReplicationWork(
        now: MonotonicInstant, blocks: [(UInt64, BlockRecordView, Int)], using generator: inout some RandomNumberGenerator
    ) -> (scheduledCopies: Int, scheduledDeletions: Int, decommissioned: [String]) {
        var pass = beginReplicationPass(now: now)
        scanForReplication(blocks, in: &pass, using: &generator)
        return finishReplicationPass(pass, now: now, using: &generator)
    }

    /// Starts a pass: copies that did not arrive in time are dropped, so the pass schedules them again.
    public mutating func beginReplicationPass(now: MonotonicInstant) -> ReplicationPass {
        expirePendingCopies(now: now)
        return ReplicationPass(neededFrom: [Int](repeating: 0, count: nodes.count))
    }

    /// Scans some blocks of a pass: deletes excess and corrupt replicas at once, and notes blocks
    /// that need copies and decommissioning nodes whose replicas are still needed.
    public mutating func scanForReplication(
        _ blocks: some Sequence<(UInt64, BlockRecordView, Int)>, in pass: inout ReplicationPass,
        using generator: inout some RandomNumberGenerator
    ) {
        // Nodes may have registered since the pass began.
        if pass.neededFrom.count < nodes.count { pass.neededFrom += [Int](repeating: 0, count: nodes.count - pass.neededFrom.count) }
        for (id, record, replication) in blocks {
            pass.scannedBlocks += 1
            guard let entry = replicas[id] else { continue }
            let live = replicaNodes(id, entry).filter { isLiveReplica($0, of: id) }
            let damaged = corrupt[id] ?? []
            let good = live.filter { !damaged.contains($0) }
            let inService = good.filter(isInService)
            guard record.isComplete else {
                // A block still being written needs a decommissioning node only while no node in
                // service has a replica (HDFS: a block under construction may be left with its
                // minimum replication).
                if inService.isEmpty {
                    for node in good where nodes[Int(node)].adminState == .decommissioning { pass.neededFrom[Int(node)] += 1 }
                }
                continue
            }
            if inService.count < replication {
                for node in good where nodes[Int(node)].adminState == .decommissioning { pass.neededFrom[Int(node)] += 1 }
            }
            let pending = pendingTargets(id).count
            if inService.count + pending < replication && !good.isEmpty {
                pass.underReplicated.append((id, record, good, inService.count, replication - inService.count - pending))
            }
            // A corrupt replica goes once enough good copies exist; or, while a good one is left,
            // when no other node could take a copy (every node holds the block, as with three
            // nodes and replication three), so that its node can take one. It is never served,
            // so deleting it loses nothing. The copy then waits for a later pass, after the
            // node has had the deletion. A node awaiting a copy of the block is one that could
            // take it: while that copy is under way (it may still fail, at a source not yet
            // found damaged), no damaged replica is deleted to make room.
            let damagedLive = damaged.filter(live.contains)
            let makeRoom = !damagedLive.isEmpty && !good.isEmpty && good.count < replication
                && chooseTargets(count: 1, writer: nil, excluding: Set(live), requiredBytes: record.numBytes, using: &generator).isEmpty
            if makeRoom, pass.underReplicated.last?.id == id { pass.underReplicated.removeLast() }
            if !damagedLive.isEmpty && (good.count >= replication || makeRoom) {
                for node in damagedLive {
                    var block = Strata_Wire_ExtendedBlock()
                    block.blockID = id
                    block.generationStamp = record.generationStamp
                    invalidate(block, on: node)
                    removeReplica(id, node: node)
                    pass.deletions += 1
                }
            }
            if inService.count > replication && pending == 0 {
                // Remove excess replicas from the most loaded nodes. Replicas on nodes out of
                // service are not excess: they are kept until those nodes leave or come back.
                let excess = inService.sorted { nodes[Int($0)].blockCount > nodes[Int($1)].blockCount }.prefix(inService.count - replication)
                for node in excess {
                    var block = Strata_Wire_ExtendedBlock()
                    block.blockID = id
                    block.generationStamp = record.generationStamp
                    block.numBytes = record.numBytes
                    invalidate(block, on: node)
                    removeReplica(id, node: node)
                    pass.deletions += 1
                }
            }
        }
    }

    /// Ends a pass: schedules copies for the blocks it found short of replicas, those with the
    /// fewest first, and finishes decommissioning nodes no block needs any more. Blocks and nodes
    /// may have changed since they were scanned: removed blocks and dead sources are skipped.
    public mutating func finishReplicationPass(
        _ pass: ReplicationPass, now: MonotonicInstant, using generator: inout some RandomNumberGenerator
    ) -> (scheduledCopies: Int, scheduledDeletions: Int, decommissioned: [String]) {
        var neededFrom = pass.neededFrom
        if neededFrom.count < nodes.count { neededFrom += [Int](repeating: 0, count: nodes.count - neededFrom.count) }
        let underReplicated = pass.underReplicated.sorted { $0.inService < $1.inService }
        var copies = 0
        var inFlight = copiesInFlight()
        for item in underReplicated where replicas[item.id] != nil {
            let available = item.sources.filter { isLiveReplica($0, of: item.id) && inFlight[Int($0)] < settings.maximumTransfersPerNode }
            guard let source = available.min(by: { (inFlight[Int($0)], sourceRank($0)) < (inFlight[Int($1)], sourceRank($1)) }) else { continue }
            let holding = Set(replicas[item.id].map { replicaNodes(item.id, $0) } ?? []).union(pendingTargets(item.id))
            let targets = chooseTargets(
                count: item.missing, writer: nil, excluding: holding, requiredBytes: item.record.numBytes, using: &generator)
            guard !targets.isEmpty else { continue }
            var transfer = Strata_Wire_DatanodeCommand.Transfer()
            transfer.block.blockID = item.id
            transfer.block.generationStamp = item.record.generationStamp
            transfer.block.numBytes = item.record.numBytes
            transfer.targets = targets.map { nodeInfo($0) }
            nodes[Int(source)].pendingTransfers.append(transfer)
            inFlight[Int(source)] += 1
            pendingReplications[item.id, default: []].append(
                PendingCopy(source: source, targets: targets, deadline: now.advanced(byMilliseconds: settings.pendingReplicationTimeoutMs)))
            copies += 1
        }
        var decommissioned: [String] = []
        for index in nodes.indices where nodes[index].adminState == .decommissioning {
            nodes[index].blocksToDecommission = neededFrom[index]
            // A dead node's replicas are already forgotten (copied from elsewhere as for any dead
            // node); a live one must have reported all it holds first.
            if neededFrom[index] == 0 && (nodes[index].blockReportReceived || !nodes[index].isAlive) {
                nodes[index].adminState = .decommissioned
                decommissioned.append(nodes[index].info.nodeID)
            }
        }
        return (copies, pass.deletions, decommissioned)
    }

    /// Drops copies that did not arrive in time (with their commands, if still queued), so the
    /// next pass schedules them again and their sources' slots are free.
    mutating func expirePendingCopies(now: MonotonicInstant) {
        for (id, copies) in pendingReplications where copies.contains(where: { $0.deadline <= now }) {
            for copy in copies where copy.deadline <= now {
                nodes[Int(copy.source)].pendingTransfers.removeAll { $0.block.blockID == id }
            }
            let kept = copies.filter { $0.deadline > now }
            pendingReplications[id] = kept.isEmpty ? nil : kept
        }
    }

    /// Which of equally busy sources to copy from: a decommissioning node first (it takes no
    /// writes, and its replicas must move anyway), then a node in service, then the others
    /// (decommissioned, or with a failed volume whose reads may fail).
    func sourceRank(_ index: UInt16) -> Int {
        let node = nodes[Int(index)]
        if node.adminState == .decommissioning && !node.info.volumeFailed { return 0 }
        return isInService(index) ? 1 : 2
    }

    /// Good replicas of a block on live nodes out of service (decommissioning, decommissioned, or
    /// with a failed volume): readable, but not counted toward its replication.
    public func outOfServiceReplicas(of blockId: UInt64) -> Int {
        guard let entry = replicas[blockId] else { return 0 }
        let damaged = corrupt[blockId] ?? []
        return replicaNodes(blockId, entry).filter { isLiveReplica($0, of: blockId) && !isInService($0) && !damaged.contains($0) }.count
    }

    /// Replication health of a block, for fsck.
    public func health(of blockId: UInt64, replication: Int) -> (live: Int, corrupt: Int) {
        guard let entry = replicas[blockId] else { return (0, 0) }
        let live = replicaNodes(blockId, entry).filter { isLiveReplica($0, of: blockId) }
        let damaged = corrupt[blockId] ?? []
        return (live.filter { !damaged.contains($0) }.count, live.filter { damaged.contains($0) }.count)
    }
}
