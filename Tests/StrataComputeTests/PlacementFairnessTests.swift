import StrataCompute
import StrataCore
import Testing

struct PlacementFairnessTests {
    /// The example of the DRF paper (Ghodsi et al., NSDI 2011): 9 cpus and 18 GB; user A's tasks
    /// need <1 cpu, 4 GB> (memory dominant), user B's <3 cpus, 1 GB> (cpu dominant). DRF gives A
    /// three tasks and B two, equalizing their dominant shares at 2/3.
    @Test func theDRFPaperExampleGivesAThreeTasksAndBTwo() {
        var placer = Placer(agents: [placementAgent("a1", cpus: 9, memMB: 18 * 1024)])
        let pending =
            (1...5).map { placementTask("A\($0)", user: "A", cpus: 1, memMB: 4 * 1024) }
            + (1...5).map { placementTask("B\($0)", user: "B", cpus: 3, memMB: 1024) }
        let round = placer.place(pending, now: .zero)
        #expect(round.decisions.map(\.taskId) == ["A1", "B1", "A2", "B2", "A3"])
        #expect(round.noRoom.sorted() == ["A4", "A5", "B3", "B4", "B5"])
    }

    @Test func runningTasksCountTowardTheirUsersShare() {
        // bob's running task holds 2 of the agent's 4 cpus.
        var placer = Placer(agents: [placementAgent("a1", cpus: 4, memMB: 4096, available: Resources(cpus: 2, memMB: 3584))])
        placer.addRunning(group: "old", user: "bob", agentId: "a1", needs: Resources(cpus: 2, memMB: 512))
        let pending = [
            placementTask("bob1", user: "bob"), placementTask("bob2", user: "bob"),
            placementTask("alice1", user: "alice"), placementTask("alice2", user: "alice"),
        ]
        // The agent's free 2 cpus (of 4) go to alice, whose share is 0, though bob's tasks came
        // first: after one each bob would be at 3/4.
        let round = placer.place(pending, now: .zero)
        #expect(round.decisions.map(\.taskId) == ["alice1", "alice2"])
        #expect(round.noRoom == ["bob1", "bob2"])
    }

    @Test func sharesCarryOverToTheNextRound() {
        var placer = Placer(agents: [placementAgent("a1", cpus: 9, memMB: 9216)])
        _ = placer.place([placementTask("alice1", user: "alice", cpus: 3)], now: .zero)
        // alice holds 3/9: bob goes first until his 4/9 passes her.
        let round = placer.place(
            [placementTask("alice2", user: "alice", cpus: 2), placementTask("bob1", user: "bob", cpus: 2),
             placementTask("bob2", user: "bob", cpus: 2)],
            now: .zero)
        #expect(round.decisions.map(\.taskId) == ["bob1", "bob2", "alice2"])
    }

    @Test func equalSharesGoInTaskOrder() {
        var placer = Placer(agents: [placementAgent("a1", cpus: 2, memMB: 4096)])
        let round = placer.place(
            [placementTask("bob1", user: "bob"), placementTask("alice1", user: "alice"), placementTask("carol1", user: "carol")],
            now: .zero)
        #expect(round.decisions.map(\.taskId) == ["bob1", "alice1"])
        #expect(round.noRoom == ["carol1"])
    }
}
