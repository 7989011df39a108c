import StrataCore
import StrataWire

/// The data nodes the name node knows, where each block's replicas are, and the work that
/// keeps every block at its replication: placement of new blocks, copies for under-replicated
/// blocks, deletions for excess and deleted ones. Pure logic: time comes in as `now`
/// (milliseconds), randomness from the caller's generator, and the work comes out as commands
/// the name node hands to data nodes in heartbeat answers.
public struct BlockManager {
    public struct Settings: Sendable {
        /// A node that has not sent a heartbeat for this long is dead.
        public var heartbeatTimeoutMs: Int64 = 30_000
        public var heartbeatIntervalMs: Int64 = 3_000
        public var blockReportIntervalMs: Int64 = 60_000
        /// How long a scheduled copy may take before it is scheduled again elsewhere.
        public var pendingReplicationTimeoutMs: Int64 = 60_000
        /// Copies one node sends at once (HDFS `dfs.namenode.replication.max-streams`).
        public var maximumTransfersPerNode = 4
        /// Deletions handed to one node per heartbeat (HDFS `dfs.block.invalidate.limit`).
        public var maximumInvalidationsPerHeartbeat = 1000
        public init() {}
    }

    public struct Node {
        public var info: Strata_Wire_DatanodeInfo
        public var lastHeartbeatMs: Int64
        public var isAlive: Bool
        public var blockCount = 0
        var pendingInvalidations: [Strata_Wire_ExtendedBlock] = []
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

    struct PendingReplication {
        var targets: [UInt16]
        var deadlineMs: Int64
    }

    public let settings: Settings
    public private(set) var nodes: [Node] = []
    var nodeIndex: [String: UInt16] = [:]
    var replicas: [UInt64: Replicas] = [:]
    /// Nodes beyond the first four holding a block (rare: replication above four).
    var extraReplicaNodes: [UInt64: [UInt16]] = [:]
    /// Nodes whose replica of a block is known to be damaged (rare, so kept apart).
    var corrupt: [UInt64: [UInt16]] = [:]
    var pendingReplications: [UInt64: PendingReplication] = [:]

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    // MARK: - Nodes

    /// Registers a node (or a node coming back): it is alive from now on.
    public mutating func register(_ info: Strata_Wire_DatanodeInfo, now: Int64) -> UInt16 {
        if let index = nodeIndex[info.nodeID] {
            nodes[Int(index)].info = info
            nodes[Int(index)].lastHeartbeatMs = now
            nodes[Int(index)].isAlive = true
            return index
        }
        let index = UInt16(nodes.count)
        nodes.append(Node(info: info, lastHeartbeatMs: now, isAlive: true))
        nodeIndex[info.nodeID] = index
        return index
    }

    public func index(ofNode nodeId: String) -> UInt16? { nodeIndex[nodeId] }

    /// Records a heartbeat and returns the node's work; nil for a node that must register again.
    public mutating func heartbeat(_ request: Strata_Wire_HeartbeatRequest, now: Int64) -> Strata_Wire_DatanodeCommand? {
        guard let index = nodeIndex[request.nodeID], nodes[Int(index)].isAlive else { return nil }
        var node = nodes[Int(index)]
        node.lastHeartbeatMs = now
        node.info.capacity = request.capacity
        node.info.dfsUsed = request.dfsUsed
        node.info.remaining = request.remaining
        var command = Strata_Wire_DatanodeCommand()
        let invalidations = min(node.pendingInvalidations.count, settings.maximumInvalidationsPerHeartbeat)
        command.invalidate = Array(node.pendingInvalidations.prefix(invalidations))
        node.pendingInvalidations.removeFirst(invalidations)
        command.transfers = node.pendingTransfers
        node.pendingTransfers = []
        command.reportBlocks = node.requestBlockReport
        node.requestBlockReport = false
        nodes[Int(index)] = node
        return command
    }

    /// Marks nodes silent for longer than the timeout as dead and forgets their replicas, so
    /// their blocks become under-replicated. Returns the nodes that died.
    public mutating func checkHeartbeats(now: Int64) -> [String] {
        var died: [UInt16] = []
        for index in nodes.indices where nodes[index].isAlive && now - nodes[index].lastHeartbeatMs > settings.heartbeatTimeoutMs {
            nodes[index].isAlive = false
            nodes[index].pendingInvalidations = []
            nodes[index].pendingTransfers = []
            died.append(UInt16(index))
        }
        guard !died.isEmpty else { return [] }
        let dead = Set(died)
        for (id, entry) in replicas {
            let holding = replicaNodes(id, entry)
            if holding.contains(where: dead.contains) { setReplicaNodes(id, holding.filter { !dead.contains($0) }) }
        }
        for (id, var nodes) in corrupt where nodes.contains(where: dead.contains) {
            nodes.removeAll(where: dead.contains)
            corrupt[id] = nodes.isEmpty ? nil : nodes
        }
        for index in died { nodes[Int(index)].blockCount = 0 }
        return died.map { nodes[Int($0)].info.nodeID }
    }

