/// A 5-field cron expression read in a time zone: `minute hour day-of-month month day-of-week`.
///
/// Fields take `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from `a` to the
/// field's end, as Kubernetes' parser reads it), and comma-separated lists of those. Months take
/// `JAN`…`DEC`, days of the week `SUN`…`SAT` (any case, also in ranges); day of the week 0 and 7
/// are both Sunday. When day of month and day of week are both restricted (neither starts with
/// `*`), a day matching either fires (Vixie cron); otherwise a day must match both. `@yearly`,
/// `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` and `@hourly` stand for their usual
/// expressions.
///
/// Daylight saving time, as Vixie cron treats it. A *fixed-time* expression (neither the minute
/// nor the hour field starts with `*`, so not `@hourly`) fires once per matching wall time: at the
/// first instant after a spring-forward gap when the wall time is skipped, and at its first
/// occurrence when a fall-back repeats it. Any other expression follows elapsed time: wall times in
/// a gap do not fire, and those in a repeated hour fire at both occurrences (an hourly job stays
/// hourly).
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The expression as written, trimmed.
    public let source: String
    public let timeZone: ScheduleTimeZone
    /// Bit `m` set: fires at minute `m`.
    let minutes: UInt64
    /// Bit `h` set: fires in hour `h`.
    let hours: UInt32
    /// Bit `d` set (1…31): fires on day of month `d`.
    let daysOfMonth: UInt32
    /// Bit `m` set (1…12): fires in month `m`.
    let months: UInt16
    /// Bit `w` set (0…6, 0 is Sunday): fires on weekday `w`.
    let daysOfWeek: UInt8
    /// Whether day of month and day of week must both match (one of them starts with `*`).
    let daysMustBothMatch: Bool
    /// Whether the expression fires at fixed wall times (see the type's comment on DST).
    public let isFixedTime: Bool

    public var description: String { source }

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    private static let weekdayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// Parses `text` in the zone named `timeZone` (`nil` or empty: UTC).
    public static func parse(_ text: String, timeZone timeZoneName: String?) throws(ScheduleError) -> CronExpression {
        let zoneName = timeZoneName ?? ""
        let zone = zoneName.isEmpty ? ScheduleTimeZone.utc : try ScheduleTimeZone(identifier: zoneName)
        let source = text.trimmingWhitespace()
        func fail(_ reason: String) -> ScheduleError {
            ScheduleError(.invalidCronExpression, "invalid cron expression \"\(source)\": \(reason)")
        }
        var expanded = source
        if source.hasPrefix("@") {
            guard let expression = macros[source.lowercased()] else {
                throw fail("unknown macro (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)")
            }
            expanded = expression
        }
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count == 5 else {
            if let first = fields.first, first.uppercased().hasPrefix("TZ=") || first.uppercased().hasPrefix("CRON_TZ=") {
                throw fail("give the time zone as scheduleTimeZone, not in the expression")
            }
            throw fail("expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        let minutes = try field(fields[0], name: "minute", range: 0...59, names: [], fail: fail)
        let hours = try field(fields[1], name: "hour", range: 0...23, names: [], fail: fail)
        let daysOfMonth = try field(fields[2], name: "day of month", range: 1...31, names: [], fail: fail)
        let months = try field(fields[3], name: "month", range: 1...12, names: monthNames, fail: fail)
        var daysOfWeek = try field(fields[4], name: "day of week", range: 0...7, names: weekdayNames, fail: fail)
        if daysOfWeek & (1 << 7) != 0 { daysOfWeek = (daysOfWeek | 1) & 0x7F }
        let dayOfMonthIsStar = fields[2].hasPrefix("*")
        let dayOfWeekIsStar = fields[4].hasPrefix("*")
        let expression = CronExpression(
            source: source, timeZone: zone, minutes: minutes, hours: UInt32(hours), daysOfMonth: UInt32(daysOfMonth),
            months: UInt16(months), daysOfWeek: UInt8(daysOfWeek), daysMustBothMatch: dayOfMonthIsStar || dayOfWeekIsStar,
            isFixedTime: !fields[0].hasPrefix("*") && !fields[1].hasPrefix("*"))
        if expression.daysMustBothMatch, !dayOfMonthIsStar {
            // Day of week is `*`: some chosen month must have a chosen day (February 30 never comes).
            let possible = (1...12).contains { month in
                months & (1 << month) != 0
                    && (1...CivilCalendar.daysInMonth(year: 2000, month: month)).contains { daysOfMonth & (1 << $0) != 0 }
            }
            guard possible else { throw fail("no chosen month has a chosen day of month, so it never fires") }
        }
        return expression
    }

    /// One field as a bit set over `range`.
    private static func field(
        _ text: Substring, name: String, range: ClosedRange<Int>, names: [String], fail: (String) -> ScheduleError
    ) throws(ScheduleError) -> UInt64 {
        func value(_ token: Substring) throws(ScheduleError) -> Int {
            if let number = Int(token), token.allSatisfy({ $0.isASCII && $0.isNumber }) {
                guard range.contains(number) else {
                    throw fail("\(name) \(number) is out of range \(range.lowerBound)-\(range.upperBound)")
                }
                return number
            }
            if let index = names.firstIndex(of: token.uppercased()) {
                return index + range.lowerBound
            }
            if "LW#?".contains(where: { token.contains($0) }) {
                throw fail("\"\(token)\" in the \(name) field: L, W, # and ? (Quartz) are not supported")
            }
            let hint = names.isEmpty ? "" : " or a name (\(names.first!)…\(names.last!))"
            throw fail("\"\(token)\" in the \(name) field is not a number\(hint)")
        }
        var bits: UInt64 = 0
        for element in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !element.isEmpty else { throw fail("empty list element in the \(name) field") }
            let pieces = element.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw fail("\"\(element)\" in the \(name) field has more than one /") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), pieces[1].allSatisfy({ $0.isASCII && $0.isNumber }), parsed > 0 else {
                    throw fail("step \"\(pieces[1])\" in the \(name) field must be a whole number above 0")
                }
                step = parsed
            }
            let base = pieces[0]
            // `*` and `a/n` in day of week end at 6: 7 would only repeat Sunday.
            let fieldEnd = name == "day of week" ? 6 : range.upperBound
            var low: Int
            var high: Int
            if base == "*" {
                low = range.lowerBound
                high = fieldEnd
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(base[..<dash])
                high = try value(base[base.index(after: dash)...])
                guard low <= high else {
                    throw fail("range \(base) in the \(name) field runs backwards")
                }
            } else {
                low = try value(base)
                high = pieces.count == 2 ? max(low, fieldEnd) : low
            }
            var current = low
            while current <= high {
                bits |= 1 << UInt64(current)
                current += step
            }
        }
        return bits
    }

    private init(
        source: String, timeZone: ScheduleTimeZone, minutes: UInt64, hours: UInt32, daysOfMonth: UInt32, months: UInt16,
        daysOfWeek: UInt8, daysMustBothMatch: Bool, isFixedTime: Bool
    ) {
        self.source = source
        self.timeZone = timeZone
        self.minutes = minutes
        self.hours = hours
        self.daysOfMonth = daysOfMonth
        self.months = months
        self.daysOfWeek = daysOfWeek
        self.daysMustBothMatch = daysMustBothMatch
        self.isFixedTime = isFixedTime
    }

    /// Whether the expression fires on a date (month, and the day-of-month/day-of-week rule).
    func matches(_ date: CivilCalendar.Date, dayNumber: Int64) -> Bool {
        guard months & (1 << date.month) != 0 else { return false }
        let dayOfMonth = daysOfMonth & (1 << date.day) != 0
        let dayOfWeek = daysOfWeek & (1 << CivilCalendar.weekday(dayNumber: dayNumber)) != 0
        return daysMustBothMatch ? (dayOfMonth && dayOfWeek) : (dayOfMonth || dayOfWeek)
    }

    /// The first matching minute of the day at or after `minuteOfDay`, if any.
    func firstMinuteOfDay(atOrAfter minuteOfDay: Int) -> Int? {
        var hour = minuteOfDay / 60
        var minute = minuteOfDay % 60
        while hour < 24 {
            if hours & (1 << hour) != 0 {
                let remaining = minutes & ~((UInt64(1) << minute) - 1)
                if remaining != 0 { return hour * 60 + remaining.trailingZeroBitCount }
            }
            hour += 1
            minute = 0
        }
        return nil
    }

    /// The first fire time after `instantMs`, or `nil` if none comes before the end of
    /// `CronLimits.lastYear`.
    ///
    /// Days are walked in wall-clock order from the day before `instantMs`'s (a fall-back across
    /// midnight can make the next instant's date the earlier one); the first day with a fire time
    /// after `instantMs` holds the answer. A day whose offset from UTC is the same at both ends is
    /// a plain day, where instants follow wall times and the answer is the first matching minute
    /// past `instantMs`; only on the day of an offset change is every matching minute resolved.
    public func nextFire(after instantMs: Int64) -> Int64? {
        let day = CivilCalendar.millisecondsPerDay
        var dayNumber = CivilCalendar.floorDivide(timeZone.wallTime(at: instantMs), day) - 1
        let lastDay = dayNumber + CronLimits.cronSearchDays
        while dayNumber <= lastDay {
            let date = CivilCalendar.date(dayNumber: dayNumber)
            guard date.year <= CronLimits.lastYear else { return nil }
            guard months & (1 << date.month) != 0 else {
                // Skip to the first of the next month.
                dayNumber += Int64(CivilCalendar.daysInMonth(year: date.year, month: date.month) - date.day + 1)
                continue
            }
            if matches(date, dayNumber: dayNumber), let instant = firstFire(onDay: dayNumber, after: instantMs) {
                return instant
            }
            dayNumber += 1
        }
        return nil
    }

    /// The earliest fire time after `instantMs` among those of local day `dayNumber`.
    private func firstFire(onDay dayNumber: Int64, after instantMs: Int64) -> Int64? {
        let day = CivilCalendar.millisecondsPerDay
        let minute = CivilCalendar.millisecondsPerMinute
        let dayStartWall = dayNumber * day
        if case .unique(let startInstant) = timeZone.resolve(wallMs: dayStartWall),
            case .unique(let endInstant) = timeZone.resolve(wallMs: dayStartWall + day),
            endInstant - startInstant == day
        {
            let offset = dayStartWall - startInstant
            // A fire at wall time w is the instant w - offset; it must be after instantMs.
            let threshold = instantMs + offset
            let firstMinute = threshold < dayStartWall ? 0 : Int(CivilCalendar.floorDivide(threshold - dayStartWall, minute) + 1)
            guard firstMinute < 24 * 60, let minuteOfDay = firstMinuteOfDay(atOrAfter: firstMinute) else { return nil }
            return dayStartWall + Int64(minuteOfDay) * minute - offset
        }
        var earliest: Int64?
        var minuteOfDay = firstMinuteOfDay(atOrAfter: 0)
        while let current = minuteOfDay {
            for instant in fireInstants(wallMs: dayStartWall + Int64(current) * minute) where instant > instantMs {
                earliest = min(earliest ?? instant, instant)
            }
            minuteOfDay = current + 1 < 24 * 60 ? firstMinuteOfDay(atOrAfter: current + 1) : nil
        }
        return earliest
    }

    /// The instants a matching wall time fires at, by the DST rules in the type's comment.
    private func fireInstants(wallMs: Int64) -> [Int64] {
        switch timeZone.resolve(wallMs: wallMs) {
        case .unique(let instant): [instant]
        case .repeated(let first, let second): isFixedTime ? [first] : [first, second]
        case .skipped(let gapEnd): isFixedTime ? [gapEnd] : []
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
