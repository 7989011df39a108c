import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import StrataClient
import StrataCompute
import StrataCore
import StrataHTTP
import StrataWire
import Synchronization

/// An agent: registers with the master, heartbeats with its tasks' states, and runs the tasks
/// the master launches on it: reads each task's input split from the DFS (from the local data
/// node's disk when it holds the block), runs the command in its cgroup or container, and
/// commits its stdout as the job's part file. Its HTTP API is in `Agent+HTTP.swift`.
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    let logger: Logger
    let clock: any Clock
    let group: any EventLoopGroup
    let executor: TaskExecutor
    /// Root filesystems unpacked from tasks' images, shared read-only by the tasks that run them.
    let imageCache: RootfsCache
    let http: HTTPClient
    let dfs: DFSClientConfiguration
    let agentId: String
    let info = Mutex<AgentInfo?>(nil)
    let tasks = Mutex<[String: AgentTask]>([:])
    let runners = Mutex<[String: Task<Void, Never>]>([:])
    /// Set once shutdown begins (under `tasks`' lock): no task is accepted any more, and every
    /// task here is to be killed, also one whose launch is under way.
    let stopping = Mutex(false)
    /// Signalled when the master asks the agent to register again.
    let registrationWanted = EventCounter()
    /// Status reports not yet sent to the master, and whether a sender is draining them.
    let outbox = Mutex(Outbox())

    struct Outbox {
        var pending: [TaskStatus] = []
        var sending = false
        /// Reports of each task queued or being sent. A heartbeat leaves such a task out: it
        /// carries a task's latest state only, and sent ahead of a queued RUNNING it would have
        /// the master skip that state (and its time) for a task that already finished.
        var undelivered: [String: Int] = [:]

        /// Queues a report. A STARTING not sent yet is only a step on the way to RUNNING: a
        /// RUNNING of the same task takes its place (one record and one write at the master
        /// fewer for every task launched while reports are on their way).
        mutating func add(_ status: TaskStatus) {
            if status.state == .running, let index = pending.lastIndex(where: { $0.taskId == status.taskId }),
               pending[index].state == .starting
            {
                pending[index] = status
                return
            }
            pending.append(status)
            undelivered[status.taskId, default: 0] += 1
        }
    }

    struct AgentTask: Sendable {
        var order: TaskLaunchOrder
        var status: TaskStatus
        var sandbox: String
        var running: RunningTask?
        /// The master has acknowledged the terminal status: heartbeats leave the task out.
        var acknowledged = false
        var killRequested = false
        /// Signalled when a kill is asked for: a task waiting for its not-before time stops.
        let killSignal = EventCounter()
    }

    /// `dfs`: how tasks reach the file system (the name node's address; the user is each task's).
    public init(
        configuration: AgentConfiguration, dfs: DFSClientConfiguration, group: any EventLoopGroup, logger: Logger,
        clock: any Clock = SystemClock()
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.group = group
        var dfs = dfs
        dfs.localNodeId = configuration.dataNodeId ?? ""
        dfs.shortCircuitReads = true
        self.dfs = dfs
        self.http = HTTPClient(eventLoopGroupProvider: .shared(group))
        try FileManager.default.createDirectory(atPath: configuration.workDirectory + "/sandboxes", withIntermediateDirectories: true)
        let agentId = try Self.loadOrMakeId(configuration.workDirectory)
        self.agentId = agentId
        self.imageCache = try RootfsCache(
            directory: configuration.workDirectory + "/images", capacityBytes: configuration.imageCacheBytes, logger: logger)
        // Tasks' cgroups and containers under a parent of this agent's own: agents sharing a
        // host (a local cluster, or several clusters in tests) never take each other's tasks
        // for leftovers.
        self.executor = TaskExecutor(
            cgroupParent: configuration.cgroupParent + "/" + agentId, allowRootTasks: configuration.allowRootTasks, logger: logger,
            stateDirectory: configuration.runtimeDirectory)
        checkWorkDirectoryReachable()
    }

    /// The agent's id, kept in its work directory so a restarted agent is the same agent.
    static func loadOrMakeId(_ directory: String) throws -> String {
        let path = directory + "/agent-id"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !id.isEmpty { return id }
        }
        let id = "agent-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
        try (id + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return id
    }

    public var id: String { agentId }

    /// Kills what an earlier run of this agent left running (its tasks are the master's to run
    /// again: the master marks them lost when the agent registers without them).
    public func killLeftovers() async {
        for taskId in executor.leftoverTaskIds() {
            logger.info("killing a task left by an earlier run of the agent", metadata: ["task": "\(taskId)"])
            await executor.killLeftovers(taskId: taskId)
        }
    }

    /// Runs once the HTTP server serves at `address`: registers, then heartbeats until cancelled.
    public func run(address: String) async {
        let resources =
            configuration.resources ?? configuration.resourceOverrides.applied(to: Self.measuredResources(workDirectory: configuration.workDirectory))
        info.withLock {
            $0 = AgentInfo(
                id: agentId, hostname: configuration.hostname, address: address, dataNodeId: configuration.dataNodeId,
                resources: resources, ports: configuration.ports, attributes: configuration.attributes)
        }
        while !Task.isCancelled {
            await register()
            await heartbeatUntilReregistration()
        }
    }

    /// What an agent offers when told nothing, as Mesos measures it: every core, memory less
    /// 1 GB (half of it below 2 GB), and the disk free where its sandboxes live less 5 GB (half
    /// of it below 10 GB).
    static func measuredResources(workDirectory: String) -> Resources {
        let cpus = Double(ProcessInfo.processInfo.activeProcessorCount)
        let memoryMB = Double(ProcessInfo.processInfo.physicalMemory) / 1_048_576
        let offered = memoryMB >= 2048 ? memoryMB - 1024 : memoryMB / 2
        var diskMB = 0.0
        var stats = statvfs()
        var directory = workDirectory
        while !directory.isEmpty, statvfs(directory, &stats) != 0 { directory = (directory as NSString).deletingLastPathComponent }
        if !directory.isEmpty {
            let freeMB = Double(stats.f_bavail) * Double(stats.f_frsize) / 1_048_576
            diskMB = (freeMB >= 10_240 ? freeMB - 5_120 : freeMB / 2).rounded(.down)
        }
        return Resources(cpus: cpus, memMB: offered.rounded(.down), diskMB: diskMB)
    }

    func register() async {
        var backoffMs: Int64 = 200
        while !Task.isCancelled {
            guard let info = info.withLock({ $0 }) else { return }
            do {
                let statuses = reportedStatuses()
                let _: [String: String] = try await post("/api/v1/agents", ComputeAPI.Registration(agent: info, tasks: statuses))
                acknowledge(statuses)
                logger.info("agent registered with the master", metadata: ["agent": "\(agentId)", "master": "\(configuration.masterAddress)"])
                return
            } catch {
                logger.debug("registration failed; trying again", metadata: ["error": "\(error)"])
                try? await clock.sleep(milliseconds: backoffMs)
                backoffMs = min(backoffMs * 2, 5_000)
            }
        }
    }

    func heartbeatUntilReregistration() async {
        while !Task.isCancelled {
            let seen = registrationWanted.count
            await clock.wait(for: registrationWanted, after: seen, until: clock.now.advanced(byMilliseconds: configuration.heartbeatIntervalMs))
            if registrationWanted.count != seen { return }
            do {
                let statuses = reportedStatuses(leavingOutQueued: true)
                let reply: ComputeAPI.HeartbeatReply = try await post(
                    "/api/v1/agents/\(agentId)/heartbeat", ComputeAPI.Heartbeat(tasks: statuses))
                if reply.reregister {
                    logger.info("the master asked the agent to register again")
                    return
                }
                acknowledge(statuses)
            } catch {
                logger.debug("heartbeat failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The tasks the master should hear about: those not ended, and ended ones it has not
    /// acknowledged; for a heartbeat (`leavingOutQueued`), not those whose reports are on their
    /// way (a registration names every task: the master takes a task left out for lost).
    func reportedStatuses(leavingOutQueued: Bool = false) -> [TaskStatus] {
        let queued = leavingOutQueued ? outbox.withLock { Set($0.undelivered.keys) } : []
        return tasks.withLock { tasks in
            tasks.values.filter { !$0.acknowledged && !queued.contains($0.status.taskId) }.map(\.status).sorted { $0.taskId < $1.taskId }
        }
    }

    /// Marks the terminal statuses among `sent` as acknowledged: the master answered a
    /// registration or heartbeat that carried them, and it answers only once what they changed
    /// is durable. Without this, a terminal status whose own report failed (the master was down)
    /// would ride along in every heartbeat for as long as the agent runs.
    func acknowledge(_ sent: [TaskStatus]) {
        tasks.withLock { tasks in
            for status in sent where status.state.isTerminal { tasks[status.taskId]?.acknowledged = true }
        }
    }

    /// Kills every task and waits for their runners, after `run` ended.
    public func shutdown() async {
        // From here no task is accepted, and one being launched now is killed as soon as it
        // runs (its runner sees the kill request), so waiting for the runners ends.
        tasks.withLock { tasks in
            stopping.withLock { $0 = true }
            for taskId in tasks.keys { tasks[taskId]?.killRequested = true }
        }
        // Tasks waiting for their not-before time stop waiting.
        for signal in tasks.withLock({ $0.values.map(\.killSignal) }) { signal.signal() }
        while true {
            await executor.killAll(gracePeriodMs: 2_000)
            let all = runners.withLock { runners in
                defer { runners = [:] }
                return Array(runners.values)
            }
            if all.isEmpty { break }
            for runner in all { await runner.value }
        }
        _ = executor.removeParentCgroupIfUnused()
        try? await http.shutdown()
    }

    // MARK: - Tasks

    /// Accepts a task from the master and starts running it. False if a task of that id is here.
    func accept(_ order: TaskLaunchOrder) -> Bool {
        let sandbox = configuration.workDirectory + "/sandboxes/" + order.taskId
        let accepted = tasks.withLock { tasks -> Bool in
            guard tasks[order.taskId] == nil, !stopping.withLock({ $0 }) else { return false }
            tasks[order.taskId] = AgentTask(order: order, status: TaskStatus(taskId: order.taskId, state: .staging), sandbox: sandbox)
            return true
        }
        guard accepted else { return false }
        let runner = Task { await self.runTask(order, sandbox: sandbox) }
        runners.withLock { $0[order.taskId] = runner }
        return true
    }

    /// Kills a task (or, when this agent does not have it, whatever an earlier run left of it).
    func kill(_ taskId: String) async {
        let (running, signal) = tasks.withLock { tasks -> (RunningTask?, EventCounter?) in
            tasks[taskId]?.killRequested = true
            return (tasks[taskId]?.running, tasks[taskId]?.killSignal)
        }
        signal?.signal()
        if let running {
            await running.kill(gracePeriodMs: configuration.killGracePeriodMs)
        } else if tasks.withLock({ $0[taskId] == nil }) {
            await executor.killLeftovers(taskId: taskId)
        }
    }

    func runTask(_ order: TaskLaunchOrder, sandbox: String) async {
        defer { _ = runners.withLock { $0.removeValue(forKey: order.taskId) } }
        await report(TaskStatus(taskId: order.taskId, state: .starting))
        let client = taskClient(user: order.user)
        var status: TaskStatus
        do {
            status = try await execute(order, sandbox: sandbox, client: client)
        } catch let error as LaunchError {
            status = TaskStatus(taskId: order.taskId, state: .failed, reason: error.reason, message: error.message)
        } catch let error as TaskFailure {
            status = TaskStatus(taskId: order.taskId, state: .failed, reason: error.reason, message: error.message)
        } catch {
            status = TaskStatus(
                taskId: order.taskId, state: .failed, reason: "REASON_COMMAND_EXECUTOR_FAILED", message: "\(error)")
        }
        await client.close()
        if status.state != .finished {
            status.stderrTail = Self.tail(of: sandbox + "/stderr", lines: 20, bytes: 4096)
        }
        await report(status)
        // What the task held is free and reported; its runner ends once the executor has
        // removed its cgroup (an agent that shuts down waits for that).
        if let running = executor.runningTask(order.taskId) { _ = await running.wait() }
    }

    /// Prepares the task (its user, sandbox and image), reads the split, runs the command and
    /// commits the output. Returns the terminal status.
    func execute(_ order: TaskLaunchOrder, sandbox: String, client: DFSClient) async throws -> TaskStatus {
        let user = HostUser.lookUp(order.user)
        guard let user else {
            throw LaunchError(message: "user '\(order.user)' does not exist on this agent's host (\(configuration.hostname))", reason: "REASON_TASK_INVALID")
        }
        try FileManager.default.createDirectory(atPath: sandbox, withIntermediateDirectories: true)
        _ = chown(sandbox, user.uid, user.gid)
        if tasks.withLock({ $0[order.taskId]?.killRequested ?? false }) {
            return TaskStatus(taskId: order.taskId, state: .killed, reason: "REASON_TASK_KILLED", message: "killed before it started")
        }
        var container = order.rootFilesystem.map { ContainerSpec(rootFilesystem: $0) }
        var lease: RootfsLease?
        if let image = order.image {
            let acquired = try await imageRootFilesystem(image, client: client)
            lease = acquired
            container = ContainerSpec(rootFilesystem: acquired.rootFilesystem, readOnly: true, workingDirectory: image.workingDirectory)
        }
        if container != nil, !(await waitUntilNotBefore(order)) {
            // A container is made by runc when it starts, so it waits here, prepared (its image
            // pulled and unpacked), for its not-before time.
            if let lease { await imageCache.release(lease) }
            return Self.killedBeforeItsTime(order)
        }
        do {
            let status = try await launchAndWait(order, sandbox: sandbox, client: client, container: container)
            if let lease { await imageCache.release(lease) }
            return status
        } catch {
            if let lease { await imageCache.release(lease) }
            throw error
        }
    }

    /// Runs the command (in `container`, if any) with the split on its stdin, and commits its
    /// output. Returns the terminal status.
    private func launchAndWait(_ order: TaskLaunchOrder, sandbox: String, client: DFSClient, container: ContainerSpec?) async throws -> TaskStatus {
        // The task starts at once and reads its split from a pipe while the split is read from
        // the DFS (no copy of it on disk).
        let input = try TaskInputPipe()
        var launch = TaskLaunch(
            taskId: order.taskId, arguments: order.arguments, environment: taskEnvironment(order, sandbox: sandbox), user: order.user,
            sandbox: sandbox, standardInputDescriptor: input.readDescriptor, resources: order.resources, container: container)
        // A process due later is made ready now (files, cgroups, its shell waiting in them) and
        // released at its not-before time, so that many tasks due at one instant start then
        // rather than queueing behind each other's preparation.
        launch.heldUntilReleased = container == nil && millisecondsUntilNotBefore(order) > 0
        let running: RunningTask
        do {
            running = try await executor.launch(launch)
        } catch {
            input.closeReadEnd()
            input.cancel()
            await input.waitUntilClosed()
            throw error
        }
        // The task has its own copy; the agent's would keep a task that has gone away from
        // ending the stream (EPIPE).
        input.closeReadEnd()
        let gracePeriodMs = configuration.killGracePeriodMs
        let reading = Task { () -> Result<SplitReader.Result, any Error> in
            do {
                return .success(try await SplitReader.stream(order.split, client: client, into: input))
            } catch {
                // The task must not finish on part of its input.
                input.cancel()
                await running.kill(gracePeriodMs: gracePeriodMs)
                return .failure(error)
            }
        }
        let killedMeanwhile = tasks.withLock { tasks -> Bool in
            tasks[order.taskId]?.running = running
            return tasks[order.taskId]?.killRequested ?? false
        }
        if killedMeanwhile { await running.kill(gracePeriodMs: configuration.killGracePeriodMs) }
        var startedCommand = true
        if launch.heldUntilReleased {
            startedCommand = await waitUntilNotBefore(order) && running.release()
            if !startedCommand { await running.kill(gracePeriodMs: 0) }
        }
        if startedCommand { await report(TaskStatus(taskId: order.taskId, state: .running)) }
        let health = order.healthCheck.map { check in
            Task { await self.superviseHealth(check, order: order, running: running, sandbox: sandbox) }
        }
        // Reported as soon as none of its processes is left; `runTask` waits for the cgroup's
        // removal after the report.
        let outcome = await running.waitUntilEnded()
        health?.cancel()
        let unhealthy = await health?.value
        // Whatever the task left unread is not needed (and a process it left behind holding its
        // stdin must not keep the stream going).
        input.cancel()
        let readResult = await reading.value
        await input.waitUntilClosed()
        // Held and killed before its time: its command never ran, whatever became of its input.
        if !startedCommand { return Self.killedBeforeItsTime(order) }
        let read: SplitReader.Result
        switch readResult {
        case .success(let result):
            read = result
        case .failure(let error):
            throw TaskFailure(reason: "REASON_TASK_INVALID", message: "could not read the input split \(order.split.path)@\(order.split.offset): \(error)")
        }
        var status = TaskStatus(
            taskId: order.taskId, state: outcome.state, exitCode: outcome.exitCode, reason: outcome.reason, message: outcome.message,
            bytesReadLocal: read.localBytes, bytesReadRemote: read.remoteBytes)
        if let unhealthy, outcome.state == .killed {
            status.reason = Self.healthReason
            status.message = unhealthy
            status.healthy = false
        }
        if outcome.state == .finished, !order.output.isEmpty {
            do {
                status.message = try await commitOutput(order, sandbox: sandbox, client: client)
            } catch {
                status.state = .failed
                status.reason = "REASON_COMMAND_EXECUTOR_FAILED"
                status.message = "the task finished but its output could not be committed: \(error)"
            }
        }
        return status
    }

    /// How long until the order's not-before time by the agent's clock (0 when none or past).
    func millisecondsUntilNotBefore(_ order: TaskLaunchOrder) -> Int64 {
        guard let notBefore = order.notBeforeMs else { return 0 }
        return max(0, notBefore - clock.wallTimeMs)
    }

    /// Waits until the order's not-before time, measured on the agent's monotonic clock from
    /// its wall clock now (a step of the wall clock meanwhile does not move it). False if the
    /// task was asked to die first: its command must then never start.
    func waitUntilNotBefore(_ order: TaskLaunchOrder) async -> Bool {
        let deadline = clock.now.advanced(byMilliseconds: millisecondsUntilNotBefore(order))
        guard let signal = tasks.withLock({ $0[order.taskId]?.killSignal }) else { return false }
        while true {
            let seen = signal.count
            if tasks.withLock({ $0[order.taskId]?.killRequested ?? true }) { return false }
            if clock.now >= deadline { return true }
            await clock.wait(for: signal, after: seen, until: deadline)
        }
    }

    /// The status of a task killed while it waited for its not-before time.
    static func killedBeforeItsTime(_ order: TaskLaunchOrder) -> TaskStatus {
        TaskStatus(
            taskId: order.taskId, state: .killed, reason: "REASON_TASK_KILLED",
            message: "killed before its not-before time; its command never started")
    }

    func taskEnvironment(_ order: TaskLaunchOrder, sandbox: String) -> [String: String] {
        var environment = order.environment
        environment["STRATA_TASK_ID"] = order.taskId
        environment["STRATA_JOB_ID"] = order.jobId
        environment["STRATA_INPUT_PATH"] = order.split.path
        environment["STRATA_INPUT_OFFSET"] = String(order.split.offset)
        // Marathon's names for a task's ports and host.
        let ports = order.ports ?? []
        for (index, port) in ports.enumerated() { environment["PORT\(index)"] = String(port) }
        if let first = ports.first {
            environment["PORT"] = String(first)
            environment["PORTS"] = ports.map(String.init).joined(separator: ",")
        }
        environment["HOST"] = environment["HOST"] ?? configuration.hostname
        let inContainer = order.rootFilesystem != nil || order.image != nil
        environment["MESOS_SANDBOX"] = inContainer ? "/mnt/sandbox" : sandbox
        environment["HOME"] = environment["HOME"] ?? (inContainer ? "/mnt/sandbox" : sandbox)
        return environment
    }

    /// Writes the task's stdout under the job's `_temporary` directory, then renames it to its
    /// part name. The rename fails if the part exists, so only the first attempt to finish ever
    /// commits a part: a duplicate attempt's output is dropped.
    func commitOutput(_ order: TaskLaunchOrder, sandbox: String, client: DFSClient) async throws -> String {
        let temporary = "\(order.output)/_temporary/\(order.taskId)"
        let staged = "\(temporary)/\(order.partName)"
        let stream = try await client.create(staged, overwrite: true)
        do {
            let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: sandbox + "/stdout"))
            defer { try? file.close() }
            while let chunk = try file.read(upToCount: 4 << 20), !chunk.isEmpty {
                try await stream.write(Array(chunk))
            }
            try await stream.close()
        } catch {
            try? await stream.close()
            throw error
        }
        var message = "finished"
        do {
            try await client.rename(staged, to: "\(order.output)/\(order.partName)")
        } catch let error as RemoteException where error.exceptionClass == .fileAlreadyExists {
            message = "finished; another attempt had already committed \(order.partName), so this one's output was dropped"
        }
        _ = try? await client.delete(temporary, recursive: true)
        return message
    }

    func taskClient(user: String) -> DFSClient {
        var configuration = dfs
        configuration.user = user
        return DFSClient(configuration: configuration, group: group, clock: clock)
    }

    /// Records a task's state and tells the master (batched with other tasks' reports). A status
    /// the master did not get goes with the next heartbeat.
    func report(_ status: TaskStatus) async {
        tasks.withLock { tasks in
            tasks[status.taskId]?.status = status
            if status.state.isTerminal { tasks[status.taskId]?.running = nil }
        }
        let sends = outbox.withLock { outbox -> Bool in
            outbox.add(status)
            guard !outbox.sending else { return false }
            outbox.sending = true
            return true
        }
        if sends { await sendReports() }
    }

    /// Sends the queued status reports, as many per call as have gathered (in order), until none
    /// is left. One caller at a time does this (the one that found no sender at work): while its
    /// call is under way the others' statuses gather, so a burst of tasks starting at one instant
    /// reaches the master in a few calls, each handled and logged as one.
    func sendReports() async {
        while true {
            let batch = outbox.withLock { outbox -> [TaskStatus]? in
                guard !outbox.pending.isEmpty else {
                    outbox.sending = false
                    return nil
                }
                let batch = Array(outbox.pending.prefix(ComputeAPI.StatusReports.maximumCount))
                outbox.pending.removeFirst(batch.count)
                return batch
            }
            guard let batch else { return }
            do {
                let _: [String: String] = try await post("/api/v1/agents/\(agentId)/statuses", ComputeAPI.StatusReports(statuses: batch))
                acknowledge(batch)
            } catch {
                logger.debug(
                    "status updates not delivered; the next heartbeat carries them", metadata: ["tasks": "\(batch.count)", "error": "\(error)"])
            }
            outbox.withLock { outbox in
                for status in batch {
                    let left = (outbox.undelivered[status.taskId] ?? 1) - 1
                    outbox.undelivered[status.taskId] = left > 0 ? left : nil
                }
            }
        }
    }

    static func tail(of path: String, lines: Int, bytes: Int) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let start = size > UInt64(bytes) ? size - UInt64(bytes) : 0
        try? handle.seek(toOffset: start)
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1).joined(separator: "\n")
            .trimmingCharacters(in: .newlines)
    }

    // MARK: - Talking to the master

    @discardableResult
    func post<Reply: Decodable>(_ path: String, _ body: some Encodable) async throws -> Reply {
        try await JSONClient.call(http, .POST, url: "http://\(configuration.masterAddress)\(path)", body: body, token: configuration.token)
    }
}

public struct AgentError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A task that could not run, with Mesos' reason.
struct TaskFailure: Error, CustomStringConvertible {
    var reason: String
    var message: String
    var description: String { message }
}
