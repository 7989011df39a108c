import StrataCompute
import StrataCore
import StrataTestKit
import Testing

/// An agent `name` (id and hostname) that is empty unless `available` says otherwise.
func placementAgent(
    _ name: String, cpus: Double = 4, memMB: Double = 4096, available: Resources? = nil, ports: [PortRange] = [],
    dataNode: String? = nil, attributes: [String: String] = [:]
) -> PlacementAgent {
    let total = Resources(cpus: cpus, memMB: memMB, diskMB: 0)
    let info = AgentInfo(
        id: name, hostname: name, address: "\(name):5051", dataNodeId: dataNode, resources: total, ports: ports,
        attributes: attributes)
    return PlacementAgent(info: info, available: available ?? total, availablePorts: ports)
}

func placementTask(
    _ id: String, group: String = "job", user: String = "alice", cpus: Double = 1, memMB: Double = 256, portCount: Int = 0,
    constraints: [Constraint] = [], preferring dataNodes: [String] = [], since waitingSince: Int64 = 0, localityWaitMs: Int64 = 3000
) -> PlacementTask {
    PlacementTask(
        id: id, group: group, user: user, needs: Resources(cpus: cpus, memMB: memMB), portCount: portCount, constraints: constraints,
        preferredDataNodes: dataNodes, waitingSince: .milliseconds(waitingSince), localityWaitMs: localityWaitMs)
}

extension PlacementRound {
    /// The agent each placed task went to.
    var agentByTask: [String: String] {
        Dictionary(uniqueKeysWithValues: decisions.map { ($0.taskId, $0.agentId) })
    }
}

struct PlacementTests {
    @Test func aTaskGetsTheLowestFreePortsAndWhatNoLongerFitsHasNoRoom() {
        var placer = Placer(agents: [placementAgent("a1", ports: [PortRange(31000, 31001), PortRange(31005, 31010)])])
        let round = placer.place(
            [
                placementTask("web", portCount: 3),
                placementTask("more-ports-than-left", portCount: 6),
                placementTask("rest", portCount: 5),
                placementTask("more-cpus-than-left", cpus: 2.5),
            ], now: .zero)
        #expect(round.decisions == [
            PlacementDecision(taskId: "web", agentId: "a1", ports: [31000, 31001, 31005], isNodeLocal: false),
            PlacementDecision(taskId: "rest", agentId: "a1", ports: [31006, 31007, 31008, 31009, 31010], isNodeLocal: false),
        ])
        // Two of the four cpus are taken.
        #expect(round.noRoom == ["more-ports-than-left", "more-cpus-than-left"])
        #expect(placer.place([placementTask("two", cpus: 2), placementTask("tiny", cpus: 0.1)], now: .zero).noRoom == ["tiny"])
    }

    @Test func decisionsTakeResourcesForLaterRounds() {
        var placer = Placer(agents: [placementAgent("a1", cpus: 2, memMB: 1000)])
        #expect(placer.place([placementTask("t1", cpus: 1, memMB: 600)], now: .zero).decisions.count == 1)
        let second = placer.place([placementTask("t2", cpus: 1, memMB: 600), placementTask("t3", cpus: 1, memMB: 400)], now: .zero)
        #expect(second.noRoom == ["t2"])
        #expect(second.agentByTask == ["t3": "a1"])
    }

    @Test func tasksSpreadToTheLeastLoadedAgent() {
        var placer = Placer(agents: [
            placementAgent("busy", available: Resources(cpus: 1, memMB: 4096)),
            placementAgent("memory-full", available: Resources(cpus: 4, memMB: 512)),
            placementAgent("idle"),
            placementAgent("half", available: Resources(cpus: 2, memMB: 2048)),
        ])
        // Scores (smallest free fraction): busy 0.25, memory-full 0.125, idle 1, half 0.5.
        // Each half-cpu task takes idle down by 0.125: 0.875, 0.75, 0.625, all above half.
        let round = placer.place((1...3).map { placementTask("t\($0)", cpus: 0.5, memMB: 256) }, now: .zero)
        #expect(round.decisions.map(\.agentId) == ["idle", "idle", "idle"])
        // One-cpu tasks: idle 0.625 -> 0.375; then half 0.5 -> 0.25; then idle again (0.375).
        let more = placer.place((4...6).map { placementTask("t\($0)", cpus: 1, memMB: 1024) }, now: .zero)
        #expect(more.decisions.map(\.agentId) == ["idle", "half", "idle"])
    }

    @Test func theChosenAgentIsTheLeastLoadedOneThatFitsOnRandomClusters() {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("PlacementTests seed \(seed)")
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<50 {
            let count = Int.random(in: 1...300, using: &generator)
            let agents = (0..<count).map { number in
                placementAgent(
                    "a\(number)", cpus: 8, memMB: 8192,
                    available: Resources(
                        cpus: Double(Int.random(in: 0...16, using: &generator)) / 2,
                        memMB: Double(Int.random(in: 0...16, using: &generator)) * 512),
                    ports: Bool.random(using: &generator) ? [PortRange(31000, 31003)] : [])
            }
            var placer = Placer(agents: agents)
            var free = agents.map(\.available)
            var freePorts = agents.map { $0.availablePorts.isEmpty ? 0 : 4 }
            for number in 0..<40 {
                let task = placementTask(
                    "t\(number)", cpus: Double(Int.random(in: 1...6, using: &generator)) / 2,
                    memMB: Double(Int.random(in: 1...6, using: &generator)) * 512, portCount: Int.random(in: 0...1, using: &generator))
                let expected = free.indices
                    .filter { free[$0].fits(task.needs) && freePorts[$0] >= task.portCount }
                    .max { left, right in
                        let (l, r) = (min(free[left].cpus / 8, free[left].memMB / 8192), min(free[right].cpus / 8, free[right].memMB / 8192))
                        return l < r || (l == r && left > right)
                    }
                let round = placer.place([task], now: .zero)
                #expect(round.decisions.first?.agentId == expected.map { "a\($0)" }, "seed \(seed)")
                if let expected {
                    free[expected] -= task.needs
                    freePorts[expected] -= task.portCount
                }
            }
        }
    }

    @Test func aHundredThousandTasksOnFiveThousandAgentsArePlacedExactlyOnce() {
        let agents = (0..<5000).map { placementAgent("a\($0)", cpus: 16, memMB: 65536, dataNode: "d\($0)") }
        var placer = Placer(agents: agents)
        let tasks = (0..<100_000).map { number in
            // Half prefer two data nodes, half go through the search for the least loaded agent.
            placementTask(
                "t\(number)", user: "u\(number % 7)", cpus: 1, memMB: 2048,
                preferring: number % 2 == 0 ? ["d\(number % 5000)", "d\((number * 7) % 5000)"] : [])
        }
        let round = placer.place(tasks, now: .milliseconds(10_000))
        #expect(round.decisions.count + round.noRoom.count + round.waitingForLocality.count == tasks.count)
        #expect(Set(round.decisions.map(\.taskId)).count == round.decisions.count)
        // 5,000 agents of 16 cpus hold 80,000 one-cpu tasks; memory (32 per agent) is not the limit.
        #expect(round.decisions.count == 80_000)
        var perAgent: [String: Int] = [:]
        for decision in round.decisions { perAgent[decision.agentId, default: 0] += 1 }
        #expect(perAgent.values.allSatisfy { $0 == 16 })
    }
}
