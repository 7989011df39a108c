@testable import StrataCron
import Testing

/// The instant an ISO 8601 date-time with an offset names, in milliseconds since the Unix epoch.
func instant(_ text: String) -> Int64 {
    let start = try! IsoStart.parse(text)
    return start.wallMs - Int64(start.offsetSeconds!) * 1000
}

/// Instants for several date-times, to compare with `next(after:count:)`.
func instants(_ texts: String...) -> [Int64] {
    texts.map(instant)
}

/// An instant as UTC text, so a failed expectation shows dates rather than numbers.
func utc(_ instantMs: Int64) -> String {
    IsoStart.format(wallMs: instantMs, offsetMilliseconds: 0)
}

func utc(_ instants: [Int64]) -> [String] {
    instants.map { utc($0) }
}

func cron(_ text: String, zone: String? = nil) -> Schedule {
    try! Schedule.parse(text, timeZone: zone, nowMs: 0)
}

/// The error a schedule is refused with.
func refusal(_ text: String, zone: String? = nil, nowMs: Int64 = 0) -> ScheduleError? {
    do {
        _ = try Schedule.parse(text, timeZone: zone, nowMs: nowMs)
        return nil
    } catch {
        return error
    }
}

/// Expects the next fire times of `schedule` after the instant `after` to be `expected`, in
/// order (as many as are listed).
func expectFires(_ schedule: Schedule, after: String, _ expected: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    let actual = schedule.next(after: instant(after), count: expected.count)
    #expect(utc(actual) == expected.map { utc(instant($0)) }, sourceLocation: sourceLocation)
}
