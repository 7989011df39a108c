import ArgumentParser
import Foundation
import StrataApps
import StrataHTTP

/// The cron service as the CLI reaches it: Chronos' REST API under `/v1/scheduler/`, its error
/// answers' `message` shown as it is.
enum CronAPI: HTTPServiceAPI {
    static let serviceName = "the cron service"
    static let environmentVariable = "STRATA_CRON"
    static let defaultURL = "http://127.0.0.1:4400"
    static let dialect = "Chronos' JSON"

    struct ErrorBody: Decodable { var message: String }

    static func describeError(status: Int, body: [UInt8]) -> String {
        guard let error = try? JSONDecoder().decode(ErrorBody.self, from: Data(body)) else {
            return describeUnknownError(status: status, body: body)
        }
        return error.message
    }
}

/// The CLI's way to the cron service (`--cron`, else `STRATA_CRON`, else http://127.0.0.1:4400).
typealias CronClient = HTTPServiceClient<CronAPI>

extension HTTPServiceClient where API == CronAPI {
    /// Runs a command's body with a client; an error prints as `strata cron COMMAND: message` and exits 1.
    static func run(_ command: String, cron: String?, _ body: (CronClient) async throws -> Void) async throws {
        try await run("cron \(command)", url: cron, body)
    }

    /// The API path of a job's resource: `/v1/scheduler/job/nightly%20report` (names hold spaces
    /// and `#`, which a path must encode).
    static func jobPath(_ name: String, _ suffix: String = "") -> String {
        "/v1/scheduler/job/" + encode(name) + suffix
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "-._~").union(.alphanumerics).subtracting(.nonBaseCharacters))
            ?? text
    }
}

struct CronOption: ParsableArguments {
    @Option(help: "The cron service's URL (default: STRATA_CRON, else http://127.0.0.1:4400).")
    var cron: String?
}

struct CronJobArgument: ParsableArguments {
    @Argument(help: "The job's name.")
    var name: String
}

/// A job as `GET /v1/scheduler/jobs` lists it: what the table shows.
struct CronJobSummary: Decodable {
    var name: String
    var schedule: String?
    var scheduleTimeZone: String?
    var parents: [String]?
    var lastSuccess: String?
    var lastError: String?
    var successCount: Int?
    var errorCount: Int?
    var disabled: Bool?

    /// The schedule (its time zone in brackets when it has one), or `after:` its parents.
    var scheduleText: String {
        if let schedule {
            let zone = scheduleTimeZone.flatMap { $0.isEmpty ? nil : $0 }
            return schedule + (zone.map { " [\($0)]" } ?? "")
        }
        return "after:" + (parents ?? []).joined(separator: ",")
    }
}

