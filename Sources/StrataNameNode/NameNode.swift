import Foundation
import Logging
import NIOCore
import StrataCore
import StrataHadoopWire
import StrataJournal
import StrataWire
import SwiftProtobuf
import Synchronization

/// The name node service: the namespace and block manager behind one lock, the journal that
/// makes every mutation durable before it is acknowledged, the RPC server, and a monitor that
/// watches data node heartbeats, safe mode, replication and checkpoints.
public final class NameNode: Sendable {
    struct State: ~Copyable {
        var namespace: Namespace
        var blockManager: BlockManager
        /// Blocks being written: the nodes of their pipeline, for readers of the open file.
        var pipelineTargets: [UInt64: [UInt16]] = [:]
        var leases: LeaseManager
        var safeMode: SafeMode
        var replicationScanNeeded = true
        var lastReplicationScan: MonotonicInstant
        /// The replication pass under way and the next block id it scans.
        var replicationScan: (pass: BlockManager.ReplicationPass, next: UInt64)?
        /// The count of reported blocks under way (start-up safe mode) and the next id it counts.
        var safeModeCount: (next: UInt64, reported: Int, total: Int)?
        var journalFailure: String?
    }

    public let configuration: NameNodeConfiguration
    let logger: Logger
    /// Every decision's time: monotonic instants for leases, liveness and timeouts, wall time only
    /// for modification times.
    let clock: any Clock
    let journal: Journal
    let state: Mutex<State>
    let namespaceId: String
    private let server: Mutex<RPCServer?> = Mutex(nil)
    private let monitor: Mutex<[Task<Void, Never>]> = Mutex([])
    /// The background checkpoint writer, if one runs: shutdown waits for it.
    let checkpointTask: Mutex<Task<Void, Never>?> = Mutex(nil)
    let checkpointRunning = Atomic<Bool>(false)
    /// Signalled after every block report, full or incremental: `complete` waits on it for the
    /// last block's finished replica.
    let replicaReports = EventCounter()
    /// Signalled when a data node registers, finishes a full block report or dies, and when safe
    /// mode turns on or off: what a cluster waits on to know it is ready.
    public let clusterStateChanges = EventCounter()
    /// Cuts a file inside a block for Hadoop RPC's truncate (see `setTruncateInsideBlock`).
    let truncateInsideBlock = Mutex<TruncateInsideBlock?>(nil)
    /// Answers of Hadoop's at-most-once calls, for clients that call again (`HadoopRetryCache`).
    let hadoopRetryCache = Mutex(HadoopRetryCache<Task<any SwiftProtobuf.Message, any Error>, any SwiftProtobuf.Message>())

    /// Opens the journal, loads the newest checkpoint image and replays the edits after it.
    public init(configuration: NameNodeConfiguration, logger: Logger, clock: any Clock = SystemClock()) throws {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        self.journal = try Journal(
            directory: configuration.directory, maximumQueuedRecords: configuration.journalMaximumQueuedRecords)
        let started = clock.now
        let (namespace, imageTransaction, _, replayed) = try Self.replayJournal(
            journal, settings: configuration.namespaceSettings, wallTimeMs: clock.wallTimeMs)
        let idPath = configuration.directory + "/namespace-id"
        if let existing = try? String(contentsOfFile: idPath, encoding: .utf8), !existing.isEmpty {
            namespaceId = existing.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            namespaceId = UUID().uuidString
            try namespaceId.write(toFile: idPath, atomically: true, encoding: .utf8)
        }
        logger.info(
            "namespace loaded",
            metadata: [
                "files": "\(namespace.fileCount)", "directories": "\(namespace.directoryCount)",
                "blocks": "\(namespace.blocks.count)", "image": "\(imageTransaction)", "replayedEdits": "\(replayed)",
                "seconds": "\(String(format: "%.3f", Double(clock.now.milliseconds(since: started)) / 1000))",
            ])
        let safeMode = SafeMode(hasBlocks: !namespace.blocks.isEmpty, settings: configuration.safeMode)
        state = Mutex(State(
            namespace: namespace, blockManager: BlockManager(settings: configuration.blockManager),
            leases: LeaseManager(settings: configuration.leases), safeMode: safeMode, lastReplicationScan: clock.now))
    }

