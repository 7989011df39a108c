/// Why a schedule, a time zone or a duration was refused: `kind` for programs (the HTTP layer
/// maps every kind to 400), `message` for people.
public struct ScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// A cron expression that does not parse, or that can never fire.
        case invalidCronExpression
        /// An ISO 8601 repeating interval whose shape or repetition count is wrong.
        case invalidRepeatingInterval
        /// An ISO 8601 start date-time that does not parse or does not exist in the calendar.
        case invalidStart
        /// An ISO 8601 duration that does not parse, is zero, or is too short or too long.
        case invalidDuration
        /// A time zone name the tz database does not know.
        case unknownTimeZone
        /// A catch-up policy out of its bounds.
        case invalidPolicy
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
