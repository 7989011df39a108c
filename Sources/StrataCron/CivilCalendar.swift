/// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01), done here rather
/// than through Foundation's `Calendar` so that stepping a wall-clock date never passes through a
/// time zone: a date is a date, and only `ScheduleTimeZone` turns wall times into instants.
///
/// A *wall time* in this module is milliseconds since 1970-01-01T00:00 on a local clock, as if
/// that clock were UTC; an *instant* is milliseconds since the Unix epoch.
enum CivilCalendar {
    static let millisecondsPerMinute: Int64 = 60_000
    static let millisecondsPerHour: Int64 = 3_600_000
    static let millisecondsPerDay: Int64 = 86_400_000

    /// A calendar date.
    struct Date: Hashable, Sendable {
        var year: Int
        var month: Int
        var day: Int
    }

    /// `a / b` rounded toward negative infinity (`b > 0`).
    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return (a % b != 0 && a < 0) ? quotient - 1 : quotient
    }

    /// `a mod b` in `0..<b` (`b > 0`).
    static func floorModulo(_ a: Int64, _ b: Int64) -> Int64 {
        let remainder = a % b
        return remainder < 0 ? remainder + b : remainder
    }

    static func isLeapYear(_ year: Int) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Day number of a date (Howard Hinnant's `days_from_civil`).
    static func dayNumber(_ date: Date) -> Int64 {
        let year = Int64(date.month <= 2 ? date.year - 1 : date.year)
        let era = floorDivide(year, 400)
        let yearOfEra = year - era * 400
        let shiftedMonth = Int64(date.month > 2 ? date.month - 3 : date.month + 9)
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + Int64(date.day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day number (Howard Hinnant's `civil_from_days`).
    static func date(dayNumber: Int64) -> Date {
        let shifted = dayNumber + 719_468
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return Date(year: Int(year), month: Int(month), day: Int(day))
    }

    /// Day of the week of a day number: 0 is Sunday (1970-01-01 was a Thursday).
    static func weekday(dayNumber: Int64) -> Int {
        Int(floorModulo(dayNumber + 4, 7))
    }

    /// The date `months` calendar months after `date`, its day clamped to the month's length
    /// (January 31 plus one month is February 28 or 29), as Joda-Time and java.time add months.
    static func adding(months: Int64, to date: Date) -> Date {
        let monthIndex = Int64(date.year) * 12 + Int64(date.month - 1) + months
        let year = Int(floorDivide(monthIndex, 12))
        let month = Int(floorModulo(monthIndex, 12)) + 1
        return Date(year: year, month: month, day: min(date.day, daysInMonth(year: year, month: month)))
    }
}
