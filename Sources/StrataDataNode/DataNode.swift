import Foundation
import Logging
import NIOCore
import NIOPosix
import StrataBlockFormat
import StrataClient
import StrataCore
import StrataWire
import Synchronization

/// How a data node runs.
public struct DataNodeConfiguration: Sendable {
    /// Where replicas and the node's identity live.
    public var directory: String
    public var host: String = "127.0.0.1"
    /// The block transfer port (HDFS `dfs.datanode.address`, default 9866); 0 picks a free one.
    public var transferPort: Int = 9866
    public var nameNodeHost: String = "127.0.0.1"
    public var nameNodePort: Int = 8020
    /// How frames are encoded when this node compresses (a Strata client usually has already).
    public var frameOptions = FrameEncoderOptions()
    public var heartbeatIntervalMs: Int64 = 3_000
    public var blockReportIntervalMs: Int64 = 60_000
    /// The block scanner's read rate: every finished replica is verified in the background at
    /// most this fast (HDFS `dfs.block.scanner.volume.bytes.per.second`, 1 MiB/s); 0 turns it off.
    public var scanBytesPerSecond: Int = 1 << 20
    /// A replica the scanner verified is verified again no sooner than this (HDFS
    /// `dfs.datanode.scan.period.hours`, 504 hours: three weeks).
    public var scanPeriodMs: Int64 = 504 * 3_600_000

    public init(directory: String) {
        self.directory = directory
    }
}

/// A data node: stores replicas in its block store, serves block reads and pipeline writes on
/// its transfer port (Strata's protocol, and Hadoop's DataTransferProtocol:
/// `DataNode+HadoopTransfer.swift`), and reports to the name node (registration, heartbeats,
/// block reports), carrying out the deletions and copies the name node asks for.
public final class DataNode: Sendable {
    public let configuration: DataNodeConfiguration
    public let store: BlockStore
    /// This node's identity, kept in its directory so it survives restarts and port changes.
    public let nodeId: String
    let logger: Logger
    /// Every timeout and schedule of the node (heartbeats, block reports, volume checks, the
    /// scanner) is measured on this clock's monotonic time line.
    let clock: any Clock
    let group: any EventLoopGroup
    let threadPool: NIOThreadPool
    let nameNode: ServiceClient
    private let server = Mutex<TransferServer?>(nil)
    private let heartbeats = Mutex<Task<Void, Never>?>(nil)
    /// Copies and recoveries running in the background (`spawn`).
    private let background = Mutex<(closed: Bool, tasks: [Int: Task<Void, Never>], nextId: Int)>((false, [:], 0))
    let activeTransfers = Atomic<Int>(0)
    /// Verifies finished replicas in the background (`DataNode+Scanner.swift`).
    public let scanner = BlockScanner()
    private let advertisedHTTPPort = Atomic<Int>(0)
    /// The name node's server defaults, fetched once (for the frame size of blocks Hadoop
    /// clients write: `DataNode+HadoopWrite.swift`).
    let cachedServerDefaults = Mutex<Strata_Wire_ServerDefaults?>(nil)
    static let rpcUser = "datanode"

    public init(configuration: DataNodeConfiguration, group: any EventLoopGroup, logger: Logger, clock: any Clock = SystemClock()) throws {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.clock = clock
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        let idPath = configuration.directory + "/node-id"
        if let existing = try? String(contentsOfFile: idPath, encoding: .utf8), !existing.isEmpty {
            nodeId = existing.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            nodeId = UUID().uuidString
            try nodeId.write(toFile: idPath, atomically: true, encoding: .utf8)
        }
        store = try BlockStore(directory: configuration.directory)
        threadPool = NIOThreadPool(numberOfThreads: 4)
        threadPool.start()
        nameNode = ServiceClient(host: configuration.nameNodeHost, port: configuration.nameNodePort, group: group)
    }

    /// Starts the transfer server and the heartbeat loop. Returns the bound transfer port.
    @discardableResult
    public func start() async throws -> Int {
        let server = try await TransferServer.start(
            host: configuration.host, port: configuration.transferPort, group: group, logger: logger,
            sharedProtocols: [hadoopTransferProtocol]
        ) { [self] connection in
            await self.serve(connection)
        }
        self.server.withLock { $0 = server }
        let task = Task { [self] in await self.runHeartbeats() }
        heartbeats.withLock { $0 = task }
        startScanner()
        logger.info("data node serving", metadata: ["node": "\(nodeId)", "transfer": "\(configuration.host):\(server.port)", "replicas": "\(store.count)"])
        return server.port
    }

    public var transferPort: Int { server.withLock { $0?.port ?? 0 } }

    /// The port of this node's HTTP server (WebHDFS data side), which the node registers with the
    /// name node so that WebHDFS redirects can point at it. Set it before `start`.
    public var httpPort: Int {
        get { advertisedHTTPPort.load(ordering: .relaxed) }
        set { advertisedHTTPPort.store(newValue, ordering: .relaxed) }
    }