    /// Starts serving RPC and the monitor. Returns the bound RPC port.
    @discardableResult
    public func start(group: any EventLoopGroup) async throws -> Int {
        let server = try await RPCServer.start(
            host: configuration.host, port: configuration.rpcPort, group: group, logger: logger,
            inlineHandler: { [self] call in try self.handleInline(call) },
            sharedPortProtocols: [
                HadoopRPCServer.sharedPortProtocol(
                    logger: logger, inlineHandler: { [self] call in try self.handleHadoopInline(call) }
                ) { [self] call in try await self.handleHadoop(call) }
            ]
        ) { [self] call in
            try await self.handle(call)
        }
        self.server.withLock { $0 = server }
        let tasks = [Task { [self] in await self.runMonitor() }, Task { [self] in await self.runLeaseMonitor() }]
        monitor.withLock { $0 = tasks }
        logger.info("name node serving", metadata: ["rpc": "\(configuration.host):\(server.port)"])
        return server.port
    }

    public var rpcPort: Int { server.withLock { $0?.port ?? 0 } }

    /// Stops serving, waits for the monitors and any checkpoint being written to end, and makes
    /// the journal durable. No task of the name node outlives this call.
    public func shutdown() async {
        let tasks = monitor.withLock { tasks in
            defer { tasks = [] }
            return tasks
        }
        for task in tasks { task.cancel() }
        let server = self.server.withLock { $0 }
        await server?.close()
        for task in tasks { await task.value }
        if let checkpoint = checkpointTask.withLock({ $0 }) { await checkpoint.value }
        try? journal.flush()
        journal.close()
    }

    /// The namespace as the journal holds it durable: the newest checkpoint image, then every
    /// edit after it. Start-up loads the live namespace this way; a checkpoint builds its image
    /// this way too, on its own copy, so it never touches (or holds the lock of) the live one.
    /// Returns the namespace, the image's transaction, the last transaction applied and how many
    /// edits were replayed.
    static func replayJournal(
        _ journal: Journal, settings: NamespaceSettings, wallTimeMs: Int64
    ) throws -> (namespace: Namespace, image: UInt64, lastTransaction: UInt64, replayed: Int) {
        var loader = Namespace.ImageLoader(settings: settings)
        let imageTransaction = try journal.readCheckpoint { record in try loader.add(record) }
        var namespace = imageTransaction > 0 ? try loader.finish() : Namespace(settings: settings, now: wallTimeMs)
        var replayed = 0
        var lastTransaction = imageTransaction
        try journal.forEachEdit(after: imageTransaction) { transaction, record in
            let edit: Edit
            do {
                edit = try Edit(serializedBytes: record)
            } catch {
                throw ReplayError(message: "transaction \(transaction) is not a valid edit: \(error)")
            }
            do throws(ReplayError) {
                try namespace.apply(edit)
            } catch {
                throw ReplayError(message: "transaction \(transaction): \(error.message)")
            }
            replayed += 1
            lastTransaction = transaction
        }
        return (namespace, imageTransaction, lastTransaction, replayed)
    }

    /// Counts for monitoring (`/metrics`).
    public struct Statistics: Sendable {
        public var files: Int
        public var directories: Int
        public var blocks: Int
        public var liveDataNodes: Int
        /// Live data nodes whose first full block report since registering has arrived: nodes
        /// the name node knows completely.
        public var reportedDataNodes: Int
        public var deadDataNodes: Int
        public var inSafeMode: Bool
        public var lastTransactionId: UInt64
    }

    public var statistics: Statistics {
        let lastTransaction = journal.lastSubmittedTransactionId
        return state.withLock { state in
            Statistics(
                files: state.namespace.fileCount, directories: state.namespace.directoryCount, blocks: state.namespace.blocks.count,
                liveDataNodes: state.blockManager.liveNodeCount,
                reportedDataNodes: state.blockManager.nodes.filter { $0.isAlive && $0.blockReportReceived }.count,
                deadDataNodes: state.blockManager.deadNodeCount,
                inSafeMode: state.safeMode.isOn, lastTransactionId: lastTransaction)
        }
    }

