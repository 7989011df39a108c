import StrataCompute
import StrataCore
import Testing

struct PlacementLocalityTests {
    /// a1 sits beside d1 and is full; a2 (beside d2) and a3 (no data node) are idle.
    func clusterWithBusyLocalAgent(localFree: Resources = .zero) -> Placer {
        Placer(agents: [
            placementAgent("a1", available: localFree, dataNode: "d1"),
            placementAgent("a2", dataNode: "d2"),
            placementAgent("a3"),
        ])
    }

    @Test func aTaskIsPlacedOnTheLeastLoadedAgentBesideAPreferredDataNode() {
        var placer = Placer(agents: [
            placementAgent("a1", available: Resources(cpus: 2, memMB: 4096), dataNode: "d1"),
            placementAgent("a2", available: Resources(cpus: 3, memMB: 4096), dataNode: "d2"),
            placementAgent("idle", dataNode: "d3"),
        ])
        let round = placer.place([placementTask("t1", preferring: ["d1", "d2"])], now: .zero)
        #expect(round.decisions == [PlacementDecision(taskId: "t1", agentId: "a2", ports: [], isNodeLocal: true)])
    }

    @Test func aTaskWaitsForItsLocalAgentUntilItsLocalityWaitEndsThenGoesAnywhere() {
        var placer = clusterWithBusyLocalAgent()
        let early = placer.place([placementTask("t1", preferring: ["d1"], since: 1000)], now: .milliseconds(2500))
        #expect(early.decisions.isEmpty)
        #expect(early.waitingForLocality == ["t1"])
        #expect(early.nextLocalityDeadline == .milliseconds(4000))
        let late = placer.place([placementTask("t1", preferring: ["d1"], since: 1000)], now: .milliseconds(4000))
        #expect(late.waitingForLocality.isEmpty)
        #expect(late.decisions.count == 1)
        #expect(late.decisions.first?.isNodeLocal == false)
        #expect(late.nextLocalityDeadline == nil)
    }

    @Test func aTaskTakesItsLocalAgentAsSoonAsItHasRoom() {
        // The next round after a task on a1 finished: a1 has room again before the wait is over.
        var placer = clusterWithBusyLocalAgent(localFree: Resources(cpus: 1, memMB: 1024))
        let round = placer.place([placementTask("t1", preferring: ["d1"], since: 1000)], now: .milliseconds(1500))
        #expect(round.decisions == [PlacementDecision(taskId: "t1", agentId: "a1", ports: [], isNodeLocal: true)])
    }

    @Test func aLocalityWaitOfZeroNeverHoldsATaskBack() {
        var placer = clusterWithBusyLocalAgent()
        let round = placer.place([placementTask("t1", preferring: ["d1"], since: 1000, localityWaitMs: 0)], now: .milliseconds(1000))
        #expect(round.waitingForLocality.isEmpty)
        #expect(round.decisions.first?.isNodeLocal == false)
    }

    @Test func tasksWithoutPreferenceOrWithoutAnAgentBesideTheirDataNodesAreNotHeldBack() {
        var placer = clusterWithBusyLocalAgent()
        let round = placer.place(
            [placementTask("anywhere"), placementTask("no-agent-there", preferring: ["d9"])], now: .zero)
        #expect(round.decisions.count == 2)
        #expect(round.waitingForLocality.isEmpty)
    }

    @Test func theNextLocalityDeadlineIsTheEarliestOfTheHeldBackTasks() {
        var placer = clusterWithBusyLocalAgent()
        let round = placer.place(
            [
                placementTask("t1", preferring: ["d1"], since: 500),
                placementTask("t2", preferring: ["d1"], since: 200, localityWaitMs: 1000),
                placementTask("t3", preferring: ["d1"], since: 0),
            ], now: .milliseconds(1000))
        #expect(round.waitingForLocality == ["t1", "t2", "t3"])
        #expect(round.nextLocalityDeadline == .milliseconds(1200))
    }

    @Test func aHeldBackTaskLeavesRoomForOthersInTheSameRound() {
        var placer = Placer(agents: [
            placementAgent("a1", available: .zero, dataNode: "d1"),
            placementAgent("a2", cpus: 1, memMB: 1024, dataNode: "d2"),
        ])
        let round = placer.place(
            [placementTask("waits", preferring: ["d1"]), placementTask("local", preferring: ["d2"])], now: .zero)
        #expect(round.waitingForLocality == ["waits"])
        #expect(round.decisions == [PlacementDecision(taskId: "local", agentId: "a2", ports: [], isNodeLocal: true)])
    }
}