struct CronAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add or replace a job from its Chronos JSON (POST /v1/scheduler/iso8601, or dependency for a job with parents).",
        discussion: """
            The file is the job's whole definition, in Chronos' fields (docs/cron.md): a job with "schedule" runs at set \
            times, one with "parents" after they succeed. A job of the same name is replaced, keeping its counts and history.
            """)

    @OptionGroup var target: CronOption

    @Argument(help: "The job definition (JSON), or - for standard input.")
    var file: String

    func run() async throws {
        try await CronClient.run("add", cron: target.cron) { client in
            let (name, isDependent, body) = try Self.readJob(file)
            _ = try await client.call(.POST, isDependent ? "/v1/scheduler/dependency" : "/v1/scheduler/iso8601", body: body)
            // Say how it was stored: an empty start of a repeating interval is written out.
            let stored: CronJobSummary = try await client.get(CronClient.jobPath(name))
            print("job \(name) stored: \(stored.scheduleText)")
        }
    }

    /// The job's name, whether it is a dependent job and the bytes to send; a file that cannot
    /// be a job is refused here, before any request: unreadable, not JSON, not an object, or
    /// without a string name.
    static func readJob(_ file: String) throws -> (name: String, isDependent: Bool, body: [UInt8]) {
        let source = file == "-" ? "standard input" : file
        let (members, bytes) = try readJSONObject(
            file, for: CronAPI.serviceName,
            notAnObject: #"a job: that is a JSON object such as {"name": "nightly", "command": "...", "schedule": "R//P1D"}"#)
        guard let nameValue = members["name"], !(nameValue is NSNull) else { throw CLIError(#"\#(source): the job has no "name""#) }
        guard let name = nameValue as? String else { throw CLIError(#"\#(source): "name" must be a string"#) }
        let parents = members["parents"]
        return (name, parents != nil && !(parents is NSNull), bytes)
    }
}

struct CronListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List jobs: schedule or parents, last success and error, counts, state.")

    @OptionGroup var target: CronOption

    @Flag(help: "Print machine-readable JSON (the jobs as the cron service shows them).")
    var json = false

    func run() async throws {
        try await CronClient.run("ls", cron: target.cron) { client in
            let bytes = try await client.call(.GET, "/v1/scheduler/jobs")
            if json {
                let jobs: [JSONValue] = try client.decode(bytes, path: "/v1/scheduler/jobs")
                print(try JSONOutput.encode(jobs))
                return
            }
            let jobs: [CronJobSummary] = try client.decode(bytes, path: "/v1/scheduler/jobs")
            let states = Self.jobStates(try await client.call(.GET, "/v1/scheduler/graph/csv"))
            print(pad("NAME", 20) + pad("SCHEDULE", 34) + pad("LAST SUCCESS", 26) + pad("LAST ERROR", 26) + pad("SUCCESSES", 10)
                + pad("ERRORS", 7) + "STATE")
            for job in jobs {
                let state = job.disabled == true ? "suspended" : states[job.name] ?? "idle"
                print(pad(job.name, 20) + pad(job.scheduleText, 34) + pad(Self.dash(job.lastSuccess), 26) + pad(Self.dash(job.lastError), 26)
                    + pad("\(job.successCount ?? 0)", 10) + pad("\(job.errorCount ?? 0)", 7) + state)
            }
        }
    }

    static func dash(_ text: String?) -> String {
        guard let text, !text.isEmpty else { return "-" }
        return text
    }

    /// Each job's state (`idle`, `queued`: waiting to retry, `running`) from graph/csv's
    /// `node,<name>,<last state>,<state>` lines, read from the end since a name may hold commas.
    static func jobStates(_ csv: [UInt8]) -> [String: String] {
        var states: [String: String] = [:]
        for line in String(decoding: csv, as: UTF8.self).split(separator: "\n") where line.hasPrefix("node,") {
            let fields = line.dropFirst("node,".count).split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count >= 3 else { continue }
            states[fields.dropLast(2).joined(separator: ",")] = String(fields.last!)
        }
        return states
    }
}

struct CronShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a job as JSON, with its counts (GET /v1/scheduler/job/{name}).")

    @OptionGroup var target: CronOption
    @OptionGroup var job: CronJobArgument

    func run() async throws {
        try await CronClient.run("show", cron: target.cron) { client in
            let shown: JSONValue = try await client.get(CronClient.jobPath(job.name))
            print(try JSONOutput.encode(shown))
        }
    }
}

struct CronRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a job now, besides its schedule (PUT /v1/scheduler/job/{name}).",
        discussion: "A job whose concurrencyPolicy is Forbid is refused while one of its runs is in flight; Replace kills those.")

    @OptionGroup var target: CronOption
    @OptionGroup var job: CronJobArgument

    @Option(help: "Arguments added to the command of this run (Chronos' ?arguments=).")
    var arguments: String?

    func run() async throws {
        try await CronClient.run("run", cron: target.cron) { client in
            let query = arguments.map { "?arguments=" + CronClient.encode($0) } ?? ""
            _ = try await client.call(.PUT, CronClient.jobPath(job.name) + query)
            print("started a run of job \(job.name)")
        }
    }
}

struct CronRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a job: its runs in flight are killed, its children take its place (DELETE /v1/scheduler/job/{name}).")

    @OptionGroup var target: CronOption
    @OptionGroup var job: CronJobArgument

    func run() async throws {
        try await CronClient.run("rm", cron: target.cron) { client in
            _ = try await client.call(.DELETE, CronClient.jobPath(job.name))
            print("removed job \(job.name)")
        }
    }
}

