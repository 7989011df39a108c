/// Why cron refused a job definition or a request: `kind` for programs, `message` for people.
/// Chronos answers every refusal of its job API with 400 and the reason as the body (its
/// resources turn `require` failures into `BAD_REQUEST`); `status` says which status the HTTP
/// shell answers with.
public struct CronError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The body is not JSON at all.
        case invalidJSON
        /// The body is JSON but not an object, or a field has the wrong type.
        case wrongType
        /// A required field (`name`, `command` or `container`) is missing.
        case missingField
        /// A job name that does not match the name rule.
        case invalidName
        /// A schedule the schedule parser refused; the message is the parser's.
        case invalidSchedule
        /// A `scheduleTimeZone` the tz database does not know.
        case unknownTimeZone
        /// A field whose value is out of its bounds (negative cpus, unknown concurrency policy,
        /// relative input path, ...).
        case invalidValue
        /// Both `schedule` and `parents` are given.
        case scheduleAndParents
        /// Neither `schedule` nor `parents` is given.
        case neitherScheduleNorParents
        /// A dependent job names a parent that is not a job.
        case unknownParent
        /// A dependent job whose parents would make the dependency graph cyclic.
        case cycle
        /// No job has the name given.
        case jobNotFound
        /// A job whose concurrency policy is `Forbid` already has a run in flight.
        case runInFlight
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The HTTP status: 400 for every refusal, as Chronos gives it (a job that is not found is a
    /// failed `require` there too), except a manual run refused because of `Forbid`, which is a
    /// conflict with the run in flight (409).
    public var status: Int {
        kind == .runInFlight ? 409 : 400
    }

    public var description: String { message }
}
