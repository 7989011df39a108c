import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import StrataClient
import StrataCore
import StrataCron
import StrataHTTP
import Synchronization

/// The cron service's shell (docs/cron.md "The service"): holds `CronState` behind one lock,
/// logs its records under `/system/cron` in the DFS before acting on them, submits each run's
/// attempt to the master as a job named after the run (so that no restart ever submits it
/// twice), follows them with the master's jobs watch, and ticks at the next fire time. Its HTTP
/// API (Chronos' `/v1/scheduler/`) is in `CronScheduler+HTTP.swift`.
public final class CronScheduler: Sendable {
    public let configuration: CronConfiguration
    let logger: Logger
    let clock: any Clock
    let state: Mutex<CronState>
    let client: DFSClient
    let log: DurableRecordLog<CronRecord>
    let http: HTTPClient
    let actions: AsyncStream<CronState.Action>
    let actionSink: AsyncStream<CronState.Action>.Continuation
    /// Signalled after every change to the state is durable, and after each watch answer.
    public let stateChanges = EventCounter()
    /// Signalled when the tick should look again at when it is due (a job was added, a run
    /// ended).
    let tickWanted = EventCounter()
    /// Signalled at every tick (each looks at every job), for tests and benchmarks.
    public let ticks = EventCounter()
    /// Whether the runs in flight at the start have been reconciled with the master.
    let reconciled = Readiness<Void>()
    /// The HTTP port it serves on, once serving.
    public let servingPort = Mutex<Int?>(nil)
    /// The master jobs of attempts in flight, by job id: what the watch follows.
    let tracked = Mutex<[String: (runId: RunId, attempt: Int)]>([:])
    /// Counts for `/metrics`.
    let counters = Mutex(Counters())

    struct Counters {
        var submitted: UInt64 = 0
        var submitFailures: UInt64 = 0
        var ended: [String: UInt64] = [:]
        /// Scheduled time to the master's answer to the submission, in milliseconds (the last
        /// thousand), for the lateness the benchmark reports.
        var submitLatenessMs: [Int64] = []
    }

    public init(
        configuration: CronConfiguration, dfs: DFSClientConfiguration, group: any EventLoopGroup, logger: Logger,
        clock: any Clock = SystemClock()
    ) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.state = Mutex(CronState(
            failureRetryDelayMilliseconds: configuration.failureRetryDelayMs,
            submitAheadMilliseconds: min(max(configuration.submitAheadMs, 0), CronLimits.maximumSubmitAheadMilliseconds),
            disableAfterFailures: configuration.disableAfterFailures))
        var dfs = dfs
        dfs.user = configuration.superuser
        self.client = DFSClient(configuration: dfs, group: group, clock: clock)
        self.log = DurableRecordLog(
            store: DFSStateStore(client: client, directory: configuration.stateDirectory, logger: logger),
            service: "cron service", logger: logger, snapshotEveryRecords: configuration.snapshotEveryRecords,
            failure: { APIError(.serviceUnavailable, $0) })
        self.http = HTTPClient(eventLoopGroupProvider: .shared(group))
        (actions, actionSink) = AsyncStream.makeStream(of: CronState.Action.self)
    }

    /// Replays the log: jobs, their counts and the runs in flight come back as they were. The
    /// recovery's actions (reconciling runs in flight, catching up missed runs) wait for `run`.
    public func recover() async throws {
        let replayed = try await log.open()
        let now = clock.now
        state.withLock { state in
            for record in replayed { state.apply(record, now: now) }
        }
        logger.info("cron service recovered its state", metadata: ["records": "\(replayed.count)", "jobs": "\(state.withLock { $0.jobs.count })"])
    }

    /// The loops until cancelled: the log writer, the actions, the recovery and the master
    /// watch, and the tick.
    public func run() async {
        await withTaskGroup(of: Void.self) { loops in
            loops.addTask {
                await self.log.run { self.state.withLock { ($0.snapshotRecords(), self.log.appliedCount) } }
            }
            loops.addTask {
                await withDiscardingTaskGroup { running in
                    for await action in self.actions {
                        running.addTask { await self.execute(action) }
                    }
                }
            }
            loops.addTask {
                _ = try? await self.handle { state, now, wall in (state.recover(now: now, wallTimeMs: wall), ()) }
                self.reconciled.resolve(())
            }
            loops.addTask { await self.watchLoop() }
            loops.addTask {
                guard (try? await self.reconciled.wait()) != nil else { return }
                await self.tickLoop()
            }
            await loops.waitForAll()
            self.actionSink.finish()
        }
    }

    /// Stops what it holds open, after `run` ended.
    public func shutdown() async {
        actionSink.finish()
        try? await http.shutdown()
        try? await log.close()
        await client.close()
    }

    /// The state as it is now (for tests).
    public func snapshot() -> CronState { state.withLock { $0 } }

    // MARK: - Records and actions

    /// Runs an event on the state: its records are logged (in the order applied), then its
    /// actions performed.
    @discardableResult
    func handle<Result: Sendable>(
        _ event: (inout CronState, MonotonicInstant, Int64) throws -> (CronState.Outcome, Result)
    ) async throws -> Result {
        let (outcome, result) = try await log.apply(to: state, now: clock.now, wallTimeMs: clock.wallTimeMs, event)
        for action in outcome.actions { actionSink.yield(action) }
        if !outcome.records.isEmpty {
            stateChanges.signal()
            tickWanted.signal()
        }
        return result
    }

    /// Ticks at the next fire time or retry deadline, and at least every `tickIntervalMs`. A
    /// change (a job stored, a run started or ended) wakes it only to work out that instant
    /// again: nothing becomes due but by time passing (a job stored with a run due now has it
    /// started by its own request), and a tick looks at every job, so ticking after each change
    /// had it tick back to back, finding nothing due, while a minute's thousand runs started and
    /// ended (`tools/bench cron`).
    func tickLoop() async {
        var lastTick = clock.now
        var tickDue = true
        while !Task.isCancelled {
            let seen = tickWanted.count
            if tickDue {
                lastTick = clock.now
                ticks.signal()
                _ = try? await handle { state, now, wall in (state.tick(now: now, wallTimeMs: wall), ()) }
            }
            let now = clock.now
            let wall = clock.wallTimeMs
            var deadline = lastTick.advanced(byMilliseconds: configuration.tickIntervalMs)
            let (wake, retry) = state.withLock { ($0.nextWakeWallTimeMs, $0.nextRetryDeadline) }
            if let wake { deadline = min(deadline, now.advanced(byMilliseconds: max(0, wake - wall))) }
            if let retry { deadline = min(deadline, retry) }
            if deadline > now { await clock.wait(for: tickWanted, after: seen, until: deadline) }
            tickDue = clock.now >= deadline
        }
    }

    func execute(_ action: CronState.Action) async {
        switch action {
        case .start(let runId, let attempt, let job, let arguments):
            await start(runId, attempt: attempt, job: job, arguments: arguments)
        case .kill(let runId, let attempt):
            await kill(runId, attempt: attempt)
        case .reconcile(let runId, let attempt, _):
            await reconcile(runId, attempt: attempt)
        }
    }
}

extension CronState.Outcome: RecordedOutcome {}