    public func shutdown() async {
        let heartbeatTask = heartbeats.withLock { task in
            defer { task = nil }
            return task
        }
        heartbeatTask?.cancel()
        scanner.cancel()
        let work = background.withLock { state in
            state.closed = true
            return Array(state.tasks.values)
        }
        for task in work { task.cancel() }
        let server = self.server.withLock { $0 }
        await server?.close()
        await nameNode.close()
        // After the name node client closed, so a report it was sending fails rather than wait.
        await scanner.stop()
        // Copies, recoveries and the heartbeat loop connect to other nodes: they finish before
        // this returns (and the event loops they use may be shut down), within a bound.
        await Self.wait(for: work + [heartbeatTask].compactMap { $0 }, atMostSeconds: 10)
        try? await threadPool.shutdownGracefully()
    }

    /// Runs `work` in the background until it ends or the node shuts down.
    func spawn(_ work: @escaping @Sendable () async -> Void) {
        background.withLock { state in
            guard !state.closed else { return }
            let id = state.nextId
            state.nextId += 1
            state.tasks[id] = Task { [self] in
                await work()
                _ = self.background.withLock { $0.tasks.removeValue(forKey: id) }
            }
        }
    }

    static func wait(for tasks: [Task<Void, Never>], atMostSeconds seconds: Double) async {
        guard !tasks.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for task in tasks { await task.value } }
            group.addTask { try? await Task.sleep(for: .seconds(seconds)) }
            await group.next()
            group.cancelAll()
        }
    }

    var info: Strata_Wire_DatanodeInfo {
        var info = Strata_Wire_DatanodeInfo()
        info.nodeID = nodeId
        info.hostname = configuration.host
        info.ipAddress = configuration.host
        info.transferPort = UInt32(transferPort)
        info.httpPort = UInt32(httpPort)
        let usage = store.usage()
        info.capacity = usage.capacity
        info.dfsUsed = usage.used
        info.remaining = usage.remaining
        return info
    }

    // MARK: - Name node

    func runHeartbeats() async {
        var registered = false
        var lastReportMs: Int64 = 0
        let volume = makeVolumeChecker()
        while !Task.isCancelled {
            let now = clock.now.milliseconds(since: .zero)
            let volumeStatus = volume.status(now: now, pool: threadPool)
            do {
                if !registered {
                    var request = Strata_Wire_RegisterRequest()
                    request.node = info
                    request.node.volumeFailed = volumeStatus.failed
                    request.node.volumeFailure = volumeStatus.reason
                    request.softwareVersion = StrataVersion.current
                    request.namespaceID = namespaceId ?? ""
                    let response: Strata_Wire_RegisterResponse = try await nameNode.call(.registerDatanode, request, user: Self.rpcUser)
                    try joinNamespace(response.namespaceID)
                    try await sendBlockReport()
                    registered = true
                    lastReportMs = now
                }
                var heartbeat = Strata_Wire_HeartbeatRequest()
                heartbeat.nodeID = nodeId
                let usage = store.usage()
                heartbeat.capacity = usage.capacity
                heartbeat.dfsUsed = usage.used
                heartbeat.remaining = usage.remaining
                heartbeat.activeTransfers = UInt32(activeTransfers.load(ordering: .relaxed))
                reportVolume(volumeStatus, in: &heartbeat)
                let response: Strata_Wire_HeartbeatResponse = try await nameNode.call(.sendHeartbeat, heartbeat, user: Self.rpcUser)
                let command = response.command
                if command.reregister {
                    registered = false
                    continue
                }
                // Copies and recoveries start first: a failure reporting the deletions below
                // must not lose them (the name node would wait out its timeout to ask again).
                for transfer in command.transfers {
                    spawn { [self] in await self.copy(transfer) }
                }
                for recovery in command.recoverBlocks {
                    spawn { [self] in await self.recoverBlock(recovery) }
                }
                if !command.invalidate.isEmpty { try await invalidate(command.invalidate) }
                if command.reportBlocks || now - lastReportMs > configuration.blockReportIntervalMs {
                    try await sendBlockReport()
                    lastReportMs = now
                }
            } catch let error as RemoteException where error.exceptionClass == .inconsistentNamespace {
                logger.error("the name node refuses this data node: \(error.message)")
            } catch {
                logger.debug("name node unreachable: \(error)")
            }
            try? await clock.sleep(milliseconds: configuration.heartbeatIntervalMs)
        }
    }

    /// The namespace this node's replicas belong to, kept in its directory from its first
    /// registration on: it never joins a name node of another namespace.
    public var namespaceId: String? {
        (try? String(contentsOfFile: configuration.directory + "/namespace-id", encoding: .utf8))
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    func joinNamespace(_ id: String) throws {
        if let existing = namespaceId {
            guard existing == id else {
                throw RemoteException(
                    .inconsistentNamespace, "Incompatible namespace ids: this data node has \(existing), the name node \(id)")
            }
            return
        }
        try id.write(toFile: configuration.directory + "/namespace-id", atomically: true, encoding: .utf8)
    }

    func sendBlockReport() async throws {
        var report = Strata_Wire_BlockReportRequest()
        report.nodeID = nodeId
        report.blocks = store.report()
        let _: Strata_Wire_Empty = try await nameNode.call(.blockReport, report, user: Self.rpcUser)
    }

    func invalidate(_ blocks: [Strata_Wire_ExtendedBlock]) async throws {
        var report = Strata_Wire_IncrementalBlockReportRequest()
        report.nodeID = nodeId
        for block in blocks {
            guard let replica = store.remove(block.blockID, generationStamp: block.generationStamp) else { continue }
            report.deleted.append(block)
            // As HDFS data nodes do, each deletion is logged: it is where a lost replica went.
            logger.info("replica deleted", metadata: [
                "block": "\(block.blockID)", "generationStamp": "\(replica.generationStamp)",
                "state": "\(replica.isFinalized ? "finalized" : "being written")", "bytes": "\(replica.rawLength)"])
        }
        if !report.deleted.isEmpty {
            let _: Strata_Wire_Empty = try await nameNode.call(.blockReceivedAndDeleted, report, user: Self.rpcUser)
        }
    }

    /// Tells the name node a replica is finished, before the writer hears so: once a writer's
    /// last packet is acknowledged, `complete` finds every replica reported.
    func reportReceived(_ id: UInt64) async {
        guard let replica = store.replica(id) else { return }
        logger.info("replica received", metadata: [
            "block": "\(id)", "generationStamp": "\(replica.generationStamp)", "bytes": "\(replica.rawLength)"])
        var report = Strata_Wire_IncrementalBlockReportRequest()
        report.nodeID = nodeId
        report.received = [BlockStore.reported(id, replica)]
        do {
            let _: Strata_Wire_Empty = try await nameNode.call(.blockReceivedAndDeleted, report, user: Self.rpcUser)
        } catch {
            logger.warning("could not report block \(id) received: \(error)")
        }
    }

    func reportCorrupt(_ id: UInt64, reason: String) async {
        guard let replica = store.replica(id) else { return }
        var request = Strata_Wire_ReportBadBlocksRequest()
        var bad = Strata_Wire_ReportBadBlocksRequest.BadReplica()
        bad.block.blockID = id
        bad.block.generationStamp = replica.generationStamp
        bad.nodeID = nodeId
        bad.reason = reason
        request.replicas = [bad]
        logger.warning("replica is corrupt", metadata: ["block": "\(id)", "reason": "\(reason)"])
        let _: Strata_Wire_Empty? = try? await nameNode.call(.reportBadBlocks, request, user: Self.rpcUser)
    }

    /// Copies a finished replica to other nodes (re-replication), frames as they are.
    func copy(_ transfer: Strata_Wire_DatanodeCommand.Transfer) async {
        activeTransfers.add(1, ordering: .relaxed)
        defer { activeTransfers.subtract(1, ordering: .relaxed) }
        let id = transfer.block.blockID
        do {
            let store = self.store
            let snapshot = try await threadPool.runIfActive { try store.openForReading(id) }
            var block = transfer.block
            block.generationStamp = snapshot.reader.header.generationStamp
            block.numBytes = snapshot.reader.rawLength
            try await send(snapshot, frames: snapshot.reader.frameCount, as: block, stage: .copy, to: transfer.targets, finish: true)
            logger.info("replica copied", metadata: ["block": "\(id)", "to": "\(transfer.targets.map { "\($0.ipAddress):\($0.transferPort)" })"])
        } catch let error as BlockFormatError where error.isCorruption {
            await reportCorrupt(id, reason: error.description)
        } catch {
            logger.warning("copy of block \(id) failed: \(error)")
        }
    }

    /// Sends the first `count` stored frames of a replica, as they are, through a pipeline to
    /// `targets`; `finish` flags the last packet so the targets finish their replicas.
    func send(
        _ snapshot: ReplicaSnapshot, frames count: Int, as block: Strata_Wire_ExtendedBlock, stage: Strata_Wire_WriteBlockOp.Stage,
        to targets: [Strata_Wire_DatanodeInfo], finish: Bool
    ) async throws {
        let reader = snapshot.reader
        // An empty replica being finished still takes one (empty) last packet.
        guard count > 0 || finish else { return }
        let pipeline = try await PipelineConnection.open(
            block: block, stage: stage, targets: targets, rawFrameSize: reader.rawFrameSize, clientName: "datanode-\(nodeId)", group: group)
        defer { pipeline.close() }
        var sequence: UInt64 = 0
        var index = 0
        repeat {
            let end = min(count, index + Limits.packetFrames(rawFrameSize: reader.rawFrameSize))
            let first = index
            let frames = try await threadPool.runIfActive { try (first..<end).map { try snapshot.storedFrame($0) } }
            var packet = Strata_Wire_Packet()
            packet.sequenceNumber = sequence
            packet.offsetInBlock = UInt64(first) * UInt64(reader.rawFrameSize)
            packet.frameCount = UInt32(frames.count)
            packet.last = finish && end == count
            _ = try await pipeline.send(packet, body: PacketBody.make(frames))
            sequence += 1
            index = end
        } while index < count
        try await pipeline.waitForAcknowledgements()
    }
}