struct CronHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "List a job's runs in flight and kept runs, latest first, with its counts.")

    @OptionGroup var target: CronOption
    @OptionGroup var job: CronJobArgument

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    struct History: Decodable {
        struct InFlight: Decodable {
            var runId: String
            var kind: String
            var attempt: Int
            var state: String
            var startedAt: String
        }
        struct Entry: Decodable {
            var runId: String
            var status: String
            var kind: String?
            var attempts: Int
            var startedAt: String?
            var endedAt: String
            var message: String?
        }
        var successCount: Int
        var errorCount: Int
        var missedCount: Int
        var skippedCount: Int
        var inFlight: [InFlight]
        var history: [Entry]
    }

    func run() async throws {
        try await CronClient.run("history", cron: target.cron) { client in
            let path = CronClient.jobPath(job.name, "/history")
            let bytes = try await client.call(.GET, path)
            if json {
                let history: JSONValue = try client.decode(bytes, path: path)
                print(try JSONOutput.encode(history))
                return
            }
            let history: History = try client.decode(bytes, path: path)
            print("\(job.name): \(history.successCount) succeeded, \(history.errorCount) failed, \(history.missedCount) missed, "
                + "\(history.skippedCount) skipped, \(history.inFlight.count) in flight")
            print(pad("RUN", 40) + pad("KIND", 10) + pad("STATUS", 15) + pad("ATTEMPTS", 9) + pad("STARTED", 26) + pad("ENDED", 26) + "MESSAGE")
            for run in history.inFlight {
                print(pad(run.runId, 40) + pad(run.kind, 10) + pad(run.state, 15) + pad("\(run.attempt + 1)", 9) + pad(run.startedAt, 26) + pad("-", 26))
            }
            for entry in history.history {
                let message = (entry.message ?? "").split(whereSeparator: \.isNewline).joined(separator: " ")
                print(pad(entry.runId, 40) + pad(entry.kind ?? "-", 10) + pad(entry.status, 15) + pad("\(entry.attempts)", 9)
                    + pad(entry.startedAt ?? "-", 26) + pad(entry.endedAt, 26) + message)
            }
        }
    }
}

/// `strata cron suspend` and `resume`: a PUT on the job's resource, without a body.
struct CronSuspendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend", abstract: "Stop a job's schedule: times passing while it is suspended are neither run nor missed.")

    @OptionGroup var target: CronOption
    @OptionGroup var job: CronJobArgument

    func run() async throws {
        try await CronClient.run("suspend", cron: target.cron) { client in
            _ = try await client.call(.PUT, CronClient.jobPath(job.name, "/suspend"))
            print("suspended job \(job.name)")
        }
    }
}

struct CronResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Start a suspended job's schedule again: its next run is its next scheduled time.")

    @OptionGroup var target: CronOption
    @OptionGroup var job: CronJobArgument

    func run() async throws {
        try await CronClient.run("resume", cron: target.cron) { client in
            _ = try await client.call(.PUT, CronClient.jobPath(job.name, "/resume"))
            print("resumed job \(job.name)")
        }
    }
}

struct CronNextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next", abstract: "Print a scheduled job's next fire times (UTC, ISO 8601), one a line.")

    @OptionGroup var target: CronOption
    @OptionGroup var job: CronJobArgument

    @Option(help: "How many fire times.")
    var count = 1

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be 1 or more") }
    }

    func run() async throws {
        try await CronClient.run("next", cron: target.cron) { client in
            let times: [String] = try await client.get(CronClient.jobPath(job.name, "/next?count=\(count)"))
            if json {
                print(try JSONOutput.encode(times))
            } else {
                for time in times { print(time) }
            }
        }
    }
}

struct CronKillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill", abstract: "Kill a job's runs in flight; none of them is retried (DELETE /v1/scheduler/task/kill/{name}).")

    @OptionGroup var target: CronOption
    @OptionGroup var job: CronJobArgument

    func run() async throws {
        try await CronClient.run("kill", cron: target.cron) { client in
            _ = try await client.call(.DELETE, "/v1/scheduler/task/kill/" + CronClient.encode(job.name))
            print("killing the runs of job \(job.name)")
        }
    }
}
