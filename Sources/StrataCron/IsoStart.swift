/// The start of an ISO 8601 repeating interval, in the extended format Chronos documents:
/// `YYYY-MM-DD[Thh:mm[:ss[.s…]]][Z|±hh:mm|±hhmm|±hh]`. Fractions finer than a millisecond are
/// dropped, as Joda-Time drops them.
struct IsoStart: Equatable {
    /// The date and time of day as written, as a wall time.
    var wallMs: Int64
    /// The written offset from UTC, or `nil` if there was none.
    var offsetSeconds: Int?

    static func parse(_ text: String) throws(ScheduleError) -> IsoStart {
        func fail(_ reason: String) -> ScheduleError {
            ScheduleError(.invalidStart, "invalid ISO 8601 start \"\(text)\": \(reason)")
        }
        let shape = "expected YYYY-MM-DDThh:mm:ss with an optional fraction and Z or an offset such as +01:00"
        var rest = Substring(text)
        func number(_ count: Int, _ name: String) throws(ScheduleError) -> Int {
            let digits = rest.prefix(count)
            guard digits.count == count, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw fail("\(name) must be \(count) digits; \(shape)")
            }
            rest = rest.dropFirst(count)
            return Int(digits)!
        }
        func expect(_ character: Character, _ what: String) throws(ScheduleError) {
            guard rest.first == character else { throw fail("expected \"\(character)\" \(what); \(shape)") }
            rest = rest.dropFirst()
        }
        let year = try number(4, "the year")
        try expect("-", "after the year")
        let month = try number(2, "the month")
        try expect("-", "after the month")
        let day = try number(2, "the day")
        guard (CronLimits.firstYear...CronLimits.lastYear).contains(year) else {
            throw fail("the year must be between \(CronLimits.firstYear) and \(CronLimits.lastYear)")
        }
        guard (1...12).contains(month) else { throw fail("month \(month) does not exist") }
        guard (1...CivilCalendar.daysInMonth(year: year, month: month)).contains(day) else {
            throw fail("\(year)-\(twoDigits(month)) has no day \(day)")
        }
        var hour = 0
        var minute = 0
        var second = 0
        var millisecond = 0
        if rest.first == "T" {
            rest = rest.dropFirst()
            hour = try number(2, "the hour")
            try expect(":", "after the hour")
            minute = try number(2, "the minute")
            if rest.first == ":" {
                rest = rest.dropFirst()
                second = try number(2, "the second")
                if let separator = rest.first, separator == "." || separator == "," {
                    rest = rest.dropFirst()
                    let fraction = rest.prefix { $0.isASCII && $0.isNumber }
                    guard !fraction.isEmpty else { throw fail("a decimal separator must be followed by digits") }
                    rest = rest.dropFirst(fraction.count)
                    let milliseconds = fraction.prefix(3)
                    millisecond = Int(milliseconds + String(repeating: "0", count: 3 - milliseconds.count))!
                }
            }
            guard hour < 24 else { throw fail("hour \(hour) does not exist (00 to 23)") }
            guard minute < 60 else { throw fail("minute \(minute) does not exist (00 to 59)") }
            guard second < 60 else { throw fail("second \(second) does not exist (00 to 59)") }
        }
        var offsetSeconds: Int?
        if let designator = rest.first {
            rest = rest.dropFirst()
            switch designator {
            case "Z":
                offsetSeconds = 0
            case "+", "-":
                let hours = try number(2, "the offset's hours")
                var minutes = 0
                if rest.first == ":" { rest = rest.dropFirst() }
                if !rest.isEmpty { minutes = try number(2, "the offset's minutes") }
                guard hours < 24, minutes < 60 else { throw fail("offset \(designator)\(hours):\(minutes) does not exist") }
                offsetSeconds = (designator == "-" ? -1 : 1) * (hours * 3600 + minutes * 60)
            default:
                throw fail("unexpected \"\(designator)\"; \(shape)")
            }
            guard rest.isEmpty else { throw fail("unexpected \"\(rest)\" at the end; \(shape)") }
        }
        let dayNumber = CivilCalendar.dayNumber(.init(year: year, month: month, day: day))
        let timeOfDay = Int64(((hour * 60 + minute) * 60 + second) * 1000 + millisecond)
        return IsoStart(wallMs: dayNumber * CivilCalendar.millisecondsPerDay + timeOfDay, offsetSeconds: offsetSeconds)
    }

    /// `YYYY-MM-DDThh:mm:ss[.fff]±hh:mm` (or `Z`) for a wall time and its offset.
    static func format(wallMs: Int64, offsetMilliseconds: Int64) -> String {
        var text = formatWallTime(wallMs, dateSeparator: "-", timeSeparator: ":")
        if offsetMilliseconds == 0 {
            text += "Z"
        } else {
            let minutes = Int(abs(offsetMilliseconds) / CivilCalendar.millisecondsPerMinute)
            text += (offsetMilliseconds < 0 ? "-" : "+") + twoDigits(minutes / 60) + ":" + twoDigits(minutes % 60)
        }
        return text
    }
}

/// A wall time as `YYYY<d>MM<d>DDThh<t>mm<t>ss`, with `.fff` only when the milliseconds are not
/// zero.
public func formatWallTime(_ wallMs: Int64, dateSeparator: String, timeSeparator: String) -> String {
    let dayNumber = CivilCalendar.floorDivide(wallMs, CivilCalendar.millisecondsPerDay)
    let date = CivilCalendar.date(dayNumber: dayNumber)
    let timeOfDay = Int(wallMs - dayNumber * CivilCalendar.millisecondsPerDay)
    let milliseconds = timeOfDay % 1000
    let seconds = timeOfDay / 1000
    let year = String(date.year)
    var text = String(repeating: "0", count: max(0, 4 - year.count)) + year
    text += dateSeparator + twoDigits(date.month) + dateSeparator + twoDigits(date.day)
    text += "T" + twoDigits(seconds / 3600) + timeSeparator + twoDigits(seconds / 60 % 60) + timeSeparator + twoDigits(seconds % 60)
    if milliseconds != 0 {
        text += "." + String(String(milliseconds + 1000).dropFirst())
    }
    return text
}
