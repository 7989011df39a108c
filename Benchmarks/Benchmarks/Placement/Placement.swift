import Benchmark
import Foundation
import StrataCompute
import StrataCore
import Synchronization

// The master's placement (StrataCompute.Placer), pure logic:
//
// 1. Throughput: 5,000 agents and 100,000 pending tasks in one `place` call, each task preferring
//    the data nodes of three agents picked at random (its input block's replicas); and the same
//    tasks without preferences (every task through the search for the least loaded agent).
//    Target: >= 50,000 placements per second.
// 2. Delay scheduling on simulated time: a cluster kept about 80% busy by jobs of many tasks
//    arriving at random, run for half an hour of simulated time with locality waits of 0, 1 and
//    3 seconds; reports the fraction of tasks placed node-local and how long tasks waited.
//
// Each benchmark writes its part of the report to STRATA_BENCH_PLACEMENT_REPORT/<name>.txt when
// that directory is given (tools/bench placement prints them), and to standard output otherwise.

let throughputTarget = 50_000.0

/// SplitMix64: the same choices on every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An exponentially distributed wait with the given mean (for Poisson arrivals).
    mutating func exponential(mean: Double) -> Double {
        -mean * log(1 - Double.random(in: 0..<1, using: &self))
    }
}

func agent(_ number: Int, cpus: Double, memMB: Double) -> PlacementAgent {
    let total = Resources(cpus: cpus, memMB: memMB, diskMB: 1_000_000)
    let ports = [PortRange(31000, 32000)]
    let info = AgentInfo(
        id: "agent-\(number)", hostname: "host-\(number)", address: "host-\(number):5051", dataNodeId: "dn-\(number)",
        resources: total, ports: ports, attributes: ["rack": "rack-\(number / 40)"])
    return PlacementAgent(info: info, available: total, availablePorts: ports)
}

/// Three distinct agents' data nodes, as a block's three replicas would be.
func replicaDataNodes(agentCount: Int, using generator: inout SplitMix) -> [String] {
    var chosen: [Int] = []
    while chosen.count < 3 {
        let candidate = Int.random(in: 0..<agentCount, using: &generator)
        if !chosen.contains(candidate) { chosen.append(candidate) }
    }
    return chosen.map { "dn-\($0)" }
}

/// Writes (or prints) one part of the report.
func report(_ name: String, _ lines: [String]) {
    let text = lines.joined(separator: "\n") + "\n"
    if let directory = ProcessInfo.processInfo.environment["STRATA_BENCH_PLACEMENT_REPORT"] {
        let path = "\(directory)/\(name).txt"
        if !FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) {
            FileHandle.standardError.write(Data("placement benchmark: could not write \(path)\n".utf8))
        }
    } else {
        print(text)
    }
}

func format(_ value: Double, _ decimals: Int = 0) -> String {
    String(format: "%.\(decimals)f", value)
}

// MARK: Throughput

let throughputAgentCount = 5_000
let throughputTaskCount = 100_000

let throughputAgents = (0..<throughputAgentCount).map { agent($0, cpus: 32, memMB: 131_072) }

/// 100,000 tasks of 1 cpu and 2 GiB (one in ten also needs a port), 10 users, jobs of 100 tasks.
func throughputTasks(withPreferences: Bool) -> [PlacementTask] {
    var generator = SplitMix(state: 1)
    return (0..<throughputTaskCount).map { number in
        PlacementTask(
            id: "task-\(number)", group: "job-\(number / 100)", user: "user-\(number % 10)",
            needs: Resources(cpus: 1, memMB: 2048), portCount: number % 10 == 0 ? 1 : 0,
            preferredDataNodes: withPreferences ? replicaDataNodes(agentCount: throughputAgentCount, using: &generator) : [],
            waitingSince: .zero)
    }
}

struct ThroughputRun {
    var placeSeconds: Double
    var initSeconds: Double
    var placed: Int
    var nodeLocal: Int
    var waiting: Int
    var noRoom: Int
}

let throughputRuns = Mutex<[String: [ThroughputRun]]>([:])

