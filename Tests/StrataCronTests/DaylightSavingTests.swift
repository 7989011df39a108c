@testable import StrataCron
import Testing

/// Schedules across the 2025 changes. America/New_York: 02:00 EST becomes 03:00 EDT on March 9
/// (07:00Z); 02:00 EDT becomes 01:00 EST on November 2 (06:00Z), so 01:00-01:59 happens twice.
/// Europe/Berlin: 02:00 CET becomes 03:00 CEST on March 30 (01:00Z); 03:00 CEST becomes 02:00 CET
/// on October 26 (01:00Z), so 02:00-02:59 happens twice.
struct DaylightSavingTests {
    static let newYork = "America/New_York"
    static let berlin = "Europe/Berlin"

    // MARK: Cron, fixed times

    @Test func newYorkCronAtTwoThirtyFiresAtTheEndOfTheGapThenBackAtTwoThirty() {
        let schedule = cron("30 2 * * *", zone: Self.newYork)
        // March 9 02:30 does not exist: 03:00 EDT, the first instant after the gap.
        expectFires(
            schedule, after: "2025-03-08T12:00:00Z",
            "2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z", "2025-03-11T06:30:00Z")
        // And the day before, 02:30 EST.
        #expect(schedule.nextFire(after: instant("2025-03-07T12:00:00Z")).map(utc) == "2025-03-08T07:30:00Z")
    }

    @Test func newYorkCronInTheRepeatedHourFiresOnceAtTheFirst() {
        let schedule = cron("30 1 * * *", zone: Self.newYork)
        expectFires(schedule, after: "2025-11-01T12:00:00Z", "2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z")
        // Asked again between the two 01:30s (as a restarted service would), the second is not a fire time.
        #expect(schedule.nextFire(after: instant("2025-11-02T05:30:00Z")).map(utc) == "2025-11-03T06:30:00Z")
        #expect(schedule.nextFire(after: instant("2025-11-02T06:00:00Z")).map(utc) == "2025-11-03T06:30:00Z")
        // 02:30 happens once in New York on that day, at 02:30 EST.
        #expect(cron("30 2 * * *", zone: Self.newYork).nextFire(after: instant("2025-11-01T12:00:00Z")).map(utc) == "2025-11-02T07:30:00Z")
    }

    @Test func berlinCronAtTwoThirtyOnBothChangeDays() {
        let schedule = cron("30 2 * * *", zone: Self.berlin)
        expectFires(schedule, after: "2025-03-29T12:00:00Z", "2025-03-30T01:00:00Z", "2025-03-31T00:30:00Z")
        // October 26: 02:30 CEST (00:30Z) and 02:30 CET (01:30Z); only the first fires.
        expectFires(schedule, after: "2025-10-25T12:00:00Z", "2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z")
        #expect(schedule.nextFire(after: instant("2025-10-26T00:30:00Z")).map(utc) == "2025-10-27T01:30:00Z")
    }

    @Test func severalFixedTimesInOneGapFireOnce() {
        // 02:00 and 02:30 both fall in the gap; they fire together at 03:00 EDT, once.
        let schedule = cron("0,30 2 * * *", zone: Self.newYork)
        expectFires(
            schedule, after: "2025-03-08T12:00:00Z",
            "2025-03-09T07:00:00Z", "2025-03-10T06:00:00Z", "2025-03-10T06:30:00Z")
        // The gap's 02:00 and 02:30 and the real 03:00 are the same instant: one fire.
        let overlapping = cron("0,30 2,3 * * *", zone: Self.newYork)
        expectFires(overlapping, after: "2025-03-09T06:00:00Z", "2025-03-09T07:00:00Z", "2025-03-09T07:30:00Z")
    }

    // MARK: Cron, wildcard times

    @Test func anHourlyJobSkipsTheGapAndRunsInBothRepeatedHours() {
        let schedule = cron("30 * * * *", zone: Self.newYork)
        // Spring: 01:30 EST, then 03:30 EDT an hour later; no extra run at 03:00.
        expectFires(
            schedule, after: "2025-03-09T06:00:00Z",
            "2025-03-09T06:30:00Z", "2025-03-09T07:30:00Z", "2025-03-09T08:30:00Z")
        // Fall: 00:30 EDT, 01:30 EDT, 01:30 EST, 02:30 EST: still one an hour.
        expectFires(
            schedule, after: "2025-11-02T04:00:00Z",
            "2025-11-02T04:30:00Z", "2025-11-02T05:30:00Z", "2025-11-02T06:30:00Z",
            "2025-11-02T07:30:00Z")
    }

    @Test func everyFiveMinutesKeepsItsPaceThroughBothChanges() {
        let schedule = cron("*/5 * * * *", zone: Self.berlin)
        let spring = schedule.next(after: instant("2025-03-30T00:50:00Z"), count: 4)
        #expect(utc(spring) == utc(instants("2025-03-30T00:55:00Z", "2025-03-30T01:00:00Z", "2025-03-30T01:05:00Z", "2025-03-30T01:10:00Z")))
        let fall = schedule.next(after: instant("2025-10-26T00:50:00Z"), count: 4)
        #expect(utc(fall) == utc(instants("2025-10-26T00:55:00Z", "2025-10-26T01:00:00Z", "2025-10-26T01:05:00Z", "2025-10-26T01:10:00Z")))
        // Across the whole fall-back day: 25 hours of five-minute marks.
        let day = schedule.next(after: instant("2025-10-25T21:55:00Z"), count: 300)
        #expect(day.last.map(utc) == "2025-10-26T22:55:00Z")
        #expect(zip(day, day.dropFirst()).allSatisfy { $1 - $0 == 300_000 })
    }

