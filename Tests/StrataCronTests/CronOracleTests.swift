@testable import StrataCron
import Testing

/// `CronExpression.nextFire` against a slow oracle that walks every minute around each 2025
/// offset change of a zone and applies the DST rules directly to what the clock shows.
struct CronOracleTests {
    static let zones = ["America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago"]
    static let expressions = [
        "30 2 * * *", "0,30 1-3 * * *", "*/5 * * * *", "30 * * * *", "*/15 2 * * *", "0 0 * * *", "15 2 * * SUN",
        "* 2 * * *", "59 1 * * *", "0 3 * * *", "45 23 * * *", "10 0 * * *",
    ]

    /// Instants at which the zone's offset changes during 2025 (to the minute, found hourly then
    /// refined minute by minute).
    static func transitions(_ zone: ScheduleTimeZone) -> [Int64] {
        let hour = CivilCalendar.millisecondsPerHour
        var found: [Int64] = []
        var previous = instant("2025-01-01T00:00:00Z")
        while previous < instant("2026-01-01T00:00:00Z") {
            let next = previous + hour
            if zone.offsetMilliseconds(at: next) != zone.offsetMilliseconds(at: previous) {
                var minute = previous
                while zone.offsetMilliseconds(at: minute) == zone.offsetMilliseconds(at: previous) {
                    minute += CivilCalendar.millisecondsPerMinute
                }
                found.append(minute)
            }
            previous = next
        }
        return found
    }

    /// Fire times in `[from, through]` by walking minutes: a wall minute that the expression matches
    /// fires when the clock shows it (wildcard expressions: every time; fixed ones: only the first
    /// time in the last three hours), and a fixed expression whose wall minute the clock jumped
    /// over fires at the minute after the jump.
    static func oracle(_ expression: CronExpression, from: Int64, through: Int64) -> [Int64] {
        let minute = CivilCalendar.millisecondsPerMinute
        let zone = expression.timeZone
        func matches(wall: Int64) -> Bool {
            let dayNumber = CivilCalendar.floorDivide(wall, CivilCalendar.millisecondsPerDay)
            let minuteOfDay = Int((wall - dayNumber * CivilCalendar.millisecondsPerDay) / minute)
            return expression.matches(CivilCalendar.date(dayNumber: dayNumber), dayNumber: dayNumber)
                && expression.hours & (1 << (minuteOfDay / 60)) != 0 && expression.minutes & (1 << (minuteOfDay % 60)) != 0
        }
        var fires: [Int64] = []
        var instant = from
        while instant <= through {
            let wall = zone.wallTime(at: instant)
            let previousWall = zone.wallTime(at: instant - minute)
            var firesNow = false
            if matches(wall: wall) {
                if expression.isFixedTime {
                    let seenBefore = (1...180).contains { zone.wallTime(at: instant - Int64($0) * minute) == wall }
                    firesNow = !seenBefore
                } else {
                    firesNow = true
                }
            }
            if expression.isFixedTime, !firesNow, wall - previousWall > minute {
                var skipped = previousWall + minute
                while skipped < wall {
                    if matches(wall: skipped) { firesNow = true }
                    skipped += minute
                }
            }
            if firesNow { fires.append(instant) }
            instant += minute
        }
        return fires
    }

    @Test(arguments: zones)
    func nextFireAgreesWithTheMinuteByMinuteWalkAroundEveryChange(zoneName: String) throws {
        let zone = try ScheduleTimeZone(identifier: zoneName)
        let changes = Self.transitions(zone)
        #expect(changes.count == 2, "\(zoneName) changes its offset twice in 2025")
        for text in Self.expressions {
            guard case .cron(let expression) = cron(text, zone: zoneName) else { continue }
            for change in changes {
                let from = change - 2 * CivilCalendar.millisecondsPerDay
                let through = change + 2 * CivilCalendar.millisecondsPerDay
                let expected = Self.oracle(expression, from: from, through: through)
                var actual: [Int64] = []
                var cursor = from - 1
                while let next = expression.nextFire(after: cursor), next <= through {
                    actual.append(next)
                    cursor = next
                }
                #expect(utc(actual) == utc(expected), "\(text) in \(zoneName) around \(utc(change))")
            }
        }
    }
}
