import StrataCron
import Testing

/// Run ids: the same job and scheduled time always give the same id, and ids parse back.
struct RunIdTests {
    @Test func anIdIsTheJobNameAndTheScheduledTimeInUTC() {
        let id = RunId(jobName: "nightly-compaction", scheduledMs: instant("2026-03-09T07:30:00Z"))
        #expect(id.description == "nightly-compaction@20260309T073000Z")
        #expect(RunId(jobName: "tick", scheduledMs: instant("2026-03-09T07:30:00.250Z")).description == "tick@20260309T073000.250Z")
        #expect(RunId(jobName: "epoch", scheduledMs: 0).description == "epoch@19700101T000000Z")
    }

    @Test func namesWithSpacesAndSymbolsAreEncodedAndParseBack() {
        for name in ["hostings earnings #2", "a@b", "ünïcode/job", "100%", "dots.and_under-scores"] {
            let id = RunId(jobName: name, scheduledMs: instant("2025-11-02T05:30:00Z"))
            #expect(!id.description.contains("/") && !id.description.contains(":") && !id.description.contains(" "))
            #expect(RunId(id.description) == id, "\(id)")
        }
        #expect(RunId(jobName: "hostings earnings #2", scheduledMs: 0).description == "hostings%20earnings%20%232@19700101T000000Z")
    }

    @Test func theSameRunAlwaysGetsTheSameIdAndDifferentRunsDifferentOnes() {
        let schedule = try! Schedule.parse("30 1 * * *", timeZone: "America/New_York", nowMs: 0)
        // Computed twice, as before and after a restart, the fall-back day's run has one id.
        let before = schedule.nextFire(after: instant("2025-11-01T12:00:00Z")).map { RunId(jobName: "report", scheduledMs: $0) }
        let after = schedule.nextFire(after: instant("2025-11-02T05:00:00Z")).map { RunId(jobName: "report", scheduledMs: $0) }
        #expect(before == after)
        #expect(before?.description == "report@20251102T053000Z")
        let ids = schedule.next(after: 0, count: 100).map { RunId(jobName: "report", scheduledMs: $0).description }
        #expect(Set(ids).count == 100)
        #expect(RunId(jobName: "a", scheduledMs: 1000) != RunId(jobName: "b", scheduledMs: 1000))
    }

    @Test(arguments: [
        "", "noat", "@20260309T073000Z", "job@20260309T073000", "job@2026-03-09T07:30:00Z", "job@20261309T073000Z",
        "job@20260309T073000.000Z", "job@20260309T073000.5Z", "%4Aob@20260309T073000Z", "j%ZZ@20260309T073000Z", "job@x",
    ])
    func textThatIsNotACanonicalIdDoesNotParse(text: String) {
        #expect(RunId(text) == nil)
    }
}
