import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import StrataApps
import StrataClient
import StrataCompute
import StrataCore
import StrataHTTP
import StrataImages
import Synchronization

/// The service launcher's shell (docs/launcher.md): holds `LauncherState` behind one lock, logs
/// its records under `/system/launcher` in the DFS before acting on them, places instances as
/// service tasks through the master and kills them there, follows them with the master's
/// services watch, runs HTTP and TCP health checks, and ticks for backoff deadlines. Its HTTP
/// API (Marathon's v2 subset) is in `Launcher+HTTP.swift`.
public final class Launcher: Sendable {
    public let configuration: LauncherConfiguration
    let logger: Logger
    let clock: any Clock
    let group: any EventLoopGroup
    let state = Mutex(LauncherState())
    let client: DFSClient
    /// The launcher's records, made durable under `configuration.stateDirectory` before they act.
    let log: DurableRecordLog<LauncherRecord>
    let http: HTTPClient
    /// The image store, read-only: apps' images are checked against its index.
    let imageStore: ImageStore
    let actions: AsyncStream<LauncherState.Action>
    let actionSink: AsyncStream<LauncherState.Action>.Continuation
    /// Signalled after every change to the state is durable, and after each watch answer.
    public let stateChanges = EventCounter()
    /// Signalled when the tick should look again (a backoff deadline may have moved).
    let tickWanted = EventCounter()
    /// What the launcher knows of each instance's service task in the master (not durable: found
    /// again from the tasks' labels after a restart).
    let tasks = Mutex<[String: MasterTask]>([:])
    /// The health each task's agent last reported of its COMMAND check (by task id).
    let agentReportedHealth = Mutex<[String: Bool]>([:])
    /// Instances to kill once their task is known (a kill asked for before the submission ended).
    let pendingKills = Mutex<Set<String>>([])
    /// Whether the first full listing of the master's service tasks has been taken in.
    let adopted = Readiness<Void>()
    /// The HTTP port it serves on, once serving (for `/v2/info`).
    public let servingPort = Mutex<Int?>(nil)
    /// Marathon's event bus: events derived from the records, for `/v2/events` subscribers.
    let events = LauncherEventBus()
    /// What the launcher has done, for `/metrics`.
    let counters = LauncherCounters()

    struct MasterTask: Sendable {
        var jobId: String
        var taskId: String?
        var agentAddress: String?
    }

    public init(
        configuration: LauncherConfiguration, dfs: DFSClientConfiguration, group: any EventLoopGroup, logger: Logger,
        clock: any Clock = SystemClock()
    ) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.group = group
        var dfs = dfs
        dfs.user = configuration.superuser
        self.client = DFSClient(configuration: dfs, group: group, clock: clock)
        self.log = DurableRecordLog(
            store: DFSStateStore(client: client, directory: configuration.stateDirectory, logger: logger),
            service: "launcher", logger: logger, snapshotEveryRecords: configuration.snapshotEveryRecords,
            failure: { APIError(.serviceUnavailable, $0) })
        self.http = HTTPClient(eventLoopGroupProvider: .shared(group))
        self.imageStore = ImageStore(client: client, clock: clock, logger: logger)
        (actions, actionSink) = AsyncStream.makeStream(of: LauncherState.Action.self)
    }

    /// Replays the log: apps, versions, deployments and instances come back as they were.
    /// Actions wait for `run`, which first adopts the instances the master still runs.
    public func recover() async throws {
        let replayed = try await log.open()
        let now = clock.now
        state.withLock { state in
            for record in replayed { state.apply(record, now: now) }
        }
        logger.info("launcher recovered its state", metadata: ["records": "\(replayed.count)"])
    }

    /// The launcher's loops until cancelled: the log writer, the actions, the master watch
    /// (which adopts running instances first), health checks and the tick.
    public func run() async {
        await withTaskGroup(of: Void.self) { loops in
            loops.addTask {
                await self.log.run { self.state.withLock { ($0.snapshotRecords(), self.log.appliedCount) } }
            }
            loops.addTask { await self.watchLoop() }
            loops.addTask {
                guard (try? await self.adopted.wait()) != nil else { return }
                await withDiscardingTaskGroup { running in
                    for await action in self.actions {
                        running.addTask { await self.execute(action) }
                    }
                }
            }
            loops.addTask {
                guard (try? await self.adopted.wait()) != nil else { return }
                await self.tickLoop()
            }
            loops.addTask {
                guard (try? await self.adopted.wait()) != nil else { return }
                await self.healthLoop()
            }
            await loops.waitForAll()
            self.actionSink.finish()
        }
    }

    /// Stops what the launcher holds open, after `run` ended.
    public func shutdown() async {
        actionSink.finish()
        try? await http.shutdown()
        try? await log.close()
        await client.close()
    }

    /// The state as it is now (for tests and the API).
    public func snapshot() -> LauncherState { state.withLock { $0 } }

    // MARK: - Records and actions

    /// Runs an event on the state: its records are logged (in the order applied), then its
    /// actions performed.
    @discardableResult
    func handle<Result: Sendable>(
        _ event: (inout LauncherState, MonotonicInstant, Int64) throws -> (LauncherState.Outcome, Result)
    ) async throws -> Result {
        let now = clock.now
        let wall = clock.wallTimeMs
        let (outcome, result) = try await log.apply(to: state, now: now, wallTimeMs: wall, whileLocked: { outcome, ticket in
            // Events follow the order of application; each goes out once its records are durable.
            events.publish(outcome.records, ticket: ticket, now: now, wallTimeMs: wall)
        }, event)
        for action in outcome.actions { actionSink.yield(action) }
        if !outcome.records.isEmpty {
            stateChanges.signal()
            tickWanted.signal()
        }
        return result
    }

    func tickLoop() async {
        while !Task.isCancelled {
            let seen = tickWanted.count
            _ = try? await handle { state, now, wall in (state.tick(now: now, wallTimeMs: wall), ()) }
            let now = clock.now
            let regular = now.advanced(byMilliseconds: configuration.tickIntervalMs)
            let deadline = state.withLock { $0.nextLaunchDeadline(now: now) }.map { min($0, regular) } ?? regular
            await clock.wait(for: tickWanted, after: seen, until: deadline)
            if seen != tickWanted.count, clock.now < deadline {
                // A change: let a burst of them settle into one tick, briefly.
                try? await clock.sleep(milliseconds: 20)
            }
        }
    }

    func execute(_ action: LauncherState.Action) async {
        switch action {
        case .launch(let instanceId, let app):
            await launch(instanceId, app: app)
        case .kill(let instanceId, _, let reason):
            await kill(instanceId, reason: reason)
        }
    }
}

extension LauncherState.Outcome: RecordedOutcome {}