    public var liveNodeCount: Int { nodes.filter(\.isAlive).count }
    public var deadNodeCount: Int { nodes.count - liveNodeCount }

    public func nodeInfo(_ index: UInt16) -> Strata_Wire_DatanodeInfo {
        var info = nodes[Int(index)].info
        info.lastHeartbeatMs = nodes[Int(index)].lastHeartbeatMs
        info.blockCount = UInt64(nodes[Int(index)].blockCount)
        info.state = nodes[Int(index)].isAlive ? "live" : "dead"
        return info
    }

    // MARK: - Placement

    /// Picks up to `count` distinct live nodes for new replicas: the writer's own node first
    /// when it is a live data node, then the least loaded of the others (ties broken at random).
    public func chooseTargets(
        count: Int, writer: UInt16?, excluding: Set<UInt16>, requiredBytes: UInt64, using generator: inout some RandomNumberGenerator
    ) -> [UInt16] {
        var candidates = nodes.indices.map { UInt16($0) }.filter { index in
            let node = nodes[Int(index)]
            return node.isAlive && !excluding.contains(index) && (node.info.remaining >= requiredBytes || node.info.capacity == 0)
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

    /// Nodes holding a good replica of a block, live ones only, nearest to `reader` first.
    public func locations(of blockId: UInt64, reader: UInt16? = nil) -> [UInt16] {
        guard let entry = replicas[blockId] else { return [] }
        let damaged = corrupt[blockId] ?? []
        var good = replicaNodes(blockId, entry).filter { nodes[Int($0)].isAlive && !damaged.contains($0) }
        if let reader, let position = good.firstIndex(of: reader) {
            good.remove(at: position)
            good.insert(reader, at: 0)
        }
        return good
    }

    public func isCorrupt(_ blockId: UInt64) -> Bool {
        guard let entry = replicas[blockId] else { return false }
        guard let damaged = corrupt[blockId], !damaged.isEmpty else { return false }
        return replicaNodes(blockId, entry).allSatisfy { damaged.contains($0) || !nodes[Int($0)].isAlive }
    }

    /// Bytes the block takes on disk over all its live replicas.
    public func storedBytes(of blockId: UInt64) -> UInt64 {
        guard let entry = replicas[blockId] else { return 0 }
        return entry.storedBytes * UInt64(replicaNodes(blockId, entry).filter { nodes[Int($0)].isAlive }.count)
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
        if var pending = pendingReplications[blockId] {
            pending.targets.removeAll { $0 == node }
            pendingReplications[blockId] = pending.targets.isEmpty ? nil : pending
        }
    }

    mutating func removeReplica(_ blockId: UInt64, node: UInt16) {
        guard let entry = replicas[blockId] else { return }
        var holding = replicaNodes(blockId, entry)
        guard let position = holding.firstIndex(of: node) else { return }
        holding.remove(at: position)
        setReplicaNodes(blockId, holding)
        if var damaged = corrupt[blockId] {
            damaged.removeAll { $0 == node }
            corrupt[blockId] = damaged.isEmpty ? nil : damaged
        }
        nodes[Int(node)].blockCount -= 1
    }

    /// Schedules deletion of a replica on its node.
    mutating func invalidate(_ block: Strata_Wire_ExtendedBlock, on node: UInt16) {
        nodes[Int(node)].pendingInvalidations.append(block)
    }

    /// A block was removed from the namespace: every replica is to be deleted.
    public mutating func blockRemoved(_ blockId: UInt64) {
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
        let stale = block.generationStamp < record.generationStamp
        let wrongLength = record.isComplete && reported.state == .finalized && block.numBytes != record.numBytes
        // A replica still unfinished while its block is complete was left behind by a write that
        // went on without this node (pipeline recovery): it is stale however long it is.
        let leftBehind = record.isComplete && reported.state == .beingWritten
        if stale || wrongLength || leftBehind {
            invalidate(block, on: node)
            removeReplica(block.blockID, node: node)
            return false
        }
        addReplica(block.blockID, node: node, storedBytes: reported.storedBytes)
        return true
    }

    /// A full block report: every reported replica is reconciled, and replicas the name node
    /// thought the node had but it did not report are forgotten.
    public mutating func processBlockReport(
        _ reported: [Strata_Wire_ReportedBlock], node: UInt16, record: (UInt64) -> BlockRecordView?
    ) {
        var present = Set<UInt64>()
        present.reserveCapacity(reported.count)
        for replica in reported {
            if processReportedReplica(replica, node: node, record: record(replica.block.blockID)) {
                present.insert(replica.block.blockID)
            }
        }
        for (id, entry) in replicas where !present.contains(id) && replicaNodes(id, entry).contains(node) {
            removeReplica(id, node: node)
        }
    }

    // MARK: - Replication monitor

    /// One pass over every block: schedules copies for blocks with fewer good live replicas than
    /// their replication (those with the fewest first) and deletions for excess and corrupt
    /// replicas. `blocks` yields (block id, record, replication) for every block of the namespace.
    public mutating func computeReplicationWork(
        now: Int64, blocks: [(UInt64, BlockRecordView, Int)], using generator: inout some RandomNumberGenerator
    ) -> (scheduledCopies: Int, scheduledDeletions: Int) {
        // Copies that did not arrive in time are scheduled again.
        pendingReplications = pendingReplications.filter { $0.value.deadlineMs > now }
        var underReplicated: [(id: UInt64, record: BlockRecordView, live: [UInt16], missing: Int)] = []
        var deletions = 0
        for (id, record, replication) in blocks where record.isComplete {
            guard let entry = replicas[id] else { continue }
            let live = replicaNodes(id, entry).filter { nodes[Int($0)].isAlive }
            let damaged = corrupt[id] ?? []
            let good = live.filter { !damaged.contains($0) }
            let pending = pendingReplications[id]?.targets.count ?? 0
            if good.count + pending < replication && !good.isEmpty {
                underReplicated.append((id, record, good, replication - good.count - pending))
            }
            // A corrupt replica goes once enough good copies exist.
            if !damaged.isEmpty && good.count >= replication {
                for node in damaged where live.contains(node) {
                    var block = Strata_Wire_ExtendedBlock()
                    block.blockID = id
                    block.generationStamp = record.generationStamp
                    invalidate(block, on: node)
                    removeReplica(id, node: node)
                    deletions += 1
                }
            }
            if good.count > replication && pending == 0 {
                // Remove excess replicas from the most loaded nodes.
                let excess = good.sorted { nodes[Int($0)].blockCount > nodes[Int($1)].blockCount }.prefix(good.count - replication)
                for node in excess {
                    var block = Strata_Wire_ExtendedBlock()
                    block.blockID = id
                    block.generationStamp = record.generationStamp
                    block.numBytes = record.numBytes
                    invalidate(block, on: node)
                    removeReplica(id, node: node)
                    deletions += 1
                }
            }
        }
        underReplicated.sort { $0.live.count < $1.live.count }
        var copies = 0
        var transfersPerNode: [UInt16: Int] = [:]
        for (index, node) in nodes.enumerated() { transfersPerNode[UInt16(index)] = node.pendingTransfers.count }
        for item in underReplicated {
            guard let source = item.live.min(by: { transfersPerNode[$0, default: 0] < transfersPerNode[$1, default: 0] }),
                transfersPerNode[source, default: 0] < settings.maximumTransfersPerNode
            else { continue }
            let holding = Set(replicas[item.id].map { replicaNodes(item.id, $0) } ?? []).union(pendingReplications[item.id]?.targets ?? [])
            let targets = chooseTargets(
                count: item.missing, writer: nil, excluding: holding, requiredBytes: item.record.numBytes, using: &generator)
            guard !targets.isEmpty else { continue }
            var transfer = Strata_Wire_DatanodeCommand.Transfer()
            transfer.block.blockID = item.id
            transfer.block.generationStamp = item.record.generationStamp
            transfer.block.numBytes = item.record.numBytes
            transfer.targets = targets.map { nodeInfo($0) }
            nodes[Int(source)].pendingTransfers.append(transfer)
            transfersPerNode[source, default: 0] += 1
            var pending = pendingReplications[item.id] ?? PendingReplication(targets: [], deadlineMs: 0)
            pending.targets += targets
            pending.deadlineMs = now + settings.pendingReplicationTimeoutMs
            pendingReplications[item.id] = pending
            copies += 1
        }
        return (copies, deletions)
    }

    /// Replication health of a block, for fsck.
    public func health(of blockId: UInt64, replication: Int) -> (live: Int, corrupt: Int) {
        guard let entry = replicas[blockId] else { return (0, 0) }
        let live = replicaNodes(blockId, entry).filter { nodes[Int($0)].isAlive }
        let damaged = corrupt[blockId] ?? []
        return (live.filter { !damaged.contains($0) }.count, live.filter { damaged.contains($0) }.count)
    }
}
