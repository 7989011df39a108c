import StrataCompute
import StrataCore
import Testing

struct PlacementConstraintTests {
    @Test func uniqueHostnamePutsOneTaskOfTheGroupPerHostCountingRunningTasks() {
        var placer = Placer(agents: ["a1", "a2", "a3", "a4"].map { placementAgent($0) })
        placer.addRunning(group: "web", user: "alice", agentId: "a4", needs: .zero)
        let unique = [Constraint(field: "hostname", operator: .unique)]
        let round = placer.place(
            (1...4).map { placementTask("web\($0)", group: "web", constraints: unique) }
                + [placementTask("db1", group: "db", constraints: unique)],
            now: .zero)
        #expect(Set(["web1", "web2", "web3"].compactMap { round.agentByTask[$0] }) == ["a1", "a2", "a3"])
        #expect(round.noRoom == ["web4"])
        // Another group's tasks do not count: a4 is the least loaded agent left.
        #expect(round.agentByTask["db1"] == "a4")
    }

    @Test func uniqueOnAnAttributeAllowsOneTaskPerValueAndNoneWithoutTheAttribute() {
        var placer = Placer(agents: [
            placementAgent("a1", attributes: ["rack": "r1"]), placementAgent("a2", attributes: ["rack": "r1"]),
            placementAgent("a3", attributes: ["rack": "r2"]), placementAgent("a4"),
        ])
        let round = placer.place(
            (1...3).map { placementTask("t\($0)", constraints: [Constraint(field: "rack", operator: .unique)]) }, now: .zero)
        #expect(round.decisions.count == 2)
        #expect(Set(round.decisions.map(\.agentId)).contains("a3"))
        #expect(!round.decisions.map(\.agentId).contains("a4"))
        #expect(round.noRoom == ["t3"])
    }

    @Test func clusterWithAValueKeepsTheGroupOnAgentsWithThatValue() {
        var placer = Placer(agents: [
            placementAgent("a1", attributes: ["rack": "r1"]), placementAgent("a2", cpus: 2, attributes: ["rack": "r2"]),
            placementAgent("a3", cpus: 2, attributes: ["rack": "r2"]),
        ])
        let onR2 = [Constraint(field: "rack", operator: .cluster, value: "r2")]
        let round = placer.place(
            (1...5).map { placementTask("t\($0)", constraints: onR2) }
                + [placementTask("nowhere", constraints: [Constraint(field: "rack", operator: .cluster, value: "r9")])],
            now: .zero)
        // r2 has four cpus in all: four tasks there, none on r1 although a1 is idle.
        #expect(Set(round.decisions.map(\.agentId)) == ["a2", "a3"])
        #expect(round.decisions.count == 4)
        #expect(round.noRoom == ["t5", "nowhere"])
    }

    @Test func clusterWithoutAValueFollowsTheGroupsFirstTask() {
        let agents = [
            placementAgent("a1", attributes: ["rack": "r1"]),
            placementAgent("a2", available: Resources(cpus: 1, memMB: 1024), attributes: ["rack": "r1"]),
            placementAgent("a3", attributes: ["rack": "r2"]),
        ]
        let together = [Constraint(field: "rack", operator: .cluster)]
        // The first task goes to the least loaded agent (a1, rack r1); the rest follow it to r1,
        // filling a2 before a3 (r2), though a3 is idle.
        var fresh = Placer(agents: agents)
        let round = fresh.place((1...6).map { placementTask("t\($0)", constraints: together) }, now: .zero)
        #expect(round.decisions.map(\.agentId).sorted() == ["a1", "a1", "a1", "a1", "a2"])
        #expect(round.noRoom == ["t6"])
        // A running task of the group decides it instead.
        var running = Placer(agents: agents)
        running.addRunning(group: "job", user: "alice", agentId: "a3", needs: .zero)
        let afterRunning = running.place((1...2).map { placementTask("t\($0)", constraints: together) }, now: .zero)
        #expect(afterRunning.decisions.map(\.agentId) == ["a3", "a3"])
    }

    @Test func likeAndUnlikeMatchTheWholeValueAndTreatAMissingAttributeAsNoMatch() {
        let agents = [
            placementAgent("a1", attributes: ["rack": "r1"]), placementAgent("a2", attributes: ["rack": "r2"]),
            placementAgent("a10", attributes: ["rack": "r10"]), placementAgent("bare"),
        ]
        var placer = Placer(agents: agents)
        let like = placer.place(
            (1...8).map { placementTask("like\($0)", constraints: [Constraint(field: "rack", operator: .like, value: "r[12]")]) },
            now: .zero)
        #expect(Set(like.decisions.map(\.agentId)) == ["a1", "a2"])
        #expect(like.decisions.count == 8)
        var other = Placer(agents: agents)
        let unlike = other.place(
            (1...8).map { placementTask("unlike\($0)", constraints: [Constraint(field: "rack", operator: .unlike, value: "r[12]")]) },
            now: .zero)
        #expect(Set(unlike.decisions.map(\.agentId)) == ["a10", "bare"])
        #expect(unlike.decisions.count == 8)
        let hostnames = other.place(
            [placementTask("host", constraints: [Constraint(field: "hostname", operator: .like, value: "a1.*")])], now: .zero)
        #expect(hostnames.agentByTask == ["host": "a1"])
    }

    @Test func groupBySpreadsTheGroupEvenlyOverTheValues() {
        // Rack r1 has three agents, r2 and r3 one each: least-loaded alone would pile onto r1.
        var placer = Placer(agents: [
            placementAgent("a1", attributes: ["rack": "r1"]), placementAgent("a2", attributes: ["rack": "r1"]),
            placementAgent("a3", attributes: ["rack": "r1"]),
            placementAgent("b1", available: Resources(cpus: 3, memMB: 4096), attributes: ["rack": "r2"]),
            placementAgent("c1", available: Resources(cpus: 3, memMB: 4096), attributes: ["rack": "r3"]),
        ])
        let round = placer.place(
            (1...6).map { placementTask("t\($0)", constraints: [Constraint(field: "rack", operator: .groupBy)]) }, now: .zero)
        var perRack: [String: Int] = [:]
        for decision in round.decisions { perRack[String(decision.agentId.prefix(1)), default: 0] += 1 }
        #expect(perRack == ["a": 2, "b": 2, "c": 2])
    }

    @Test func maxPerCapsTheGroupPerValueCountingRunningTasks() {
        var placer = Placer(agents: [
            placementAgent("a1", attributes: ["rack": "r1"]), placementAgent("a2", attributes: ["rack": "r1"]),
            placementAgent("b1", attributes: ["rack": "r2"]),
        ])
        placer.addRunning(group: "job", user: "alice", agentId: "b1", needs: .zero)
        let round = placer.place(
            (1...5).map { placementTask("t\($0)", constraints: [Constraint(field: "rack", operator: .maxPer, value: "2")]) },
            now: .zero)
        #expect(round.decisions.map(\.agentId).filter { $0.hasPrefix("a") }.count == 2)
        #expect(round.decisions.map(\.agentId).filter { $0 == "b1" }.count == 1)
        #expect(round.noRoom == ["t4", "t5"])
    }
}
