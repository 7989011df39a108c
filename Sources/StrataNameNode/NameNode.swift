import Foundation
import Logging
import NIOCore
import StrataCore
import StrataJournal
import StrataWire
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
        var leaseRenewals: [String: Int64] = [:]
        /// Lease recoveries in progress, by block.
        var recoveries: [UInt64: BlockRecovery] = [:]
        /// Recovery commands for the next heartbeat of each node, by node id.
        var pendingRecoveryCommands: [String: [Strata_Wire_DatanodeCommand.RecoverBlock]] = [:]
        var safeMode: SafeMode
        var replicationScanNeeded = true
        var lastReplicationScanMs: Int64 = 0
        var journalFailure: String?
    }

    enum SafeMode: Equatable {
        case off
        /// Entered at start-up; ends when enough blocks are reported.
        case startup
        /// Entered by an administrator; ends only when one says so.
        case manual
    }

    public let configuration: NameNodeConfiguration
    let logger: Logger
    let journal: Journal
    let state: Mutex<State>
    let namespaceId: String
    private let server: Mutex<RPCServer?> = Mutex(nil)
    private let monitor: Mutex<[Task<Void, Never>]> = Mutex([])
    let checkpointRunning = Atomic<Bool>(false)

    /// Opens the journal, loads the newest checkpoint image and replays the edits after it.
    public init(configuration: NameNodeConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        self.journal = try Journal(directory: configuration.directory)
        let settings = NamespaceSettings(
            superuser: configuration.superuser, supergroup: configuration.supergroup,
            permissionsEnabled: configuration.permissionsEnabled)
        let started = Date()
        var loader = Namespace.ImageLoader(settings: settings)
        let imageTransaction = try journal.readCheckpoint { record in try loader.add(record) }
        var namespace = imageTransaction > 0 ? try loader.finish() : Namespace(settings: settings, now: Self.nowMs())
        var replayed = 0
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
        }
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
                "seconds": "\(String(format: "%.3f", Date().timeIntervalSince(started)))",
            ])
        let safeMode: SafeMode = namespace.blocks.isEmpty ? .off : .startup
        state = Mutex(State(namespace: namespace, blockManager: BlockManager(settings: configuration.blockManager), safeMode: safeMode))
    }

    /// Starts serving RPC and the monitor. Returns the bound RPC port.
    @discardableResult
    public func start(group: any EventLoopGroup) async throws -> Int {
        let server = try await RPCServer.start(
            host: configuration.host, port: configuration.rpcPort, group: group, logger: logger,
            inlineHandler: { [self] call in try self.handleInline(call) }
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

    /// Stops serving and makes the journal durable.
    public func shutdown() async {
        monitor.withLock { $0.forEach { $0.cancel() } }
        let server = self.server.withLock { $0 }
        await server?.close()
        try? journal.flush()
        journal.close()
    }

    /// Counts for monitoring (`/metrics`).
    public struct Statistics: Sendable {
        public var files: Int
        public var directories: Int
        public var blocks: Int
        public var liveDataNodes: Int
        public var deadDataNodes: Int
        public var inSafeMode: Bool
        public var lastTransactionId: UInt64
    }

    public var statistics: Statistics {
        let lastTransaction = journal.lastSubmittedTransactionId
        return state.withLock { state in
            Statistics(
                files: state.namespace.fileCount, directories: state.namespace.directoryCount, blocks: state.namespace.blocks.count,
                liveDataNodes: state.blockManager.liveNodeCount, deadDataNodes: state.blockManager.deadNodeCount,
                inSafeMode: state.safeMode != .off, lastTransactionId: lastTransaction)
        }
    }

    static func nowMs() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
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
    func mutate<Result: Sendable>(
        _ operation: String, path: String,
        _ body: (inout State) throws(RemoteException) -> (edits: [Edit], result: Result)
    ) async throws -> Result {
        let signal = CompletionSignal()
        let (journaled, result): (Bool, Result) = try state.withLock { (state) throws(RemoteException) -> (Bool, Result) in
            if let failure = state.journalFailure {
                throw RemoteException.io("the name node's journal failed (\(failure)); it accepts no more changes")
            }
            if state.safeMode != .off {
                throw RemoteException(
                    .safeMode, "Cannot \(operation) \(path). Name node is in safe mode. \(safeModeReport(state))")
            }
            let (edits, result) = try body(&state)
            guard !edits.isEmpty else { return (false, result) }
            let effects = state.namespace.applyPrepared(edits)
            for block in effects.removedBlocks {
                state.blockManager.blockRemoved(block)
                state.pipelineTargets[block] = nil
            }
            for block in effects.completedBlocks {
                state.blockManager.completeBlock(block.blockID, generationStamp: block.generationStamp, numBytes: block.numBytes)
            }
            for (position, edit) in edits.enumerated() {
                let isLast = position == edits.count - 1
                do {
                    // Commits are in order, so the last edit's commit covers the others.
                    try journal.submit(try edit.serializedBytes()) { outcome in
                        if isLast { signal.complete(outcome.map { _ in () }) }
                    }
                } catch {
                    state.journalFailure = "\(error)"
                    throw RemoteException.io("journal write failed: \(error)")
                }
            }
            state.replicationScanNeeded = true
            return (true, result)
        }
        if journaled, case .failure(let error) = await signal.wait() {
            state.withLock { $0.journalFailure = "\(error)" }
            throw RemoteException.io("journal commit failed: \(error)")
        }
        return result
    }

    func safeModeReport(_ state: borrowing State) -> String {
        let (reported, total) = reportedBlocks(state)
        switch state.safeMode {
        case .off: return ""
        case .manual: return "It was turned on manually. Use \"strata dfsadmin safemode leave\" to turn safe mode off."
        case .startup:
            let needed = Int((Double(total) * configuration.safeModeThreshold).rounded(.up)) - reported
            return "The reported blocks \(reported) needs additional \(max(0, needed)) blocks to reach the threshold "
                + "\(String(format: "%.4f", configuration.safeModeThreshold)) of total blocks \(total)."
        }
    }

    func reportedBlocks(_ state: borrowing State) -> (reported: Int, total: Int) {
        var reported = 0
        var total = 0
        for (id, record) in state.namespace.blocks where record.isComplete {
            total += 1
            if !state.blockManager.locations(of: id).isEmpty { reported += 1 }
        }
        return (reported, total)
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
