import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import StrataClient
import StrataCompute
import StrataCore
import StrataHTTP
import StrataImages
import Synchronization

/// The resource master's shell: holds `MasterState` behind one lock, logs its records to the DFS
/// before acting on them, places pending tasks, tells agents to launch and kill, and commits
/// finished jobs. Its HTTP API is in `Master+HTTP.swift`.
public final class Master: Sendable {
    public let configuration: MasterConfiguration
    let logger: Logger
    let clock: any Clock
    let group: any EventLoopGroup
    let state: Mutex<MasterState>
    /// The master's records, made durable under `configuration.stateDirectory` before they act.
    let log: DurableRecordLog<MasterRecord>
    let clients: DFSClients
    /// The image store, read-only: jobs' images are resolved from its index.
    let imageStore: ImageStore
    let http: HTTPClient
    /// Signalled when placement may have something to do: a job arrived, a task ended, an agent
    /// registered. The placement loop waits on it (or on the next locality deadline).
    let placementWanted = EventCounter()
    let placements = Mutex<(nodeLocal: UInt64, remote: UInt64)>((0, 0))
    /// Actions to perform (launches, kills, commits), run as child tasks of `run`, so none
    /// outlives the master.
    let actions: AsyncStream<Work>
    let actionSink: AsyncStream<Work>.Continuation
    /// Signalled when an agent registers.
    public let agentRegistrations = EventCounter()
    /// Signalled after every change to the state is durable (what tests and `waitForJob` wait on).
    public let stateChanges = EventCounter()
    let started: MonotonicInstant

