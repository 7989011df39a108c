/// An ISO 8601 duration as Chronos (Joda-Time's `ISOPeriodFormat.standard`) takes it:
/// `P[nY][nM][nW][nD][T[nH][nM][n[.fff]S]]`, e.g. `P1D`, `PT1H`, `P1Y2M10DT2H30M`, `PT30S`,
/// `P2W`.
///
/// The calendar part (years, months, weeks, days) steps a wall-clock date; the time part (hours,
/// minutes, seconds) is elapsed time. So `P1D` from 02:30 is 02:30 the next day even across a
/// daylight-saving change, while `PT24H` is exactly 86,400 seconds later.
public struct IsoDuration: Sendable, Hashable, CustomStringConvertible {
    public var years: Int64
    public var months: Int64
    public var weeks: Int64
    public var days: Int64
    public var hours: Int64
    public var minutes: Int64
    /// Seconds and their fraction, in milliseconds.
    public var secondsMilliseconds: Int64

    public init(years: Int64 = 0, months: Int64 = 0, weeks: Int64 = 0, days: Int64 = 0, hours: Int64 = 0, minutes: Int64 = 0, secondsMilliseconds: Int64 = 0) {
        self.years = years
        self.months = months
        self.weeks = weeks
        self.days = days
        self.hours = hours
        self.minutes = minutes
        self.secondsMilliseconds = secondsMilliseconds
    }

    /// Whole calendar months (years count twelve).
    var calendarMonths: Int64 { years * 12 + months }
    /// Whole calendar days (weeks count seven).
    var calendarDays: Int64 { weeks * 7 + days }
    /// Whether some of the duration steps the wall-clock date.
    var hasCalendarPart: Bool { calendarMonths != 0 || calendarDays != 0 }
    /// The time part, in milliseconds.
    var elapsedMilliseconds: Int64 {
        hours * CivilCalendar.millisecondsPerHour + minutes * CivilCalendar.millisecondsPerMinute + secondsMilliseconds
    }

    /// About how long the duration is, for estimates only: years of 365.2425 days, months of a
    /// twelfth of that.
    var approximateMilliseconds: Int64 {
        let day = CivilCalendar.millisecondsPerDay
        return calendarMonths * (day * 146_097 / 4800) + calendarDays * day + elapsedMilliseconds
    }

    /// The duration in the form it was parsed from, fields that are zero left out.
    public var description: String {
        var text = "P"
        for (value, unit) in [(years, "Y"), (months, "M"), (weeks, "W"), (days, "D")] where value != 0 {
            text += "\(value)\(unit)"
        }
        if hours != 0 || minutes != 0 || secondsMilliseconds != 0 {
            text += "T"
            if hours != 0 { text += "\(hours)H" }
            if minutes != 0 { text += "\(minutes)M" }
            if secondsMilliseconds != 0 {
                let fraction = secondsMilliseconds % 1000
                text += "\(secondsMilliseconds / 1000)"
                if fraction != 0 {
                    var digits = String(fraction + 1000).dropFirst()
                    while digits.hasSuffix("0") { digits = digits.dropLast() }
                    text += "." + digits
                }
                text += "S"
            }
        }
        return text == "P" ? "PT0S" : text
    }

    /// Parses a duration. Designators are upper case, fields come in the order above, each at
    /// most once, numbers are whole and non-negative except the seconds, which may have up to
    /// three decimals (`.` or `,`).
    public static func parse(_ text: String) throws(ScheduleError) -> IsoDuration {
        func fail(_ reason: String) -> ScheduleError {
            ScheduleError(.invalidDuration, "invalid ISO 8601 duration \"\(text)\": \(reason)")
        }
        var characters = Substring(text)
        guard characters.first == "P" else {
            throw fail("a duration starts with P, as in P1D, PT1H or P1Y2M10DT2H30M")
        }
        characters = characters.dropFirst()
        var duration = IsoDuration()
        var inTimePart = false
        var sawTimeDesignator = false
        var sawField = false
        // The designators still allowed, in order; each field consumes its own and those before.
        var allowed: [Character] = ["Y", "M", "W", "D"]
        while let next = characters.first {
            if next == "T" {
                guard !sawTimeDesignator else { throw fail("T appears twice") }
                sawTimeDesignator = true
                inTimePart = true
                allowed = ["H", "M", "S"]
                characters = characters.dropFirst()
                guard !characters.isEmpty else { throw fail("T must be followed by hours, minutes or seconds") }
                continue
            }
            let digits = characters.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else {
                if next == "-" { throw fail("negative durations are not allowed") }
                throw fail("expected a number before \"\(next)\"")
            }
            characters = characters.dropFirst(digits.count)
            guard digits.count <= 7, let value = Int64(digits), value <= CronLimits.maximumDurationFieldValue else {
                throw fail("\(digits) is larger than \(CronLimits.maximumDurationFieldValue)")
            }
            var fractionMilliseconds: Int64 = 0
            if let separator = characters.first, separator == "." || separator == "," {
                characters = characters.dropFirst()
                let fraction = characters.prefix { $0.isASCII && $0.isNumber }
                guard !fraction.isEmpty else { throw fail("a decimal separator must be followed by digits") }
                guard fraction.count <= 3 else { throw fail("fractions of a second finer than a millisecond are not supported") }
                characters = characters.dropFirst(fraction.count)
                fractionMilliseconds = Int64(fraction + String(repeating: "0", count: 3 - fraction.count))!
                guard characters.first == "S" else { throw fail("only seconds may have a fraction") }
            }
            guard let designator = characters.first else {
                throw fail("\(digits) has no designator (Y, M, W, D, or after T: H, M, S)")
            }
            characters = characters.dropFirst()
            guard let position = allowed.firstIndex(of: designator) else {
                let lower: Set<Character> = ["y", "m", "w", "d", "h", "s", "t", "p"]
                if lower.contains(designator) { throw fail("designators are upper case") }
                if !inTimePart, designator == "H" || designator == "S" {
                    throw fail("hours, minutes and seconds come after T, as in PT\(digits)\(designator)")
                }
                throw fail("unexpected \"\(designator)\" (fields go Y, M, W, D, then T, H, M, S, each once)")
            }
            allowed.removeFirst(position + 1)
            sawField = true
            switch (inTimePart, designator) {
            case (false, "Y"): duration.years = value
            case (false, "M"): duration.months = value
            case (false, "W"): duration.weeks = value
            case (false, "D"): duration.days = value
            case (true, "H"): duration.hours = value
            case (true, "M"): duration.minutes = value
            default: duration.secondsMilliseconds = value * 1000 + fractionMilliseconds
            }
        }
        guard sawField else { throw fail("it has no fields") }
        return duration
    }
}