    @Test func aWildcardMinuteInTheSkippedHourDoesNotFireThatDay() {
        let schedule = cron("*/15 2 * * *", zone: Self.newYork)
        #expect(schedule.nextFire(after: instant("2025-03-09T05:00:00Z")).map(utc) == "2025-03-10T06:00:00Z")
    }

    // MARK: ISO 8601, P1D

    func interval(_ text: String, zone: String?) -> Schedule {
        try! Schedule.parse(text, timeZone: zone, nowMs: 0)
    }

    @Test func newYorkDailyAtTwoThirtyAcrossSpringForward() {
        let schedule = interval("R/2025-03-07T02:30:00/P1D", zone: Self.newYork)
        expectFires(
            schedule, after: "2025-03-01T00:00:00Z",
            "2025-03-07T07:30:00Z", "2025-03-08T07:30:00Z", "2025-03-09T07:00:00Z",
            "2025-03-10T06:30:00Z")
    }

    @Test func newYorkDailyInTheRepeatedHourFiresAtTheFirst() {
        // The start's Z is ignored: scheduleTimeZone takes precedence and 01:30 is New York time.
        let summerStart = interval("R/2025-10-31T01:30:00Z/P1D", zone: Self.newYork)
        expectFires(
            summerStart, after: "2025-10-31T00:00:00Z",
            "2025-10-31T05:30:00Z", "2025-11-01T05:30:00Z", "2025-11-02T05:30:00Z",
            "2025-11-03T06:30:00Z")
        // Started in winter, the same (Joda-Time would keep the start's offset and pick the second).
        let winterStart = interval("R/2025-01-01T01:30:00-05:00/P1D", zone: Self.newYork)
        expectFires(winterStart, after: "2025-11-01T12:00:00Z", "2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z")
        #expect(winterStart.nextFire(after: instant("2025-11-02T05:30:00Z")).map(utc) == "2025-11-03T06:30:00Z")
    }

    @Test func berlinDailyAtTwoThirtyOnBothChangeDays() {
        let spring = interval("R/2025-03-28T02:30:00+01:00/P1D", zone: Self.berlin)
        expectFires(
            spring, after: "2025-03-01T00:00:00Z",
            "2025-03-28T01:30:00Z", "2025-03-29T01:30:00Z", "2025-03-30T01:00:00Z",
            "2025-03-31T00:30:00Z")
        let fall = interval("R/2025-10-25T02:30:00/P1D", zone: Self.berlin)
        expectFires(fall, after: "2025-10-01T00:00:00Z", "2025-10-25T00:30:00Z", "2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z")
    }

    @Test func aStartInTheGapFiresAtTheGapsEnd() {
        let schedule = interval("R/2025-03-09T02:30:00/P1D", zone: Self.newYork)
        expectFires(schedule, after: "2025-03-01T00:00:00Z", "2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z")
    }

    @Test func hoursAreElapsedTimeButDaysAreWallClockDays() {
        // PT24H keeps 24 hours apart: 02:30 EST, then 03:30 EDT, and it stays there.
        let hours = interval("R/2025-03-08T02:30:00/PT24H", zone: Self.newYork)
        expectFires(hours, after: "2025-03-01T00:00:00Z", "2025-03-08T07:30:00Z", "2025-03-09T07:30:00Z", "2025-03-10T07:30:00Z")
        // P1DT1H: a wall-clock day, then an elapsed hour, each multiplied by the occurrence.
        let mixed = interval("R/2025-03-08T01:00:00/P1DT1H", zone: Self.newYork)
        expectFires(mixed, after: "2025-03-01T00:00:00Z", "2025-03-08T06:00:00Z", "2025-03-09T07:00:00Z", "2025-03-10T07:00:00Z")
    }

    @Test func aFixedOffsetStartIgnoresDaylightSaving() {
        let schedule = interval("R/2025-03-08T02:30:00-05:00/P1D", zone: nil)
        #expect(schedule.timeZone.identifier == "UTC-05:00")
        expectFires(
            schedule, after: "2025-03-01T00:00:00Z",
            "2025-03-08T07:30:00Z", "2025-03-09T07:30:00Z", "2025-03-10T07:30:00Z")
    }

    @Test func wallTimesResolveToNoneOneOrTwoInstants() throws {
        let zone = try ScheduleTimeZone(identifier: Self.newYork)
        let wall = { (text: String) in try! IsoStart.parse(text).wallMs }
        #expect(zone.resolve(wallMs: wall("2025-03-09T02:30:00")) == .skipped(gapEnd: instant("2025-03-09T07:00:00Z")))
        #expect(zone.resolve(wallMs: wall("2025-03-09T03:00:00")) == .unique(instant("2025-03-09T07:00:00Z")))
        #expect(zone.resolve(wallMs: wall("2025-03-09T01:59:59")) == .unique(instant("2025-03-09T06:59:59Z")))
        #expect(zone.resolve(wallMs: wall("2025-11-02T01:30:00")) == .repeated(first: instant("2025-11-02T05:30:00Z"), second: instant("2025-11-02T06:30:00Z")))
        #expect(zone.resolve(wallMs: wall("2025-11-02T02:00:00")) == .unique(instant("2025-11-02T07:00:00Z")))
        // Lord Howe Island moves by half an hour.
        let lordHowe = try ScheduleTimeZone(identifier: "Australia/Lord_Howe")
        #expect(lordHowe.resolve(wallMs: wall("2025-10-05T02:15:00")) == .skipped(gapEnd: instant("2025-10-05T02:30:00+11:00")))
    }
}
