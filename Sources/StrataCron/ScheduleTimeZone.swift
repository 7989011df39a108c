import Foundation

/// The time zone a schedule's wall-clock times are read in: a tz database zone
/// (`America/New_York`) or a fixed UTC offset (an ISO 8601 start's `+01:00` when no
/// `scheduleTimeZone` is given).
///
/// Foundation supplies only the zone's UTC offset at an instant (from the tz database in
/// /usr/share/zoneinfo). Turning a wall time into instants is done here with explicit offsets,
/// because a wall time can have none (a spring-forward gap) or two (a fall-back overlap), and
/// `Calendar` does not say which case it met.
public struct ScheduleTimeZone: Sendable, Hashable, CustomStringConvertible {
    /// The tz database name, or `UTC`, or `UTC+hh:mm` for a fixed offset.
    public let identifier: String
    private let zone: TimeZone
    /// Set for a fixed-offset zone, whose wall times are all unique: no lookups needed.
    private let fixedOffsetMilliseconds: Int64?

    /// UTC.
    public static let utc = ScheduleTimeZone(fixedOffsetSeconds: 0)

    /// The zone named `identifier` in the tz database (case as the database spells it).
    public init(identifier: String) throws(ScheduleError) {
        guard !identifier.isEmpty, let zone = TimeZone(identifier: identifier) else {
            throw ScheduleError(.unknownTimeZone, "unknown time zone \"\(identifier)\": expected a tz database name such as America/New_York or Europe/Berlin")
        }
        self.identifier = identifier
        self.zone = zone
        self.fixedOffsetMilliseconds = nil
    }

    /// A zone whose offset from UTC never changes.
    init(fixedOffsetSeconds: Int) {
        precondition(abs(fixedOffsetSeconds) < 24 * 3600, "an offset from UTC is less than a day")
        // Every offset that passes the start parser's checks (hours < 24, minutes < 60) is one
        // Foundation accepts; a nil here is a programming error.
        self.zone = TimeZone(secondsFromGMT: fixedOffsetSeconds)!
        self.fixedOffsetMilliseconds = Int64(fixedOffsetSeconds) * 1000
        if fixedOffsetSeconds == 0 {
            self.identifier = "UTC"
        } else {
            let magnitude = abs(fixedOffsetSeconds)
            let sign = fixedOffsetSeconds < 0 ? "-" : "+"
            self.identifier = "UTC" + sign + twoDigits(magnitude / 3600) + ":" + twoDigits(magnitude % 3600 / 60)
        }
    }

    public var description: String { identifier }

    public static func == (lhs: ScheduleTimeZone, rhs: ScheduleTimeZone) -> Bool {
        lhs.identifier == rhs.identifier
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(identifier)
    }

    /// The zone's offset from UTC at `instantMs`, in milliseconds (east is positive).
    func offsetMilliseconds(at instantMs: Int64) -> Int64 {
        if let fixedOffsetMilliseconds { return fixedOffsetMilliseconds }
        // Offsets change on whole seconds, so the instant's milliseconds never matter; dropping
        // them keeps the Double exact.
        let seconds = CivilCalendar.floorDivide(instantMs, 1000)
        return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds)))) * 1000
    }

    /// The wall time at `instantMs`.
    func wallTime(at instantMs: Int64) -> Int64 {
        instantMs + offsetMilliseconds(at: instantMs)
    }

    /// What a wall time is in this zone.
    enum Resolution: Equatable {
        /// It happens once, at this instant.
        case unique(Int64)
        /// It happens twice (a fall-back overlap): first at `first`, then an offset change later.
        case repeated(first: Int64, second: Int64)
        /// It does not happen (a spring-forward gap); `gapEnd` is the first instant after the gap.
        case skipped(gapEnd: Int64)

        /// The instant a fixed-time schedule uses: the first when there are two, the end of the
        /// gap when there is none.
        var earliestOrGapEnd: Int64 {
            switch self {
            case .unique(let instant): instant
            case .repeated(let first, _): first
            case .skipped(let gapEnd): gapEnd
            }
        }
    }

    /// The instants at which the zone's clocks show `wallMs`.
    ///
    /// An instant `u` shows `wallMs` when `u + offset(u) == wallMs`, so the candidates are
    /// `wallMs - o` for the offsets `o` in force around it. This assumes no two offset changes
    /// within a day of each other, which holds for every zone in the tz database since 1970
    /// except where a government changed its mind overnight.
    func resolve(wallMs: Int64) -> Resolution {
        if let fixedOffsetMilliseconds { return .unique(wallMs - fixedOffsetMilliseconds) }
        let day = CivilCalendar.millisecondsPerDay
        let offsetBefore = offsetMilliseconds(at: wallMs - day)
        let offsetAfter = offsetMilliseconds(at: wallMs + day)
        var offsets = [offsetBefore, offsetAfter]
        offsets.append(offsetMilliseconds(at: wallMs - offsetBefore))
        offsets.append(offsetMilliseconds(at: wallMs - offsetAfter))
        var instants: [Int64] = []
        for offset in offsets {
            let instant = wallMs - offset
            if !instants.contains(instant), offsetMilliseconds(at: instant) == offset {
                instants.append(instant)
            }
        }
        instants.sort()
        switch instants.count {
        case 0:
            return .skipped(gapEnd: gapEnd(wallMs: wallMs, offsetBefore: offsetBefore, offsetAfter: offsetAfter))
        case 1:
            return .unique(instants[0])
        default:
            return .repeated(first: instants[0], second: instants[instants.count - 1])
        }
    }

    /// The first instant after the gap that swallows `wallMs`: the offset change itself, found by
    /// bisection between the instant `wallMs` would be under the new offset (before the change)
    /// and under the old one (after it).
    private func gapEnd(wallMs: Int64, offsetBefore: Int64, offsetAfter: Int64) -> Int64 {
        var low = wallMs - max(offsetBefore, offsetAfter)
        var high = wallMs - min(offsetBefore, offsetAfter)
        let offsetAtLow = offsetMilliseconds(at: low)
        guard low < high, offsetMilliseconds(at: high) != offsetAtLow else {
            // Not a gap this function can see (two changes within a day): fall back on the old
            // offset, as Joda-Time does.
            return wallMs - offsetBefore
        }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offsetMilliseconds(at: middle) == offsetAtLow {
                low = middle
            } else {
                high = middle
            }
        }
        return high
    }
}

func twoDigits(_ value: Int) -> String {
    value < 10 ? "0\(value)" : "\(value)"
}