    func caller(_ call: RPCCall) throws(RemoteException) -> Caller {
        let user = call.user
        guard !user.isEmpty else { throw RemoteException.accessDenied("no user name given") }
        var groups = [user]
        if user == configuration.superuser { groups.append(configuration.supergroup) }
        return Caller(user: user, groups: groups)
    }

    // MARK: - Mutations

    /// Runs a mutation: `body` prepares edits under the lock, they are applied and journaled in
    /// order, and the call returns once the journal has made them durable (group commit: calls
    /// arriving while a commit runs share the next one).
    ///
    /// Room in the journal's queue is reserved before the lock is taken: when the journal's disk
    /// is slow and its queue full, a mutation waits here, suspended, and the lock stays free for
    /// the reads and heartbeats answered on the event loops.
    func mutate<Result: Sendable>(
        _ operation: String, path: String,
        _ body: (inout State) throws(RemoteException) -> (edits: [Edit], result: Result)
    ) async throws -> Result {
        let reservation: JournalReservation
        do {
            reservation = try await journal.reserveRoom()
        } catch {
            let failure = state.withLock { $0.journalFailure }
            throw RemoteException.io("the name node's journal failed (\(failure ?? "\(error)")); it accepts no more changes")
        }
        let signal = CompletionSignal()
        let increment = max(1, configuration.blockDeletionIncrement)
        let (journaled, result, removedLater): (Bool, Result, ArraySlice<UInt64>) = try state.withLock {
            (state) throws(RemoteException) -> (Bool, Result, ArraySlice<UInt64>) in
            if let failure = state.journalFailure {
                throw RemoteException.io("the name node's journal failed (\(failure)); it accepts no more changes")
            }
            if state.safeMode.isOn {
                throw RemoteException(
                    .safeMode, "Cannot \(operation) \(path). Name node is in safe mode. \(state.safeMode.report)")
            }
            let (edits, result) = try body(&state)
            guard !edits.isEmpty else { return (false, result, []) }
            let effects = state.namespace.applyPrepared(edits)
            state.forgetBlocks(effects.removedBlocks.prefix(increment))
            for block in effects.completedBlocks {
                state.blockManager.completeBlock(block.blockID, generationStamp: block.generationStamp, numBytes: block.numBytes)
            }
            for (position, edit) in edits.enumerated() {
                let isLast = position == edits.count - 1
                do {
                    // Commits are in order, so the last edit's commit covers the others.
                    try journal.submit(try edit.serializedBytes(), reservation: reservation) { outcome in
                        if isLast { signal.complete(outcome.map { _ in () }) }
                    }
                } catch {
                    state.journalFailure = "\(error)"
                    throw RemoteException.io("journal write failed: \(error)")
                }
            }
            state.replicationScanNeeded = true
            return (true, result, effects.removedBlocks.dropFirst(increment))
        }
        let outcome = journaled ? await signal.wait() : .success(())
        // The namespace no longer has these blocks, so nothing reads them from the block map
        // meanwhile; they leave it a chunk per hold, as HDFS removes a deleted tree's blocks.
        var rest = removedLater
        while !rest.isEmpty {
            await Task.yield()
            let chunk = rest.prefix(increment)
            rest = rest.dropFirst(increment)
            state.withLock { $0.forgetBlocks(chunk) }
        }
        if case .failure(let error) = outcome {
            state.withLock { $0.journalFailure = "\(error)" }
            throw RemoteException.io("journal commit failed: \(error)")
        }
        return result
    }

}

/// A one-shot result handed from the journal's writer thread to a waiting task.
final class CompletionSignal: Sendable {
    private let state = Mutex<(result: Result<Void, JournalError>?, waiter: CheckedContinuation<Result<Void, JournalError>, Never>?)>((nil, nil))

    func complete(_ result: Result<Void, JournalError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<Void, JournalError>, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.result = result
            return nil
        }
        waiter?.resume(returning: result)
    }

    func wait() async -> Result<Void, JournalError> {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Result<Void, JournalError>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

extension NameNode.State {
    /// Drops blocks the namespace no longer has from the block map; their replicas are invalidated.
    mutating func forgetBlocks(_ removed: some Sequence<UInt64>) {
        for block in removed {
            blockManager.blockRemoved(block)
            pipelineTargets[block] = nil
        }
    }
}
