@testable import StrataCron
import Testing

/// Cron expressions in UTC: the fields, the day rule, the macros, and the expressions refused.
struct CronExpressionTests {
    @Test func everyFiveMinutesFiresOnTheFiveMinuteMarks() {
        let schedule = cron("*/5 * * * *")
        expectFires(
            schedule, after: "2025-01-01T00:02:00Z",
            "2025-01-01T00:05:00Z", "2025-01-01T00:10:00Z", "2025-01-01T00:15:00Z",
            "2025-01-01T00:20:00Z")
        // A fire time is strictly after the given time, and the hour rolls over.
        expectFires(schedule, after: "2025-01-01T00:55:00Z", "2025-01-01T01:00:00Z", "2025-01-01T01:05:00Z")
        // Day, month and year roll over too.
        #expect(schedule.nextFire(after: instant("2025-12-31T23:59:59.999Z")).map(utc) == "2026-01-01T00:00:00Z")
    }

    @Test func listsRangesAndStepsCombine() {
        let schedule = cron("0,30 9-17/4 * * *")
        expectFires(
            schedule, after: "2025-01-01T00:00:00Z",
            "2025-01-01T09:00:00Z", "2025-01-01T09:30:00Z", "2025-01-01T13:00:00Z",
            "2025-01-01T13:30:00Z", "2025-01-01T17:00:00Z", "2025-01-01T17:30:00Z",
            "2025-01-02T09:00:00Z")
        // `a/n` runs from a to the field's end, as Kubernetes reads it.
        let fromFive = cron("5/15 * * * *")
        expectFires(
            fromFive, after: "2025-01-01T00:00:00Z",
            "2025-01-01T00:05:00Z", "2025-01-01T00:20:00Z", "2025-01-01T00:35:00Z",
            "2025-01-01T00:50:00Z", "2025-01-01T01:05:00Z")
    }

    @Test func monthAndDayNamesInAnyCaseAndRanges() {
        // 2025-01-01 is a Wednesday.
        let schedule = cron("30 9 * jan-Mar MON-fri")
        expectFires(
            schedule, after: "2025-01-01T00:00:00Z",
            "2025-01-01T09:30:00Z", "2025-01-02T09:30:00Z", "2025-01-03T09:30:00Z")
        #expect(schedule.nextFire(after: instant("2025-03-31T10:00:00Z")).map(utc) == "2026-01-01T09:30:00Z")
        #expect(cron("0 0 1 DEC *").nextFire(after: instant("2025-01-01T00:00:00Z")).map(utc) == "2025-12-01T00:00:00Z")
    }

    @Test func zeroAndSevenAreBothSunday() {
        let after = instant("2025-06-02T00:00:00Z")  // a Monday
        let sunday = "2025-06-08T12:00:00Z"
        for text in ["0 12 * * 0", "0 12 * * 7", "0 12 * * SUN", "0 12 * * sun", "0 12 * * 6-7"] {
            let first = cron(text).nextFire(after: instant("2025-06-07T13:00:00Z"))
            #expect(first.map(utc) == sunday, "\(text)")
        }
        #expect(cron("0 12 * * 5-7").next(after: after, count: 3) == instants("2025-06-06T12:00:00Z", "2025-06-07T12:00:00Z", "2025-06-08T12:00:00Z"))
    }

    @Test func aDayMatchingEitherRestrictedDayFieldFires() {
        // Both restricted: the 13th or a Friday (June 2025: Fridays 6, 13, 20, 27; July 13 is a Sunday).
        let either = cron("0 0 13 * FRI")
        expectFires(
            either, after: "2025-06-01T00:00:00Z",
            "2025-06-06T00:00:00Z", "2025-06-13T00:00:00Z", "2025-06-20T00:00:00Z",
            "2025-06-27T00:00:00Z", "2025-07-04T00:00:00Z", "2025-07-11T00:00:00Z",
            "2025-07-13T00:00:00Z")
        // A field starting with `*` is unrestricted, so both must match: odd days that are Mondays
        // (June 2025 Mondays: 2, 9, 16, 23, 30).
        let both = cron("0 0 */2 * MON")
        expectFires(both, after: "2025-06-01T00:00:00Z", "2025-06-09T00:00:00Z", "2025-06-23T00:00:00Z", "2025-07-07T00:00:00Z")
    }

    @Test func theThirtyFirstSkipsShortMonths() {
        let schedule = cron("0 0 31 * *")
        expectFires(
            schedule, after: "2025-01-01T00:00:00Z",
            "2025-01-31T00:00:00Z", "2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z",
            "2025-07-31T00:00:00Z", "2025-08-31T00:00:00Z", "2025-10-31T00:00:00Z",
            "2025-12-31T00:00:00Z", "2026-01-31T00:00:00Z")
    }