    /// `keepsState`: the master logs its state under `configuration.stateDirectory` in the DFS
    /// (as the superuser) and replays it on start; false keeps nothing across restarts.
    public init(
        configuration: MasterConfiguration, dfs: DFSClientConfiguration, keepsState: Bool = true, group: any EventLoopGroup,
        logger: Logger, clock: any Clock = SystemClock()
    ) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.group = group
        var settings = MasterState.Settings()
        settings.agentTimeoutMs = configuration.agentTimeoutMs
        self.state = Mutex(MasterState(settings: settings))
        let clients = DFSClients(base: dfs, group: group, clock: clock)
        self.clients = clients
        self.log = DurableRecordLog(
            store: keepsState
                ? DFSStateStore(client: clients.client(user: configuration.superuser), directory: configuration.stateDirectory, logger: logger)
                : nil,
            service: "master", logger: logger, snapshotEveryRecords: configuration.snapshotEveryRecords,
            failure: { MasterError(message: $0) })
        var imageOptions = ImageStore.Options()
        imageOptions.root = configuration.imageStoreRoot
        self.imageStore = ImageStore(client: clients.client(user: configuration.superuser), options: imageOptions, clock: clock, logger: logger)
        self.http = HTTPClient(eventLoopGroupProvider: .shared(group))
        self.started = clock.now
        (actions, actionSink) = AsyncStream.makeStream(of: Work.self)
    }

    /// Replays the log (a restarted master continues its jobs), then makes pending commits.
    public func recover() async throws {
        let replayed = try await log.open()
        let now = clock.now
        let outcome = state.withLock { state in
            for record in replayed { state.apply(record, now: now) }
            return state.recover(now: now)
        }
        logger.info("master recovered its state", metadata: ["records": "\(replayed.count)", "jobs": "\(state.withLock { $0.jobs.count })"])
        perform(outcome.actions)
        placementWanted.signal()
    }

    /// The master's loops until cancelled: the log writer, placement, and the liveness tick.
    public func run() async {
        await withTaskGroup(of: Void.self) { loops in
            loops.addTask {
                await self.log.run { self.state.withLock { ($0.snapshotRecords(), self.log.appliedCount) } }
            }
            loops.addTask { await self.placementLoop() }
            loops.addTask { await self.tickLoop() }
            loops.addTask {
                await withDiscardingTaskGroup { running in
                    for await work in self.actions {
                        running.addTask { await self.execute(work) }
                    }
                }
            }
            await loops.waitForAll()
        }
    }

    /// Waits until `count` agents are registered and active, within a bound.
    public func waitForAgents(_ count: Int, timeoutSeconds: Double) async throws {
        let deadline = clock.now + .seconds(timeoutSeconds)
        while true {
            let seen = agentRegistrations.count
            if state.withLock({ $0.activeAgents.count }) >= count { return }
            guard clock.now < deadline else {
                throw MasterError(message: "agents did not all register within \(timeoutSeconds) s")
            }
            await clock.wait(for: agentRegistrations, after: seen, until: deadline)
            try Task.checkCancellation()
        }
    }

    /// Waits until a job has ended, within a bound, and returns how it is shown.
    public func waitForJob(_ jobId: String, timeoutSeconds: Double) async throws -> ComputeAPI.JobView {
        let deadline = clock.now + .seconds(timeoutSeconds)
        while true {
            let seen = stateChanges.count
            guard let view = state.withLock({ $0.view(ofJob: jobId) }) else { throw MasterError(message: "no job \(jobId)") }
            if view.state.isTerminal { return view }
            guard clock.now < deadline else {
                throw MasterError(message: "job \(jobId) did not end within \(timeoutSeconds) s: \(view.finishedTasks)/\(view.tasks) tasks finished")
            }
            await clock.wait(for: stateChanges, after: seen, until: deadline)
            try Task.checkCancellation()
        }
    }

    /// The job's attempts, for tests and listings.
    public func attempts(ofJob jobId: String) -> [TaskAttempt] {
        state.withLock { $0.attempts(ofJob: jobId) }
    }

    /// Stops what the master holds open (its clients), after `run` ended.
    public func shutdown() async {
        try? await http.shutdown()
        await clients.closeAll()
        try? await log.close()
    }

    // MARK: - Records and actions

    /// Runs an event on the state: its records are queued for the log in the order applied;
    /// returns once they are durable, and then performs its actions.
    ///
    /// Placement is woken as soon as the event is applied, not once it is durable: a task's
    /// end frees its resources for the next placement while the end is still being logged. That
    /// placement's launches are performed only once its own records are durable, and the log
    /// keeps the order records were applied in, so the end is durable by then too.
    @discardableResult
    func handle<Result: Sendable>(_ event: (inout MasterState, MonotonicInstant, Int64) throws -> (MasterState.Outcome, Result)) async throws -> Result {
        let (outcome, result) = try await log.apply(
            to: state, now: clock.now, wallTimeMs: clock.wallTimeMs,
            whileLocked: { outcome, _ in
                if outcome.records.contains(where: Self.wantsPlacement) { self.placementWanted.signal() }
            }, event)
        perform(outcome.actions)
        if !outcome.records.isEmpty { stateChanges.signal() }
        return result
    }

    static func wantsPlacement(_ record: MasterRecord) -> Bool {
        switch record {
        case .submitted: true
        case .updated(let update): update.state.isTerminal
        case .launched, .jobEnded, .killRequested: false
        }
    }

    func placementLoop() async {
        while !Task.isCancelled {
            let seen = placementWanted.count
            let nextDeadline = await placementPass()
            let deadline = nextDeadline ?? clock.now.advanced(byMilliseconds: 1_000)
            await clock.wait(for: placementWanted, after: seen, until: deadline)
        }
    }

    func tickLoop() async {
        while !Task.isCancelled {
            do {
                try await clock.sleep(milliseconds: configuration.tickIntervalMs)
            } catch {
                return
            }
            _ = try? await handle { state, now, wall in (state.tick(now: now, wallTimeMs: wall), ()) }
        }
    }

    /// Places what can be placed now. Returns when placement should run again at the latest (a
    /// task waiting for a node-local slot stops waiting then).
    @discardableResult
    func placementPass() async -> MonotonicInstant? {
        let deadline = try? await handle { state, now, wall -> (MasterState.Outcome, MonotonicInstant?) in
            let (placed, nextDeadline) = Self.place(&state, now: now)
            let local = UInt64(placed.count { $0.isNodeLocal })
            self.placements.withLock {
                $0.nodeLocal += local
                $0.remote += UInt64(placed.count) - local
            }
            let outcome = state.launch(placed, now: now, wallTimeMs: wall)
            return (outcome, nextDeadline)
        }
        return deadline ?? nil
    }

    /// What `run`'s action loop performs: a kill or a commit, or the launches one event put on
    /// one agent, sent in one call.
    enum Work: Sendable {
        case action(MasterState.Action)
        case launches([TaskLaunchOrder], agentId: String, address: String)
    }

    /// Hands actions to `run`'s action loop, an event's launches on each agent together.
    func perform(_ actions: [MasterState.Action]) {
        var launches: [String: (orders: [TaskLaunchOrder], address: String)] = [:]
        var agentOrder: [String] = []
        for action in actions {
            guard case .launch(let order, let agentId, let address) = action else {
                actionSink.yield(.action(action))
                continue
            }
            if launches[agentId] == nil { agentOrder.append(agentId) }
            launches[agentId, default: ([], address)].orders.append(order)
        }
        for agentId in agentOrder {
            let (orders, address) = launches[agentId]!
            for start in stride(from: 0, to: orders.count, by: ComputeAPI.LaunchBatch.maximumCount) {
                let batch = Array(orders[start..<min(start + ComputeAPI.LaunchBatch.maximumCount, orders.count)])
                actionSink.yield(.launches(batch, agentId: agentId, address: address))
            }
        }
    }

    func execute(_ work: Work) async {
        switch work {
        case .action(.launch(let order, let agentId, let address)):
            await sendLaunches([order], agentId: agentId, address: address)
        case .action(.kill(let taskId, _, let address)):
            await sendKill(taskId, address: address)
        case .action(.commitJob(let jobId, let output, let user)):
            await commit(jobId, output: output, user: user)
        case .launches(let orders, let agentId, let address):
            await sendLaunches(orders, agentId: agentId, address: address)
        }
    }

    /// Launches tasks on one agent in one call (`POST /api/v1/tasks/launch`). Those it refuses,
    /// or all of them when it cannot be reached, are lost (and placed again as their jobs allow).
    func sendLaunches(_ orders: [TaskLaunchOrder], agentId: String, address: String) async {
        var lost: [TaskStatus] = []
        do {
            let reply: ComputeAPI.LaunchBatchReply = try await JSONClient.call(
                http, .POST, url: "http://\(address)/api/v1/tasks/launch", body: ComputeAPI.LaunchBatch(tasks: orders),
                token: configuration.agentToken)
            for refusal in reply.refused {
                logger.warning("an agent refused a task", metadata: ["task": "\(refusal.taskId)", "agent": "\(agentId)", "message": "\(refusal.message)"])
                lost.append(
                    TaskStatus(taskId: refusal.taskId, state: .lost, reason: "REASON_AGENT_UNREACHABLE", message: "the agent at \(address) refused it: \(refusal.message)"))
            }
        } catch {
            logger.warning("could not launch tasks on their agent", metadata: ["tasks": "\(orders.count)", "agent": "\(agentId)", "error": "\(error)"])
            lost = orders.map {
                TaskStatus(taskId: $0.taskId, state: .lost, reason: "REASON_AGENT_UNREACHABLE", message: "the agent at \(address) could not be reached: \(error)")
            }
        }
        guard !lost.isEmpty else { return }
        _ = try? await handle { state, now, wall in (state.statusUpdates(agentId: agentId, lost, now: now, wallTimeMs: wall), ()) }
    }

    func sendKill(_ taskId: String, address: String) async {
        do {
            try await post("http://\(address)/api/v1/tasks/\(taskId)/kill", body: [String: String]())
        } catch {
            logger.warning("could not ask an agent to kill a task", metadata: ["task": "\(taskId)", "error": "\(error)"])
        }
    }

    /// Marks a job whose tasks all finished as done: `_SUCCESS` in its output, its temporary
    /// directory gone. Both are safe to repeat, so a master that restarts midway does it again.
    func commit(_ jobId: String, output: String, user: String) async {
        do {
            let client = try await clients.client(for: user)
            _ = try await client.delete(output + "/_temporary", recursive: true)
            let marker = try await client.create(output + "/_SUCCESS", overwrite: true)
            try await marker.close()
            try await handle { state, now, wall in (state.jobCommitted(jobId, now: now, wallTimeMs: wall), ()) }
            logger.info("job finished", metadata: ["job": "\(jobId)"])
        } catch {
            logger.error("could not commit a finished job; it stays COMMITTING", metadata: ["job": "\(jobId)", "error": "\(error)"])
        }
    }

    func post(_ url: String, body: some Encodable) async throws {
        let _: [String: String] = try await JSONClient.call(http, .POST, url: url, body: body, token: configuration.agentToken)
    }
}

public struct MasterError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// DFS clients of the master, one per user: a job's input is listed and its output committed as
/// the user who submitted it, so the file system's permissions apply.
final class DFSClients: Sendable {
    let base: DFSClientConfiguration
    let group: any EventLoopGroup
    let clock: any Clock
    let clients = Mutex<[String: DFSClient]>([:])

    init(base: DFSClientConfiguration, group: any EventLoopGroup, clock: any Clock) {
        self.base = base
        self.group = group
        self.clock = clock
    }

    func client(for user: String) async throws -> DFSClient {
        client(user: user)
    }

    func client(user: String) -> DFSClient {
        clients.withLock { clients in
            if let client = clients[user] { return client }
            var configuration = base
            configuration.user = user
            let client = DFSClient(configuration: configuration, group: group, clock: clock)
            clients[user] = client
            return client
        }
    }

    func closeAll() async {
        let all = clients.withLock { clients in
            defer { clients = [:] }
            return Array(clients.values)
        }
        for client in all { await client.close() }
    }
}

extension MasterState.Outcome: RecordedOutcome {}