func throughputReport() -> [String] {
    let runs = throughputRuns.withLock { $0 }
    var lines = [
        "placement throughput: \(throughputAgentCount) agents, \(throughputTaskCount) pending tasks in one place() call",
        "tasks                         runs  placed  node-local  held back  no room  Placer.init ms  best placements/s  median placements/s  target",
    ]
    var failed = false
    for (name, key) in [("3 preferred data nodes each", "preferred"), ("no preference", "anywhere")] {
        guard let list = runs[key], let first = list.first else { continue }
        let rates = list.map { Double($0.placed) / $0.placeSeconds }.sorted()
        let median = rates[rates.count / 2]
        let best = rates.last!
        let pass = median >= throughputTarget
        failed = failed || !pass
        let initMs = list.map(\.initSeconds).sorted()[list.count / 2] * 1000
        lines.append(
            name.padding(toLength: 30, withPad: " ", startingAt: 0)
                + String(list.count).leftPadded(4) + String(first.placed).leftPadded(8)
                + (format(100 * Double(first.nodeLocal) / Double(max(1, first.placed)), 1) + "%").leftPadded(12)
                + String(first.waiting).leftPadded(11) + String(first.noRoom).leftPadded(9)
                + format(initMs, 1).leftPadded(16) + format(best).leftPadded(19) + format(median).leftPadded(21)
                + "  >= \(Int(throughputTarget))  " + (pass ? "PASS" : "FAIL"))
    }
    lines.append("throughput check (median placements/s >= \(Int(throughputTarget))): \(failed ? "FAIL" : "PASS")")
    return lines
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

// MARK: Simulated time

/// The locality simulation's cluster and load.
enum Simulation {
    static let agentCount = 100
    static let slotsPerAgent = 4
    static let tasksPerJob = 40
    static let meanTaskSeconds = 5.0
    static let busyFraction = 0.8
    static let users = 4
    static let tickMs: Int64 = 100
    static let durationSeconds = 1800.0
    /// Tasks placed before this are left out of the figures (the cluster is still filling).
    static let warmUpSeconds = 60.0

    struct Result {
        var localityWaitMs: Int64
        var placed = 0
        var nodeLocal = 0
        var totalWaitMs = 0.0
        var waits: [Double] = []
        var busySlotTicks = 0
        var ticks = 0
    }

    struct Running {
        var agent: Int
        var user: String
        var endsAtMs: Int64
    }

    /// One run on simulated time: every tick (100 ms) finished tasks free their slots, arriving jobs
    /// add their tasks, and the master places everything pending with a fresh `Placer`, as it would.
    static func run(localityWaitMs: Int64) -> Result {
        var generator = SplitMix(state: 42)
        let agents = (0..<agentCount).map { agent($0, cpus: Double(slotsPerAgent), memMB: Double(slotsPerAgent) * 4096) }
        let slotNeeds = Resources(cpus: 1, memMB: 4096)
        // Jobs arrive as a Poisson process at the rate that keeps `busyFraction` of the slots busy.
        let jobsPerSecond = busyFraction * Double(agentCount * slotsPerAgent) / (Double(tasksPerJob) * meanTaskSeconds)
        var nextJobMs = Int64(generator.exponential(mean: 1 / jobsPerSecond) * 1000)
        var jobNumber = 0
        var pending: [PlacementTask] = []
        var durationsMs: [String: Int64] = [:]
        var running: [Running] = []
        var freeSlots = [Int](repeating: slotsPerAgent, count: agentCount)
        var result = Result(localityWaitMs: localityWaitMs)
        let endMs = Int64(durationSeconds * 1000)
        var nowMs: Int64 = 0
        while nowMs <= endMs {
            running.removeAll { task in
                guard task.endsAtMs <= nowMs else { return false }
                freeSlots[task.agent] += 1
                return true
            }
            while nextJobMs <= nowMs {
                for index in 0..<tasksPerJob {
                    let id = "job-\(jobNumber)-\(index)"
                    // Task lengths uniform in [0.2, 1.8] x the mean.
                    durationsMs[id] = Int64(meanTaskSeconds * 1000 * Double.random(in: 0.2...1.8, using: &generator))
                    pending.append(
                        PlacementTask(
                            id: id, group: "job-\(jobNumber)", user: "user-\(jobNumber % users)", needs: slotNeeds,
                            preferredDataNodes: replicaDataNodes(agentCount: agentCount, using: &generator),
                            waitingSince: .milliseconds(nextJobMs), localityWaitMs: localityWaitMs))
                }
                jobNumber += 1
                nextJobMs += max(1, Int64(generator.exponential(mean: 1 / jobsPerSecond) * 1000))
            }
            if !pending.isEmpty {
                var placer = Placer(
                    agents: agents.enumerated().map { number, agent in
                        let busy = Double(slotsPerAgent - freeSlots[number])
                        return PlacementAgent(
                            info: agent.info, available: agent.info.resources - Resources(cpus: busy, memMB: busy * 4096),
                            availablePorts: agent.availablePorts)
                    })
                for task in running {
                    placer.addRunning(group: "", user: task.user, agentId: "agent-\(task.agent)", needs: slotNeeds)
                }
                let round = placer.place(pending, now: .milliseconds(nowMs))
                var placedIds = Set<String>()
                let positionById = Dictionary(uniqueKeysWithValues: pending.enumerated().map { ($1.id, $0) })
                for decision in round.decisions {
                    let agentNumber = Int(decision.agentId.dropFirst("agent-".count))!
                    let task = pending[positionById[decision.taskId]!]
                    freeSlots[agentNumber] -= 1
                    running.append(Running(agent: agentNumber, user: task.user, endsAtMs: nowMs + durationsMs.removeValue(forKey: task.id)!))
                    placedIds.insert(task.id)
                    if Double(nowMs) >= warmUpSeconds * 1000 {
                        result.placed += 1
                        if decision.isNodeLocal { result.nodeLocal += 1 }
                        let waitedMs = Double(nowMs - task.waitingSince.nanoseconds / 1_000_000)
                        result.totalWaitMs += waitedMs
                        result.waits.append(waitedMs)
                    }
                }
                pending.removeAll { placedIds.contains($0.id) }
            }
            if Double(nowMs) >= warmUpSeconds * 1000 {
                result.ticks += 1
                result.busySlotTicks += running.count
            }
            nowMs += tickMs
        }
        return result
    }

    static func report(_ results: [Result]) -> [String] {
        var lines = [
            "delay scheduling on simulated time: \(agentCount) agents x \(slotsPerAgent) slots, jobs of \(tasksPerJob) tasks "
                + "(\(format(meanTaskSeconds)) s mean) arriving at random to keep \(Int(busyFraction * 100))% of slots busy, "
                + "each task preferring 3 agents' data nodes; \(Int(durationSeconds)) s simulated, the first \(Int(warmUpSeconds)) s left out",
            "locality wait   tasks placed   node-local   mean wait ms   p95 wait ms   slots busy",
        ]
        for result in results {
            let waits = result.waits.sorted()
            let p95 = waits.isEmpty ? 0 : waits[min(waits.count - 1, waits.count * 95 / 100)]
            lines.append(
                ("\(format(Double(result.localityWaitMs) / 1000)) s").leftPadded(13)
                    + String(result.placed).leftPadded(15)
                    + (format(100 * Double(result.nodeLocal) / Double(max(1, result.placed)), 1) + "%").leftPadded(13)
                    + format(result.totalWaitMs / Double(max(1, result.placed))).leftPadded(15)
                    + format(p95).leftPadded(14)
                    + (format(100 * Double(result.busySlotTicks) / Double(max(1, result.ticks * agentCount * slotsPerAgent)), 1) + "%")
                    .leftPadded(13))
        }
        return lines
    }
}

let benchmarks: @Sendable () -> Void = {
    // Both workloads in one benchmark: package-benchmark runs each benchmark in a process of its
    // own, and the report compares them.
    Benchmark(
        "place 100k tasks on 5k agents, with and without preferred data nodes",
        configuration: .init(
            metrics: [.wallClock], timeUnits: .milliseconds, warmupIterations: 0, scalingFactor: .one,
            maxDuration: .seconds(30), maxIterations: 10,
            setup: { _ = throughputAgents },
            teardown: { report("throughput", throughputReport()) })
    ) { benchmark in
        for (key, withPreferences) in [("preferred", true), ("anywhere", false)] {
            let tasks = throughputTasks(withPreferences: withPreferences)
            let clock = ContinuousClock()
            let initStart = clock.now
            var placer = Placer(agents: throughputAgents)
            let initSeconds = (clock.now - initStart) / .seconds(1)
            let start = clock.now
            let round = placer.place(tasks, now: .zero)
            let seconds = (clock.now - start) / .seconds(1)
            let run = ThroughputRun(
                placeSeconds: seconds, initSeconds: initSeconds, placed: round.decisions.count,
                nodeLocal: round.decisions.count(where: \.isNodeLocal), waiting: round.waitingForLocality.count,
                noRoom: round.noRoom.count)
            throughputRuns.withLock { $0[key, default: []].append(run) }
        }
    }

    Benchmark(
        "delay scheduling, simulated time, locality waits 0, 1, 3 s",
        configuration: .init(
            metrics: [.wallClock], timeUnits: .milliseconds, warmupIterations: 0, scalingFactor: .one,
            maxDuration: .seconds(1), maxIterations: 1)
    ) { _ in
        report("locality", Simulation.report([0, 1000, 3000].map { Simulation.run(localityWaitMs: $0) }))
    }
}