    @Test func februaryTwentyNinthFiresOnlyInLeapYears() {
        let schedule = cron("0 0 29 2 *")
        expectFires(
            schedule, after: "2024-03-01T00:00:00Z",
            "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z")
        // 2100 is not a leap year: eight years between 2096 and 2104.
        #expect(schedule.nextFire(after: instant("2096-03-01T00:00:00Z")).map(utc) == "2104-02-29T00:00:00Z")
    }

    @Test func macrosStandForTheirExpressions() {
        let after = instant("2025-06-04T10:30:00Z")  // a Wednesday
        let expected: [(String, String)] = [
            ("@hourly", "2025-06-04T11:00:00Z"), ("@daily", "2025-06-05T00:00:00Z"), ("@midnight", "2025-06-05T00:00:00Z"),
            ("@weekly", "2025-06-08T00:00:00Z"), ("@monthly", "2025-07-01T00:00:00Z"), ("@yearly", "2026-01-01T00:00:00Z"),
            ("@annually", "2026-01-01T00:00:00Z"), ("@DAILY", "2025-06-05T00:00:00Z"),
        ]
        for (macro, next) in expected {
            #expect(cron(macro).nextFire(after: after).map(utc) == next, "\(macro)")
        }
        guard case .cron(let hourly) = cron("@hourly"), case .cron(let daily) = cron("@daily") else {
            Issue.record("macros are cron expressions")
            return
        }
        #expect(!hourly.isFixedTime)
        #expect(daily.isFixedTime)
    }

    @Test func extraWhitespaceIsAllowed() {
        #expect(cron("  0\t12  *  * *  ").nextFire(after: instant("2025-01-01T00:00:00Z")).map(utc) == "2025-01-01T12:00:00Z")
        #expect(cron(" 0 12 * * * ").description == "0 12 * * *")
    }

    @Test(arguments: [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("* 24 * * *", "hour 24 is out of range 0-23"),
        ("* * 0 * *", "day of month 0 is out of range 1-31"),
        ("* * 32 * *", "day of month 32 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range 1-12"),
        ("* * * * 8", "day of week 8 is out of range 0-7"),
        ("*/0 * * * *", "step \"0\" in the minute field must be a whole number above 0"),
        ("*/x * * * *", "step \"x\""),
        ("5-1 * * * *", "range 5-1 in the minute field runs backwards"),
        ("* * * * FRI-MON", "runs backwards"),
        ("1,,2 * * * *", "empty list element"),
        ("1/2/3 * * * *", "more than one /"),
        ("abc * * * *", "\"abc\" in the minute field is not a number"),
        ("* * * FOO *", "or a name (JAN…DEC)"),
        ("* * * * MONDAY", "or a name (SUN…SAT)"),
        ("0 0 L * *", "L, W, # and ? (Quartz) are not supported"),
        ("0 0 ? * MON", "not supported"),
        ("0 0 * * 1#2", "not supported"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("@reboot", "unknown macro"),
        ("@every 5m", "unknown macro"),
        ("TZ=UTC 0 0 * * *", "give the time zone as scheduleTimeZone"),
        ("-1 * * * *", "is not a number"),
    ])
    func badExpressionsAreRefusedWithAReason(text: String, reason: String) {
        let error = refusal(text)
        #expect(error?.kind == .invalidCronExpression)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "accepted")")
        #expect(error?.message.contains(text.trimmingWhitespace()) == true)
    }

    @Test func aFebruaryThirtiethIsAcceptedWhenAWeekdayCanFireInstead() {
        // Both day fields restricted: Mondays fire, so the expression is not empty.
        #expect(cron("0 0 30 2 MON").nextFire(after: instant("2025-02-01T00:00:00Z")).map(utc) == "2025-02-03T00:00:00Z")
    }

    @Test func unknownTimeZonesAreRefused() {
        for zone in ["Mars/Olympus_Mons", "america/new_york", "New York"] {
            let error = refusal("0 0 * * *", zone: zone)
            #expect(error?.kind == .unknownTimeZone, "\(zone)")
            #expect(error?.message.contains("unknown time zone \"\(zone)\"") == true)
        }
        #expect(refusal("0 0 * * *", zone: "") == nil)
        #expect(refusal("0 0 * * *", zone: "America/New_York") == nil)
        #expect(cron("0 0 * * *", zone: "Europe/Berlin").timeZone.identifier == "Europe/Berlin")
    }
}
