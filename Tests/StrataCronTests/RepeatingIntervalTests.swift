@testable import StrataCron
import Testing

/// ISO 8601 repeating intervals: repetitions, starts, durations, and what is refused.
struct RepeatingIntervalTests {
    func interval(_ text: String, zone: String? = nil, nowMs: Int64 = 0) -> Schedule {
        try! Schedule.parse(text, timeZone: zone, nowMs: nowMs)
    }

    @Test func rThreeFiresThreeTimesAndStops() {
        let schedule = interval("R3/2025-01-01T00:00:00Z/PT1H")
        #expect(utc(schedule.next(after: instant("2024-12-31T00:00:00Z"), count: 10)) == utc(instants(
            "2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z")))
        #expect(utc(schedule.next(after: instant("2025-01-01T00:00:00Z"), count: 10)) == utc(instants("2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z")))
        #expect(schedule.nextFire(after: instant("2025-01-01T02:00:00Z")) == nil)
        #expect(interval("R1/2025-01-01T00:00:00Z/PT1H").next(after: 0, count: 5) == instants("2025-01-01T00:00:00Z"))
        #expect(interval("R0/2025-01-01T00:00:00Z/PT1H").next(after: 0, count: 5) == [])
    }

    @Test func rWithoutACountRepeatsForever() {
        let schedule = interval("R/2025-01-01T00:00:00Z/PT30S")
        #expect(schedule.nextFire(after: instant("2999-06-01T00:00:10Z")).map(utc) == "2999-06-01T00:00:30Z")
        // Until the last year there is.
        #expect(schedule.nextFire(after: instant("9999-12-31T23:59:30Z")) == nil)
    }

    @Test func aStartLongAgoFindsTheNextOccurrenceWithoutWalkingToIt() {
        // Chronos' own example period, started in 2012: about 200 million occurrences ago.
        let schedule = interval("R/2012-10-01T05:52:00Z/PT2S")
        #expect(schedule.nextFire(after: instant("2025-06-01T12:00:00.500Z")).map(utc) == "2025-06-01T12:00:02Z")
        #expect(schedule.nextFire(after: instant("2025-06-01T12:00:01Z")).map(utc) == "2025-06-01T12:00:02Z")
        let monthly = interval("R/1990-01-31T10:00:00Z/P1M")
        #expect(monthly.nextFire(after: instant("2025-02-01T00:00:00Z")).map(utc) == "2025-02-28T10:00:00Z")
    }

    @Test func calendarDurationsStepFromTheStartAndClampToShortMonths() {
        let monthly = interval("R/2025-01-31T10:00:00Z/P1M")
        #expect(utc(monthly.next(after: 0, count: 5)) == utc(instants(
            "2025-01-31T10:00:00Z", "2025-02-28T10:00:00Z", "2025-03-31T10:00:00Z", "2025-04-30T10:00:00Z", "2025-05-31T10:00:00Z")))
        let yearly = interval("R/2024-02-29T00:00:00Z/P1Y")
        #expect(utc(yearly.next(after: 0, count: 5)) == utc(instants(
            "2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z", "2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2028-02-29T00:00:00Z")))
        let fortnightly = interval("R/2025-01-01T08:00:00Z/P2W")
        #expect(utc(fortnightly.next(after: 0, count: 3)) == utc(instants("2025-01-01T08:00:00Z", "2025-01-15T08:00:00Z", "2025-01-29T08:00:00Z")))
        let long = interval("R/2025-01-01T00:00:00Z/P1Y2M10DT2H30M")
        #expect(utc(long.next(after: 0, count: 3)) == utc(instants("2025-01-01T00:00:00Z", "2026-03-11T02:30:00Z", "2027-05-21T05:00:00Z")))
        let seconds = interval("R/2025-01-01T00:00:00Z/PT1.5S")
        #expect(utc(seconds.next(after: 0, count: 3)) == utc(instants("2025-01-01T00:00:00Z", "2025-01-01T00:00:01.500Z", "2025-01-01T00:00:03Z")))
    }

    @Test func anEmptyStartIsNowAndIsWrittenOutWhenStored() {
        let now = instant("2025-06-01T12:34:56.789Z")
        let schedule = interval("R5//PT1H", nowMs: now)
        #expect(schedule.nextFire(after: now - 1) == now)
        #expect(schedule.description == "R5/2025-06-01T12:34:56.789Z/PT1H")
        let inBerlin = interval("R//P1D", zone: "Europe/Berlin", nowMs: now)
        #expect(inBerlin.description == "R/2025-06-01T14:34:56.789+02:00/P1D")
        // Stored and parsed back (later, with another now), it is the same schedule.
        #expect(interval(inBerlin.description, zone: "Europe/Berlin", nowMs: now + 86_400_000) == inBerlin)
    }

    @Test func theScheduleTimeZoneTakesPrecedenceOverTheStartsOffset() {
        let schedule = interval("R/2025-06-01T09:00:00Z/P1D", zone: "Europe/Berlin")
        #expect(schedule.nextFire(after: 0).map(utc) == "2025-06-01T07:00:00Z")
        let offset = interval("R/2025-06-01T09:00:00+05:30/P1D")
        #expect(offset.nextFire(after: 0).map(utc) == "2025-06-01T03:30:00Z")
        // No offset and no zone: UTC. A date alone is midnight.
        #expect(interval("R/2025-06-01T09:00/P1D").nextFire(after: 0).map(utc) == "2025-06-01T09:00:00Z")
        #expect(interval("R/2025-06-01/P1D").nextFire(after: 0).map(utc) == "2025-06-01T00:00:00Z")
        #expect(interval("R/2025-06-01T09:00:00.250-0130/P1D").nextFire(after: 0).map(utc) == "2025-06-01T10:30:00.250Z")
    }

    @Test func descriptionsParseBackToTheSameSchedule() {
        for (text, zone) in [
            ("R/2025-01-31T10:00:00Z/P1M", nil), ("R3/2025-03-09T02:30:00/P1D", "America/New_York"),
            ("R/2025-06-01T09:00:00+05:30/PT1.25S", nil), ("R0/2025-01-01T00:00:00Z/P1Y2M3W4DT5H6M7S", nil),
        ] as [(String, String?)] {
            let schedule = interval(text, zone: zone)
            #expect(interval(schedule.description, zone: zone) == schedule, "\(text) -> \(schedule)")
        }
        #expect(interval("R/2025-06-01T09:00:00.5+05:30/P1DT0S").description == "R/2025-06-01T09:00:00.500+05:30/P1D")
    }

    @Test(arguments: [
        ("R/2025-01-01T00:00:00Z", ScheduleError.Kind.invalidRepeatingInterval, "expected three parts"),
        ("R/2025-01-01T00:00:00Z/PT1H/x", .invalidRepeatingInterval, "expected three parts"),
        ("Rx/2025-01-01T00:00:00Z/PT1H", .invalidRepeatingInterval, "is not R or R followed by a whole number"),
        ("R-1/2025-01-01T00:00:00Z/PT1H", .invalidRepeatingInterval, "is not R or R followed by a whole number"),
        ("2025-01-01T00:00:00Z/P1D", .invalidRepeatingInterval, "expected three parts"),
        ("X/2025-01-01T00:00:00Z/P1D", .invalidRepeatingInterval, "the first part is R"),
        ("R/2025-13-01T00:00:00Z/P1D", .invalidStart, "month 13 does not exist"),
        ("R/2025-02-29T00:00:00Z/P1D", .invalidStart, "2025-02 has no day 29"),
        ("R/2025-01-01T24:00:00Z/P1D", .invalidStart, "hour 24 does not exist"),
        ("R/2025-01-01T10:60:00Z/P1D", .invalidStart, "minute 60 does not exist"),
        ("R/2025-1-01T00:00:00Z/P1D", .invalidStart, "the month must be 2 digits"),
        ("R/20250101T000000Z/P1D", .invalidStart, "expected \"-\" after the year"),
        ("R/2025-01-01T00:00:00 UTC/P1D", .invalidStart, "unexpected \" \""),
        ("R/2025-01-01T00:00:00+25:00/P1D", .invalidStart, "does not exist"),
        ("R/0000-01-01T00:00:00Z/P1D", .invalidStart, "the year must be between 1 and 9999"),
        ("R/2025-01-01T00:00:00Z/1D", .invalidDuration, "a duration starts with P"),
        ("R/2025-01-01T00:00:00Z/P", .invalidDuration, "it has no fields"),
        ("R/2025-01-01T00:00:00Z/PT", .invalidDuration, "T must be followed by hours, minutes or seconds"),
        ("R/2025-01-01T00:00:00Z/P1DT", .invalidDuration, "T must be followed"),
        ("R/2025-01-01T00:00:00Z/P1H", .invalidDuration, "hours, minutes and seconds come after T, as in PT1H"),
        ("R/2025-01-01T00:00:00Z/p1d", .invalidDuration, "a duration starts with P"),
        ("R/2025-01-01T00:00:00Z/P1d", .invalidDuration, "designators are upper case"),
        ("R/2025-01-01T00:00:00Z/P-1D", .invalidDuration, "negative durations are not allowed"),
        ("R/2025-01-01T00:00:00Z/P1M1Y", .invalidDuration, "fields go Y, M, W, D, then T, H, M, S, each once"),
        ("R/2025-01-01T00:00:00Z/P1D1D", .invalidDuration, "each once"),
        ("R/2025-01-01T00:00:00Z/P1.5D", .invalidDuration, "only seconds may have a fraction"),
        ("R/2025-01-01T00:00:00Z/PT1.0001S", .invalidDuration, "finer than a millisecond"),
        ("R/2025-01-01T00:00:00Z/P1", .invalidDuration, "1 has no designator"),
        ("R/2025-01-01T00:00:00Z/PT0S", .invalidDuration, "must be longer than zero"),
        ("R/2025-01-01T00:00:00Z/P0D", .invalidDuration, "must be longer than zero"),
        ("R/2025-01-01T00:00:00Z/PT0.5S", .invalidDuration, "the shortest period is one second"),
        ("R/2025-01-01T00:00:00Z/P99999999D", .invalidDuration, "is larger than 1000000"),
    ])
    func badIntervalsAreRefusedWithAReason(text: String, kind: ScheduleError.Kind, reason: String) {
        let error = refusal(text)
        #expect(error?.kind == kind, "\(error?.message ?? "accepted")")
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "accepted")")
    }

    @Test func anUnknownScheduleTimeZoneIsRefused() {
        let error = refusal("R/2025-01-01T00:00:00Z/P1D", zone: "Europe/Atlantis")
        #expect(error?.kind == .unknownTimeZone)
        #expect(error?.message.contains("Europe/Atlantis") == true)
    }

    @Test func durationsPrintAsTheyParse() throws {
        for text in ["P1D", "PT1H", "P1Y2M10DT2H30M", "PT30S", "P2W", "PT0.5S", "PT1.25S", "P1W2D"] {
            #expect(try IsoDuration.parse(text).description == text)
        }
        #expect(try IsoDuration.parse("PT1,5S").description == "PT1.5S")
    }
}
