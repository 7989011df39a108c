import StrataCompute
import StrataCore
import Testing

struct PlacementFeasibilityTests {
    let placer = Placer(agents: [
        placementAgent("big-cpu", cpus: 16, memMB: 1024, ports: [PortRange(31000, 31009)], attributes: ["rack": "r1"]),
        placementAgent("big-mem", cpus: 2, memMB: 65536, attributes: ["rack": "r2"]),
        // Full right now, which does not matter: the question is about an empty cluster.
        placementAgent("busy", cpus: 8, memMB: 8192, available: .zero, attributes: ["rack": "r3"]),
    ])

    @Test func aTaskThatFitsSomeAgentWhenEmptyIsPlaceable() {
        #expect(placer.neverPlaceableReason(placementTask("t", cpus: 8, memMB: 8192)) == nil)
        #expect(placer.neverPlaceableReason(placementTask("t", cpus: 1, memMB: 512, portCount: 10)) == nil)
        let onR3 = [Constraint(field: "rack", operator: .like, value: "r[3-9]")]
        #expect(placer.neverPlaceableReason(placementTask("t", constraints: onR3)) == nil)
    }

    @Test func aTaskBiggerThanEveryAgentSaysWhatIsTooBig() throws {
        let cpus = try #require(placer.neverPlaceableReason(placementTask("t", cpus: 32)))
        #expect(cpus.contains("32 cpus") && cpus.contains("16"))
        let ports = try #require(placer.neverPlaceableReason(placementTask("t", portCount: 11)))
        #expect(ports.contains("11 ports"))
        // Enough cpus on one agent and enough memory on another, but not both on any.
        let combined = try #require(placer.neverPlaceableReason(placementTask("t", cpus: 10, memMB: 10_000)))
        #expect(combined.contains("no single agent"))
    }

    @Test func aLikeThatMatchesNoAgentOrIsNotARegularExpressionIsNeverPlaceable() throws {
        let nowhere = try #require(
            placer.neverPlaceableReason(placementTask("t", constraints: [Constraint(field: "rack", operator: .like, value: "r9")])))
        #expect(nowhere.contains("rack:LIKE:r9") && nowhere.contains("r1, r2, r3"))
        // Whole values only: "r" is a prefix of every rack but the value of none.
        #expect(placer.neverPlaceableReason(placementTask("t", constraints: [Constraint(field: "rack", operator: .like, value: "r")])) != nil)
        let missing = try #require(
            placer.neverPlaceableReason(placementTask("t", constraints: [Constraint(field: "zone", operator: .like, value: ".*")])))
        #expect(missing.contains("no agent has zone"))
        let invalid = try #require(
            placer.neverPlaceableReason(placementTask("t", constraints: [Constraint(field: "rack", operator: .like, value: "r[")])))
        #expect(invalid.contains("not a valid regular expression"))
        // And place() agrees: such tasks have no room.
        var copy = placer
        let round = copy.place([placementTask("t", constraints: [Constraint(field: "rack", operator: .like, value: "r[")])], now: .zero)
        #expect(round.noRoom == ["t"])
    }

    @Test func constraintsSatisfiedOnlyByAgentsTooSmallMakeATaskNeverPlaceable() throws {
        let reason = try #require(
            placer.neverPlaceableReason(
                placementTask("t", cpus: 12, memMB: 512, constraints: [Constraint(field: "rack", operator: .cluster, value: "r2")])))
        #expect(reason.contains("rack:CLUSTER:r2"))
    }
}
